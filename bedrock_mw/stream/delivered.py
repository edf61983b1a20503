"""The usage of a stream that may end early: Bedrock's own counts, else what was delivered.

Converse reports usage only in its last event (``metadata``). A client that reads most of an
answer and then disconnects would otherwise be recorded (and charged against its limits) as zero
tokens. Until Bedrock's counts arrive, output tokens are estimated from the text of the deltas
relayed, and input tokens from the text of the request as sent, both at a conservative four
characters a token (blobs such as images are not counted). Sans-IO: no awaits, no clock.
"""

from __future__ import annotations

from typing import Any

from ..translate.types import TokenUsage

__all__ = ["CHARS_PER_TOKEN", "DeliveredUsage", "text_chars"]

CHARS_PER_TOKEN = 4


def _tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def text_chars(value: Any) -> int:
    """The characters of every string in a JSON-like value (keys excluded, bytes skipped)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


class DeliveredUsage:
    """Counts the text of the deltas relayed; estimates usage when a stream ends before its counts."""

    __slots__ = ("_finished", "_output_chars", "_sent")

    def __init__(self, sent: Any = None) -> None:
        self._sent = sent
        self._output_chars = 0
        self._finished = False

    def observe(self, event: object) -> None:
        """Count one stream event's delta text (Converse deltas, native JSON chunks; raw frames: none)."""
        if not isinstance(event, dict):
            return
        block = event.get("contentBlockDelta")
        if block is None:
            chunk = event.get("chunk")
            if isinstance(chunk, dict):
                self._output_chars += _chunk_text_chars(chunk.get("bytes"))
            return
        delta = block.get("delta") or {}
        text = delta.get("text")
        if text is None:
            reasoning = delta.get("reasoningContent")
            tool = delta.get("toolUse")
            if reasoning is not None:
                text = reasoning.get("text")
            elif tool is not None:
                text = tool.get("input")
        if isinstance(text, str):
            self._output_chars += len(text)

    @property
    def output_estimate(self) -> int:
        """Output tokens estimated from the deltas relayed so far."""
        return _tokens(self._output_chars)

    def finished(self) -> None:
        """The stream reached its end: Bedrock's own counts are final, no estimate is needed."""
        self._finished = True

    def usage(self, reported: TokenUsage) -> TokenUsage:
        """Bedrock's counts once the stream finished; before, never less than what was delivered.

        A native stream reports running counts (Claude's ``message_start`` says one output token),
        so an early end takes the larger of the reported count and the estimate.
        """
        if self._finished:
            return reported
        return TokenUsage(
            input_tokens=reported.input_tokens or _tokens(text_chars(self._sent)),
            output_tokens=max(reported.output_tokens, self.output_estimate),
            cache_read_input_tokens=reported.cache_read_input_tokens,
            cache_write_input_tokens=reported.cache_write_input_tokens,
        )


# Native chunks are JSON whose delta string is measured in place, without a second parse.
_DELTA_KEYS = (b'"text":"', b'"thinking":"', b'"partial_json":"', b'"outputText":"', b'"generation":"')
_DELTA_KEYS_SIZED = tuple((key, len(key)) for key in _DELTA_KEYS)


def _chunk_text_chars(value: object) -> int:
    data: bytes | bytearray
    if type(value) is bytes:  # what the decoded stream holds: checked first
        data = value
    elif isinstance(value, str):
        data = value.encode()
    elif isinstance(value, bytes | bytearray):
        data = value
    else:
        return 0
    for key, size in _DELTA_KEYS_SIZED:
        at = data.find(key)
        if at < 0:
            continue
        start = at + size
        end = data.find(b'"', start)
        while end > 0 and data[end - 1] == 0x5C:  # an escaped quote: the string goes on
            end = data.find(b'"', end + 1)
        return end - start if end > 0 else 0
    return 0

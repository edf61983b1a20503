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
    """Counts the text of the Converse deltas relayed; estimates usage when Bedrock reported none."""

    __slots__ = ("_output_chars", "_sent")

    def __init__(self, sent: Any = None) -> None:
        self._sent = sent
        self._output_chars = 0

    def observe(self, event: object) -> None:
        """Count one Converse stream event's delta text (other events, raw frames: no output)."""
        if not isinstance(event, dict):
            return
        block = event.get("contentBlockDelta")
        if block is None:
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

    def usage(self, reported: TokenUsage) -> TokenUsage:
        """``reported`` when Bedrock counted anything, else the estimate of what was delivered."""
        if reported.input_tokens or reported.output_tokens:
            return reported
        return TokenUsage(input_tokens=_tokens(text_chars(self._sent)), output_tokens=self.output_estimate)

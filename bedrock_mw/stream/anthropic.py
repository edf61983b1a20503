"""Bedrock ConverseStream events in, Anthropic Messages SSE bytes out. Sans-IO: no sockets, no awaits.

Converse and Anthropic streams differ in three ways this class absorbs:

* Converse opens a text or reasoning block with its first delta (only tool use has a
  ``contentBlockStart``); Anthropic always sends ``content_block_start`` first. A block is opened on
  the first event that names a new ``contentBlockIndex``, and Anthropic indices are handed out in order.
* Converse's ``messageStop`` comes *before* the ``metadata`` event that carries usage, while Anthropic's
  ``message_delta`` carries both; so the stop is remembered and ``message_delta`` + ``message_stop``
  are written when ``metadata`` arrives (or on :meth:`finish`, with the usage known so far).
* Redacted reasoning is one opaque value that Anthropic puts in ``content_block_start``: its pieces are
  held until the block's ``contentBlockStop`` (the only buffering the protocol forces).

Output is a pure function of the input events: the same events give the same bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ErrorKind, GatewayError, anthropic_error_event
from ..guardrails import TRACE_FIELD, GuardrailOutcome, outcome_of_converse
from ..translate.anthropic.citations import anthropic_citation
from ..translate.anthropic.response import (
    anthropic_stop_reason,
    anthropic_usage,
    matched_stop_sequence,
)
from ..translate.anthropic.shapes import BlockDelta, ContentBlock, Message, TextBlock
from ..translate.types import ConverseCall, TokenUsage

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import StopReasonType
    from mypy_boto3_bedrock_runtime.type_defs import ConverseStreamOutputTypeDef, ConverseStreamTraceTypeDef

# Exceptions Bedrock delivers inside the event stream, and what each means to the caller.
_STREAM_EXCEPTIONS: dict[str, ErrorKind] = {
    "internalServerException": ErrorKind.API_ERROR,
    "modelStreamErrorException": ErrorKind.BAD_GATEWAY,
    "validationException": ErrorKind.INVALID_REQUEST,
    "throttlingException": ErrorKind.RATE_LIMIT,
    "serviceUnavailableException": ErrorKind.OVERLOADED,
}


def _block_index(body: Mapping[str, Any]) -> int:
    index = body.get("contentBlockIndex")
    return index if isinstance(index, int) else -1


def sse(event: str, payload: Mapping[str, Any]) -> bytes:
    """One server-sent event frame as Anthropic writes it."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass(slots=True)
class _OpenBlock:
    index: int
    kind: str  # "text" | "thinking" | "tool_use" | "redacted_thinking"
    redacted: bytearray = field(default_factory=bytearray)


class AnthropicStreamTranscoder:
    """Transcode one ConverseStream response into Anthropic's streaming Messages events."""

    def __init__(self, *, model: str, message_id: str, call: ConverseCall) -> None:
        self._model = model
        self._message_id = message_id
        self._call = call
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: dict[int, _OpenBlock] = {}
        self._stopped = False
        self._converse_stop: StopReasonType | None = None
        self._additional_fields: Mapping[str, Any] | None = None  # additionalModelResponseFields
        self._usage = TokenUsage()
        self._stop_reason: str | None = None
        self._trace: ConverseStreamTraceTypeDef | None = None

    @property
    def usage(self) -> TokenUsage:
        """Token counts so far (final once ``metadata`` has arrived)."""
        return self._usage

    @property
    def guardrail(self) -> GuardrailOutcome:
        """Whether a guardrail intervened, and its trace (final once ``metadata`` has arrived)."""
        return outcome_of_converse(self._converse_stop, self._trace)

    @property
    def stop_reason(self) -> str | None:
        """The Anthropic stop reason, once the message has ended."""
        return self._stop_reason

    def feed(self, event: ConverseStreamOutputTypeDef) -> bytes:
        """The SSE bytes for one botocore ConverseStream event (possibly none)."""
        if self._done or not isinstance(event, dict) or not event:
            return b""
        name, body = next(iter(event.items()))
        body = body if isinstance(body, dict) else {}
        if name in _STREAM_EXCEPTIONS:
            message = body.get("message") or f"Bedrock reported {name}"
            return self.fail(GatewayError(_STREAM_EXCEPTIONS[name], str(message)))
        if name == "messageStart":
            return self._message_start()
        if name == "contentBlockStart":
            return self._block_start(body)
        if name == "contentBlockDelta":
            return self._block_delta(body)
        if name == "contentBlockStop":
            index = _block_index(body)
            return self._close(index) if index in self._open else b""
        if name == "messageStop":
            self._stopped = True
            self._converse_stop = body.get("stopReason")
            self._additional_fields = body.get("additionalModelResponseFields")
            return self._message_start() + self._close_all()
        if name == "metadata":
            self._usage = TokenUsage.from_converse(body.get("usage"))
            self._trace = body.get("trace")
            return self._message_end() if self._stopped else b""
        return b""

    def finish(self) -> bytes:
        """Upstream ended: write what is still owed, or an error if the message never stopped."""
        if self._done:
            return b""
        if not self._stopped:
            return self.fail(
                GatewayError(ErrorKind.BAD_GATEWAY, "Bedrock's stream ended before the message was complete")
            )
        return self._close_all() + self._message_end()

    def fail(self, error: GatewayError) -> bytes:
        """End the stream with an Anthropic ``error`` event; nothing else is written afterwards."""
        if self._done:
            return b""
        self._done = True
        return anthropic_error_event(error)

    # -- internals ------------------------------------------------------------------------------

    def _message_start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        # Converse reports usage only at the end: zeros here, real counts in message_delta (the SDK's
        # final message takes them from there).
        message: Message = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(TokenUsage()),
        }
        return sse("message_start", {"type": "message_start", "message": message})

    def _open_block(self, converse_index: int, kind: str, content_block: ContentBlock | None) -> bytes:
        out = self._message_start()
        if converse_index in self._open:
            out += self._close(converse_index)
        block = _OpenBlock(self._next_index, kind)
        self._next_index += 1
        self._open[converse_index] = block
        if content_block is None:  # redacted thinking: started once its data is whole
            return out
        payload = {"type": "content_block_start", "index": block.index, "content_block": content_block}
        return out + sse("content_block_start", payload)

    def _ensure(
        self, converse_index: int, kind: str, content_block: ContentBlock | None
    ) -> tuple[bytes, int]:
        block = self._open.get(converse_index)
        if block is not None and block.kind == kind:
            return b"", block.index
        out = self._open_block(converse_index, kind, content_block)
        return out, self._open[converse_index].index

    def _delta(self, index: int, delta: BlockDelta) -> bytes:
        return sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _block_start(self, body: Mapping[str, Any]) -> bytes:
        start = body.get("start")
        tool = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool, dict):
            return b""
        content_block: ContentBlock = {
            "type": "tool_use",
            "id": tool.get("toolUseId", ""),
            "name": tool.get("name", ""),
            "input": {},
        }
        return self._open_block(_block_index(body), "tool_use", content_block)

    def _block_delta(self, body: Mapping[str, Any]) -> bytes:
        cidx = _block_index(body)
        delta = body.get("delta")
        if not isinstance(delta, dict):
            return b""
        if "text" in delta:
            out, index = self._ensure(cidx, "text", {"type": "text", "text": ""})
            return out + self._delta(index, {"type": "text_delta", "text": delta["text"]})
        if "toolUse" in delta:
            block = self._open.get(cidx)
            if block is None or block.kind != "tool_use":
                return b""  # tool input without its start carries no tool id: nothing valid to say
            tool_delta = delta["toolUse"]
            partial = tool_delta.get("input", "") if isinstance(tool_delta, dict) else ""
            return self._delta(block.index, {"type": "input_json_delta", "partial_json": partial})
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            if "redactedContent" in reasoning:
                data = reasoning["redactedContent"]
                out, _ = self._ensure(cidx, "redacted_thinking", None)
                self._open[cidx].redacted.extend(data if isinstance(data, bytes | bytearray) else b"")
                return out
            thinking: ContentBlock = {"type": "thinking", "thinking": "", "signature": ""}
            out, index = self._ensure(cidx, "thinking", thinking)
            if "text" in reasoning:
                out += self._delta(index, {"type": "thinking_delta", "thinking": reasoning["text"]})
            if "signature" in reasoning:
                out += self._delta(index, {"type": "signature_delta", "signature": reasoning["signature"]})
            return out
        if "citation" in delta:
            citation = anthropic_citation(delta["citation"], self._call.document_titles)
            if citation is None:
                return b""  # a location kind Anthropic has no form for (see anthropic_citation)
            # A citation opening its block (no text yet) starts it as Anthropic does: with a list.
            opening: TextBlock = {"type": "text", "text": "", "citations": []}
            out, index = self._ensure(cidx, "text", opening)
            return out + self._delta(index, {"type": "citations_delta", "citation": citation})
        return b""  # tool results and images have no Anthropic stream form here

    def _close(self, converse_index: int) -> bytes:
        block = self._open.pop(converse_index)
        out = b""
        if block.kind == "redacted_thinking":
            data = base64.b64encode(bytes(block.redacted)).decode()
            content_block = {"type": "redacted_thinking", "data": data}
            out = sse(
                "content_block_start",
                {"type": "content_block_start", "index": block.index, "content_block": content_block},
            )
        return out + sse("content_block_stop", {"type": "content_block_stop", "index": block.index})

    def _close_all(self) -> bytes:
        order = sorted(self._open, key=lambda k: self._open[k].index)
        return b"".join(self._close(k) for k in order)

    def _message_end(self) -> bytes:
        try:
            reason = anthropic_stop_reason(self._converse_stop)
        except GatewayError as error:
            return self.fail(error)
        self._stop_reason = reason
        self._done = True
        delta = {
            "stop_reason": reason,
            "stop_sequence": matched_stop_sequence(reason, self._additional_fields, self._call),
        }
        payload = {"type": "message_delta", "delta": delta, "usage": anthropic_usage(self._usage)}
        trace = self.guardrail.trace
        if trace is not None:  # a member the SDKs ignore; the usage record has it too
            payload[TRACE_FIELD] = {"guardrail": trace}
        return sse("message_delta", payload) + sse("message_stop", {"type": "message_stop"})

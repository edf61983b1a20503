"""ConverseStream events → OpenAI Responses server-sent events (sans-IO).

The grammar the ``openai`` SDK and Codex parse: ``response.created`` and ``response.in_progress``
first; per Converse content block an output item (``output_item.added`` … ``output_item.done``) with
its part and delta events; then ``response.completed`` (or ``response.incomplete``) carrying the same
response object the non-streamed call returns, or ``response.failed`` when Bedrock fails mid-stream.
Every event has a ``sequence_number``. Items are built by ``translate.responses.response``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

import orjson

from ..errors import ErrorKind, GatewayError, openai_error_body
from ..guardrails import GuardrailOutcome, outcome_of_converse
from ..translate.openai.request import structured_tool_name
from ..translate.responses.request import ResponsesCall
from ..translate.responses.response import (
    ResponseHead,
    function_call_item,
    message_item,
    new_id,
    output_text,
    public_items,
    reasoning_item,
)
from ..translate.responses.sealing import ReasoningSeal
from ..translate.types import TokenUsage

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockDeltaEventTypeDef,
        ContentBlockOutputTypeDef,
        ContentBlockStartEventTypeDef,
        ConverseStreamOutputTypeDef,
        ConverseStreamTraceTypeDef,
        ReasoningTextBlockTypeDef,
    )

    from ..translate.responses.shapes import (
        ErrorObject,
        MessageItem,
        OutputItem,
        ReasoningItem,
        ResponseError,
        ResponseObject,
        StreamEvent,
        SummaryText,
    )


@dataclass(slots=True)
class _Open:
    """An output item being streamed: its kind, id, place and what has arrived so far."""

    kind: Literal["message", "function_call", "reasoning"]
    item_id: str
    output_index: int
    text: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    signature: str | None = None
    redacted: bytes | None = None


class ResponsesStreamTranscoder:
    """Turns botocore ConverseStream events into Responses SSE bytes, one event at a time."""

    def __init__(self, *, head: ResponseHead, call: ResponsesCall, seal: ReasoningSeal) -> None:
        self._head = head
        self._call = call
        self._seal = seal
        self._forced_tool = structured_tool_name(call.converse.request, call.converse.notes)
        self._sequence = 0
        self._started = False
        self._closed = False
        self._stop_reason: str | None = None
        self._open: dict[int, _Open] = {}  # Converse contentBlockIndex -> item being streamed
        self._items: list[OutputItem | None] = []  # finished items by output_index
        self._usage = TokenUsage()
        self._trace: ConverseStreamTraceTypeDef | None = None
        self.final: ResponseObject | None = None  # the completed response, for the store
        self.items: list[OutputItem] = []  # the output items to keep (reasoning sealed)

    @property
    def usage(self) -> TokenUsage:
        """Token counts seen so far."""
        return self._usage

    @property
    def guardrail(self) -> GuardrailOutcome:
        """Whether a guardrail intervened, and its trace (for the usage record)."""
        return outcome_of_converse(self._stop_reason, self._trace)

    def _next(self) -> int:
        """The next event's ``sequence_number``."""
        self._sequence += 1
        return self._sequence - 1

    @staticmethod
    def _sse(event: StreamEvent) -> bytes:
        return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        snapshot = self._head.response(status="in_progress", output=[])
        created = self._sse(
            {"type": "response.created", "sequence_number": self._next(), "response": snapshot}
        )
        return created + self._sse(
            {"type": "response.in_progress", "sequence_number": self._next(), "response": snapshot}
        )

    def feed(self, event: ConverseStreamOutputTypeDef) -> bytes:
        """Translate one ConverseStream event into zero or more SSE events."""
        if self._closed:
            return b""
        out = self._start()
        if "contentBlockStart" in event:
            return out + self._block_start(event["contentBlockStart"])
        if "contentBlockDelta" in event:
            return out + self._block_delta(event["contentBlockDelta"])
        if "contentBlockStop" in event:
            return out + self._close(event["contentBlockStop"].get("contentBlockIndex", 0))
        if "messageStop" in event:
            self._stop_reason = event["messageStop"].get("stopReason") or "end_turn"
            return out + b"".join(self._close(block) for block in list(self._open))
        if "metadata" in event:
            self._usage = TokenUsage.from_converse(event["metadata"].get("usage"))
            self._trace = event["metadata"].get("trace")
        return out

    # -- items ----------------------------------------------------------------------------------
    def _added(self, block: int, item: OutputItem, call_id: str = "", name: str = "") -> tuple[_Open, bytes]:
        index = len(self._items)
        self._items.append(None)
        state = self._open[block] = _Open(item["type"], item["id"], index, call_id=call_id, name=name)
        added = self._sse(
            {"type": "response.output_item.added", "sequence_number": self._next(), "output_index": index,
             "item": item}
        )  # fmt: skip
        return state, added

    def _open_message(self, block: int) -> tuple[_Open, bytes]:
        item_id = new_id("msg")
        item: MessageItem = {
            "id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []
        }  # fmt: skip
        state, out = self._added(block, item)
        part = self._sse(
            {"type": "response.content_part.added", "sequence_number": self._next(), "item_id": item_id,
             "output_index": state.output_index, "content_index": 0, "part": output_text("")}
        )  # fmt: skip
        return state, out + part

    def _block_start(self, start_event: ContentBlockStartEventTypeDef) -> bytes:
        start = start_event.get("start")
        use = start.get("toolUse") if start else None
        block = start_event.get("contentBlockIndex", 0)
        if use is None or block in self._open:
            return b""
        if self._forced_tool is not None and use.get("name") == self._forced_tool:
            return self._open_message(block)[1]
        item = function_call_item(new_id("fc"), use["toolUseId"], use["name"], "", status="in_progress")
        return self._added(block, item, call_id=use["toolUseId"], name=use["name"])[1]

    def _block_delta(self, delta_event: ContentBlockDeltaEventTypeDef) -> bytes:
        delta = delta_event.get("delta")
        if not delta:
            return b""
        block = delta_event.get("contentBlockIndex", 0)
        state = self._open.get(block)
        if "text" in delta or ("toolUse" in delta and state is not None and state.kind == "message"):
            fragment = delta["text"] if "text" in delta else delta["toolUse"].get("input", "")
            out = b""
            if state is None:
                state, out = self._open_message(block)
            if not fragment:
                return out
            state.text.append(fragment)
            return out + self._sse(
                {"type": "response.output_text.delta", "sequence_number": self._next(),
                 "item_id": state.item_id, "output_index": state.output_index, "content_index": 0,
                 "delta": fragment, "logprobs": []}
            )  # fmt: skip
        if "toolUse" in delta:
            fragment = delta["toolUse"].get("input", "")
            if state is None or not fragment:
                return b""
            state.text.append(fragment)
            return self._sse(
                {"type": "response.function_call_arguments.delta", "sequence_number": self._next(),
                 "item_id": state.item_id, "output_index": state.output_index, "delta": fragment}
            )  # fmt: skip
        reasoning = delta.get("reasoningContent")
        if reasoning is None:
            return b""  # citations have no Responses form here
        out = b""
        if state is None:
            item: ReasoningItem = {"id": self._head.reasoning_id(len(self._items)), "type": "reasoning",
                                   "summary": []}  # fmt: skip
            state, out = self._added(block, item)
        if reasoning.get("signature"):
            state.signature = reasoning["signature"]
        if reasoning.get("redactedContent"):
            state.redacted = reasoning["redactedContent"]
        text = reasoning.get("text")
        if not text:
            return out
        if not state.text:
            out += self._sse(
                {"type": "response.reasoning_summary_part.added", "sequence_number": self._next(),
                 "item_id": state.item_id, "output_index": state.output_index, "summary_index": 0,
                 "part": {"type": "summary_text", "text": ""}}
            )  # fmt: skip
        state.text.append(text)
        return out + self._sse(
            {"type": "response.reasoning_summary_text.delta", "sequence_number": self._next(),
             "item_id": state.item_id, "output_index": state.output_index, "summary_index": 0,
             "delta": text}
        )  # fmt: skip

    def _close(self, block: int) -> bytes:
        state = self._open.pop(block, None)
        if state is None:
            return b""
        text = "".join(state.text)
        item_id, index = state.item_id, state.output_index
        out = b""
        item: OutputItem
        if state.kind == "message":
            item = message_item(item_id, text)
            out += self._sse(
                {"type": "response.output_text.done", "sequence_number": self._next(), "item_id": item_id,
                 "output_index": index, "content_index": 0, "text": text, "logprobs": []}
            )  # fmt: skip
            out += self._sse(
                {"type": "response.content_part.done", "sequence_number": self._next(), "item_id": item_id,
                 "output_index": index, "content_index": 0, "part": output_text(text)}
            )  # fmt: skip
        elif state.kind == "function_call":
            call = item = function_call_item(item_id, state.call_id, state.name, text or "{}")
            out += self._sse(
                {"type": "response.function_call_arguments.done", "sequence_number": self._next(),
                 "item_id": item_id, "output_index": index, "name": state.name,
                 "arguments": call["arguments"]}
            )  # fmt: skip
        else:
            item = reasoning_item(item_id, self._reasoning_block(state, text), self._seal)
            if text:
                part: SummaryText = {"type": "summary_text", "text": text}
                out += self._sse(
                    {"type": "response.reasoning_summary_text.done", "sequence_number": self._next(),
                     "item_id": item_id, "output_index": index, "summary_index": 0, "text": text}
                )  # fmt: skip
                out += self._sse(
                    {"type": "response.reasoning_summary_part.done", "sequence_number": self._next(),
                     "item_id": item_id, "output_index": index, "summary_index": 0, "part": part}
                )  # fmt: skip
        self._items[index] = item
        shown = public_items([item], self._call.include_encrypted)[0]
        return out + self._sse(
            {"type": "response.output_item.done", "sequence_number": self._next(), "output_index": index,
             "item": shown}
        )  # fmt: skip

    @staticmethod
    def _reasoning_block(state: _Open, text: str) -> ContentBlockOutputTypeDef:
        if state.redacted is not None:
            return {"reasoningContent": {"redactedContent": state.redacted}}
        reasoning: ReasoningTextBlockTypeDef = {"text": text}
        if state.signature:
            reasoning["signature"] = state.signature
        return {"reasoningContent": {"reasoningText": reasoning}}

    # -- the end --------------------------------------------------------------------------------
    def finish(self) -> bytes:
        """End a stream that completed: ``response.completed`` (or ``.incomplete``) with the whole answer."""
        if self._closed:
            return b""
        if self._stop_reason is None:
            # The upstream ended without a stop: a truncated answer must not look complete.
            return self.fail(
                GatewayError(ErrorKind.BAD_GATEWAY, "Bedrock ended the stream before the model stopped")
            )
        out = self._start()
        self._closed = True
        self.items = [item for item in self._items if item is not None]
        final = self._head.response(
            status="completed",
            output=public_items(self.items, self._call.include_encrypted),
            usage=self._usage,
            stop_reason=self._stop_reason,
        )
        self.final = final
        kind: Literal["response.completed", "response.incomplete"] = (
            "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        )
        return out + self._sse({"type": kind, "sequence_number": self._next(), "response": final})

    def fail(self, error: GatewayError) -> bytes:
        """End the stream with ``response.failed`` naming the error (the SDK's stream then ends)."""
        if self._closed:
            return b""
        out = self._start()
        self._closed = True
        detail = cast("ErrorObject", openai_error_body(error)["error"])
        failure: ResponseError = {"code": detail["code"] or detail["type"], "message": detail["message"]}
        done = [item for item in self._items if item is not None]
        snapshot = self._head.response(
            status="failed",
            output=public_items(done, self._call.include_encrypted),
            usage=self._usage,
            error=failure,
        )
        return out + self._sse(
            {"type": "response.failed", "sequence_number": self._next(), "response": snapshot}
        )

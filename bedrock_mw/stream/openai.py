"""ConverseStream events → OpenAI ``chat.completion.chunk`` server-sent events (sans-IO)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..errors import ErrorKind, GatewayError, openai_error_event
from ..guardrails import TRACE_FIELD, GuardrailOutcome, outcome_of_converse
from ..translate.openai.request import structured_tool_name
from ..translate.openai.response import finish_reason, openai_usage
from ..translate.openai.shapes import ChatCompletionChunk, ChunkDelta, ChunkHead, ToolCallDelta
from ..translate.types import ConverseCall, TokenUsage

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import StopReasonType
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockDeltaEventTypeDef,
        ContentBlockStartEventTypeDef,
        ConverseStreamOutputTypeDef,
        GuardrailTraceAssessmentTypeDef,
    )

DONE = b"data: [DONE]\n\n"


class ChunkWriter:
    """Frames ``chat.completion.chunk`` objects and keeps the end-of-stream bookkeeping.

    Shared by the Converse and native transcoders: the role chunk comes first, one finish chunk,
    then (when asked for) a usage chunk with no choices, then ``[DONE]`` - or an error frame instead.
    """

    def __init__(self, *, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        self._head: ChunkHead = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._started = False
        self._finished = False
        self._closed = False
        self._finish_reason: str | None = None
        self._usage = TokenUsage()
        self._guardrail_trace: GuardrailTraceAssessmentTypeDef | None = None
        # A chunk with no finish reason, dumped once with a placeholder delta and cut around it.
        template: ChatCompletionChunk = {
            **self._head,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}],
        }
        if include_usage:
            template["usage"] = None
        opening, _, closing = orjson.dumps(template).rpartition(b'"delta":{}')
        self._open = b"data: " + opening + b'"delta":'
        self._close = closing + b"\n\n"

    @property
    def usage(self) -> TokenUsage:
        """Token counts seen so far."""
        return self._usage

    @property
    def finish_reason(self) -> str | None:
        """The OpenAI finish reason, once the model stopped."""
        return self._finish_reason

    def _chunk(self, delta: ChunkDelta, reason: str | None = None) -> bytes:
        if reason is None:
            # Most chunks: the frame around the delta is the same bytes each time, dumped once.
            return self._open + orjson.dumps(delta) + self._close
        chunk: ChatCompletionChunk = {
            **self._head,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _delta(self, delta: ChunkDelta) -> bytes:
        return self._start() + self._chunk(delta)

    def _finish(self, reason: str) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        self._finish_reason = reason
        return self._start() + self._chunk({}, reason)

    def finish(self) -> bytes:
        """End a stream that completed: owed finish chunk, usage chunk if asked for, ``[DONE]``."""
        if self._closed:
            return b""
        if not self._finished:
            # The upstream ended without a stop: a truncated answer must not look complete.
            return self.fail(
                GatewayError(ErrorKind.BAD_GATEWAY, "Bedrock ended the stream before the model stopped")
            )
        out = b""
        if self._guardrail_trace is not None:  # a chunk with no choices: the SDKs skip its extra member
            trace_chunk = {**self._head, "system_fingerprint": None, "choices": []}
            trace_chunk[TRACE_FIELD] = {"guardrail": self._guardrail_trace}
            out += b"data: " + orjson.dumps(trace_chunk) + b"\n\n"
        if self._include_usage:
            usage_chunk = {
                **self._head,
                "system_fingerprint": None,
                "choices": [],
                "usage": openai_usage(self._usage),
            }
            out += b"data: " + orjson.dumps(usage_chunk) + b"\n\n"
        self._closed = True
        return out + DONE

    def fail(self, error: GatewayError) -> bytes:
        """End the stream with an OpenAI error frame (never followed by ``[DONE]``)."""
        if self._closed:
            return b""
        self._closed = True
        return openai_error_event(error)


class OpenAIStreamTranscoder(ChunkWriter):
    """Turns botocore ConverseStream events into OpenAI chunk SSE bytes, one event at a time."""

    def __init__(
        self, *, model: str, completion_id: str, created: int, call: ConverseCall, include_usage: bool
    ) -> None:
        super().__init__(
            model=model, completion_id=completion_id, created=created, include_usage=include_usage
        )
        self._forced_tool = structured_tool_name(call.request, call.notes)
        self._tool_index: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool_calls index
        self._as_content: set[int] = set()  # blocks of the forced structured-output tool
        self._converse_stop: StopReasonType | None = None

    @property
    def guardrail(self) -> GuardrailOutcome:
        """Whether a guardrail intervened, and its trace (final once ``metadata`` has arrived)."""
        return outcome_of_converse(self._converse_stop, {"guardrail": self._guardrail_trace})

    def feed(self, event: ConverseStreamOutputTypeDef) -> bytes:
        """Translate one ConverseStream event into zero or more SSE frames."""
        if self._closed:
            return b""
        if "messageStart" in event:
            return self._start()
        if "contentBlockStart" in event:
            return self._block_start(event["contentBlockStart"])
        if "contentBlockDelta" in event:
            return self._block_delta(event["contentBlockDelta"])
        if "messageStop" in event:
            stop = self._converse_stop = event["messageStop"].get("stopReason")
            return self._finish(finish_reason(stop, structured_tool=self._forced_tool is not None))
        if "metadata" in event:
            self._usage = TokenUsage.from_converse(event["metadata"].get("usage"))
            trace = event["metadata"].get("trace")
            self._guardrail_trace = trace.get("guardrail") if isinstance(trace, dict) else None
        return b""  # contentBlockStop and anything newer carry nothing OpenAI shows

    def _block_start(self, start_event: ContentBlockStartEventTypeDef) -> bytes:
        start = start_event.get("start")
        use = start.get("toolUse") if start else None
        if use is None:
            return b""
        block = start_event.get("contentBlockIndex", 0)
        if self._forced_tool is not None and use.get("name") == self._forced_tool:
            self._as_content.add(block)
            return self._start()
        index = self._tool_index[block] = len(self._tool_index)
        call: ToolCallDelta = {"index": index, "id": use["toolUseId"], "type": "function",
                               "function": {"name": use["name"], "arguments": ""}}  # fmt: skip
        return self._delta({"tool_calls": [call]})

    def _block_delta(self, delta_event: ContentBlockDeltaEventTypeDef) -> bytes:
        delta = delta_event.get("delta")
        if not delta:
            return b""
        block = delta_event.get("contentBlockIndex", 0)
        if "text" in delta:
            return self._delta({"content": delta["text"]}) if delta["text"] else b""
        if "toolUse" in delta:
            fragment = delta["toolUse"].get("input", "")
            if block in self._as_content:
                return self._delta({"content": fragment}) if fragment else b""
            if block not in self._tool_index or not fragment:
                return b""
            return self._delta(
                {"tool_calls": [{"index": self._tool_index[block], "function": {"arguments": fragment}}]}
            )
        reasoning = delta.get("reasoningContent")
        if reasoning and reasoning.get("text"):
            return self._delta({"reasoning_content": reasoning["text"]})
        return b""  # signatures, redacted reasoning and citations have no OpenAI form

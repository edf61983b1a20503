"""InvokeModelWithResponseStream chunks of Titan Text (and Llama) → OpenAI chunk SSE (sans-IO).

A guardrail on the call reports itself in the chunks (``amazon-bedrock-guardrailAction``, and
``amazon-bedrock-trace`` when tracing) while the model's own completion reason stays; so the finish
chunk waits for the end of the stream (the reason comes on the last chunk anyway) and says
``content_filter`` when the guardrail intervened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..guardrails import ACTION_FIELD, TRACE_FIELD, GuardrailOutcome, native_trace
from ..routing.families import ModelFamily, NativeBody
from ..translate.openai.native import native_finish_reason
from ..translate.types import InvokeCall
from .openai import ChunkWriter

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import ResponseStreamTypeDef

    from ..translate.native_shapes import NativeChatChunk

METRICS_KEY = "amazon-bedrock-invocationMetrics"


class NativeChatStreamTranscoder(ChunkWriter):
    """Feeds on the decoded JSON of each stream ``chunk.bytes``; emits OpenAI chunk frames."""

    def __init__(
        self,
        *,
        family: ModelFamily,
        model: str,
        completion_id: str,
        created: int,
        call: InvokeCall,
        include_usage: bool,
    ) -> None:
        super().__init__(
            model=model, completion_id=completion_id, created=created, include_usage=include_usage
        )
        self._family = family
        titan = family.native_body == NativeBody.TITAN_TEXT
        self._text_key = "outputText" if titan else "generation"
        self._reason_key = "completionReason" if titan else "stop_reason"
        self._input_key = "inputTextTokenCount" if titan else "prompt_token_count"
        self._output_key = "totalOutputTextTokenCount" if titan else "generation_token_count"
        self._leading = True  # the models open with whitespace the non-streamed answer trims too
        self._reason: str | None = None  # the model's finish reason, sent by finish()
        self._intervened = False

    @property
    def guardrail(self) -> GuardrailOutcome:
        """Whether a guardrail intervened, and its trace (final once the stream has ended)."""
        return GuardrailOutcome(self._intervened, self._guardrail_trace)

    def feed(self, event: ResponseStreamTypeDef) -> bytes:
        """Translate one InvokeModelWithResponseStream event (``{"chunk": {"bytes": ...}}``)."""
        chunk = event.get("chunk")
        if not chunk or "bytes" not in chunk:
            return b""
        return self.feed_chunk(orjson.loads(chunk["bytes"]))

    def feed_chunk(self, decoded: NativeChatChunk) -> bytes:
        """Translate one decoded native chunk into zero or more SSE frames."""
        if self._closed:
            return b""
        chunk: Mapping[str, Any] = decoded  # read by the keys of the family chosen in __init__
        self._count(chunk)
        out = self._start()
        text = chunk.get(self._text_key) or ""
        if self._leading:
            text = text.lstrip()
            self._leading = not text
        if text:
            out += self._chunk({"content": text})
        reason = chunk.get(self._reason_key)
        if reason:
            self._reason = native_finish_reason(self._family, reason)
        if chunk.get(ACTION_FIELD) == "INTERVENED":
            self._intervened = True
        trace = native_trace(chunk.get(TRACE_FIELD))
        if trace is not None:
            self._guardrail_trace = trace
        return out

    def finish(self) -> bytes:
        """The finish chunk (``content_filter`` when a guardrail intervened), then the usual end."""
        if self._reason is not None and not self._closed:
            return self._finish("content_filter" if self._intervened else self._reason) + super().finish()
        return super().finish()

    def _count(self, chunk: Mapping[str, Any]) -> None:
        # Both families repeat running totals, so the latest value is the count so far.
        usage = self._usage
        if chunk.get(self._input_key):
            usage.input_tokens = int(chunk[self._input_key])
        if chunk.get(self._output_key):
            usage.output_tokens = int(chunk[self._output_key])
        metrics = chunk.get(METRICS_KEY)
        if isinstance(metrics, dict):  # the last chunk: Bedrock's own totals win
            usage.input_tokens = int(metrics.get("inputTokenCount") or usage.input_tokens)
            usage.output_tokens = int(metrics.get("outputTokenCount") or usage.output_tokens)

"""InvokeModelWithResponseStream chunks of Claude → Anthropic SSE, re-framed, not re-encoded. Sans-IO.

Each chunk's ``bytes`` already is one Anthropic stream event as JSON, so most events are framed as
``event: <type>\\ndata: <the bytes>\\n\\n`` without being parsed: the event type is read from the JSON's
first key, which Bedrock writes first. Three events are parsed: ``message_start`` (its usage, with the
real input and cache counts, is read and its ``model`` becomes the name the client asked for),
``message_delta`` (output tokens so far) and ``message_stop`` (Bedrock adds its invocation metrics,
which are read as the final usage and left out of the event Anthropic's clients see).

A guardrail on the call reports itself in the stream's own events (``amazon-bedrock-guardrailAction``
and, when tracing, ``amazon-bedrock-trace``: read wherever they appear), while the model's own stop
reason stays. So ``message_delta`` is held until ``message_stop`` - the two are adjacent - and goes
out with ``stop_reason: "refusal"`` when the guardrail intervened, and the trace in the member the
Converse path uses (docs/guardrails.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ErrorKind, GatewayError, anthropic_error_event
from ..guardrails import ACTION_FIELD, TRACE_FIELD, GuardrailOutcome, native_trace
from ..translate.types import JSONObject, TokenUsage

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import ResponseStreamTypeDef

_TYPE_PREFIX = b'{"type":"'
_TYPE_AT = len(_TYPE_PREFIX)
_PASSED = frozenset({b"content_block_delta", b"content_block_start", b"content_block_stop", b"ping"})
# The SSE frame's opening per passed event type, built once.
_OPENINGS = {kind: b"event: " + kind + b"\ndata: " for kind in _PASSED}
METRICS_KEY = "amazon-bedrock-invocationMetrics"
_STREAM_EXCEPTIONS: dict[str, ErrorKind] = {
    "internalServerException": ErrorKind.API_ERROR,
    "modelStreamErrorException": ErrorKind.BAD_GATEWAY,
    "validationException": ErrorKind.INVALID_REQUEST,
    "throttlingException": ErrorKind.RATE_LIMIT,
    "serviceUnavailableException": ErrorKind.OVERLOADED,
    "modelTimeoutException": ErrorKind.TIMEOUT,
}


def _frame(kind: bytes, data: bytes) -> bytes:
    return b"event: " + kind + b"\ndata: " + data + b"\n\n"


def _sniffed_type(data: bytes) -> bytes | None:
    """The event type when the JSON opens with it (Bedrock's order), without parsing the rest."""
    if not data.startswith(_TYPE_PREFIX):
        return None
    end = data.find(b'"', _TYPE_AT)
    return data[_TYPE_AT:end] if end > 0 else None


class AnthropicNativeStreamTranscoder:
    """Feeds on ``{"chunk": {"bytes": ...}}`` events; writes Anthropic's SSE frames."""

    __slots__ = ("_done", "_held", "_intervened", "_model", "_stopped", "_trace", "stop_reason", "usage")

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._done = False
        self._stopped = False
        self._held: JSONObject | None = None  # message_delta, until message_stop says the rest
        self._intervened = False
        self._trace: Any = None
        self.usage = TokenUsage()
        self.stop_reason: str | None = None

    @property
    def guardrail(self) -> GuardrailOutcome:
        """Whether a guardrail intervened, and its trace (final once ``message_stop`` has arrived)."""
        return GuardrailOutcome(self._intervened, self._trace)

    def feed(self, event: ResponseStreamTypeDef) -> bytes:
        """One upstream event in, its SSE frame out (an exception event ends the stream)."""
        if self._done:
            return b""
        chunk = event.get("chunk")
        if chunk is None:
            for name, body in event.items():
                if name in _STREAM_EXCEPTIONS:
                    message = (body or {}).get("message") if isinstance(body, dict) else None
                    return self.fail(
                        GatewayError(_STREAM_EXCEPTIONS[name], str(message or f"Bedrock reported {name}"))
                    )
            return b""
        data: bytes = chunk.get("bytes") or b""
        opening = _OPENINGS.get(_sniffed_type(data))  # type: ignore[arg-type]
        if opening is not None and b"\n" not in data:
            return opening + data + b"\n\n"  # _frame(kind, data)
        return self._parsed(data)

    def _parsed(self, data: bytes) -> bytes:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self.fail(
                GatewayError(ErrorKind.BAD_GATEWAY, "Bedrock sent a stream event that is not JSON")
            )
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return b""
        kind = payload["type"]
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                message["model"] = self._model
                self._read_usage(message.get("usage"))
                self._read_guardrail(message)  # an input the guardrail blocked is known from the start
        elif kind == "message_delta":
            self._read_usage(payload.get("usage"))
            self._read_guardrail(payload)
            delta = payload.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self.stop_reason = delta["stop_reason"]
            self._held = payload
            return b""
        elif kind == "message_stop":
            self._read_metrics(payload.pop(METRICS_KEY, None))
            self._read_guardrail(payload)
            self._stopped = self._done = True
            return self._release() + _frame(b"message_stop", orjson.dumps(payload))
        elif kind == "error":
            self._done = True
        return _frame(kind.encode(), orjson.dumps(payload))

    def _read_guardrail(self, payload: JSONObject) -> None:
        """Take Bedrock's guardrail members off an event; the held ``message_delta`` reports them."""
        if payload.pop(ACTION_FIELD, None) == "INTERVENED":
            self._intervened = True
        trace = native_trace(payload.pop(TRACE_FIELD, None))
        if trace is not None:
            self._trace = trace

    def _release(self) -> bytes:
        """The held ``message_delta``: ``refusal`` when a guardrail intervened, with its trace."""
        held, self._held = self._held, None
        if held is None:
            return b""
        delta = held.get("delta")
        if self._intervened and isinstance(delta, dict):
            delta["stop_reason"] = self.stop_reason = "refusal"
        if self._trace is not None:  # a member the SDKs ignore; the usage record has it too
            held[TRACE_FIELD] = {"guardrail": self._trace}
        return _frame(b"message_delta", orjson.dumps(held))

    def _read_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        u = self.usage
        u.input_tokens = int(usage.get("input_tokens") or u.input_tokens)
        u.output_tokens = int(usage.get("output_tokens") or u.output_tokens)
        u.cache_read_input_tokens = int(usage.get("cache_read_input_tokens") or u.cache_read_input_tokens)
        u.cache_write_input_tokens = int(
            usage.get("cache_creation_input_tokens") or u.cache_write_input_tokens
        )

    def _read_metrics(self, metrics: Any) -> None:
        # Bedrock's own totals, where the events left a count out.
        if isinstance(metrics, dict):
            self.usage.input_tokens = self.usage.input_tokens or int(metrics.get("inputTokenCount") or 0)
            self.usage.output_tokens = int(metrics.get("outputTokenCount") or self.usage.output_tokens)

    def finish(self) -> bytes:
        """Upstream ended: nothing is owed after ``message_stop``; before it, the message is incomplete."""
        if self._done:
            return b""
        return self.fail(
            GatewayError(ErrorKind.BAD_GATEWAY, "Bedrock's stream ended before the message was complete")
        )

    def fail(self, error: GatewayError) -> bytes:
        """End the stream with an Anthropic ``error`` event; nothing else is written afterwards."""
        if self._done:
            return b""
        self._done = True
        return self._release() + anthropic_error_event(error)

"""The pass-through relay: Bedrock's event-stream frames in, the same bytes out, usage read in passing.

A transcoder like the others (``feed``/``finish``/``fail``), except that what it emits is what it
was fed: frames are never decoded and re-encoded. It looks inside only the frames that carry token
counts or a guardrail's verdict: ConverseStream's ``messageStop`` and ``metadata`` events, and the
chunks of InvokeModelWithResponseStream that hold ``amazon-bedrock-invocationMetrics`` (the last one)
or ``amazon-bedrock-guardrailAction``. A failure the gateway detects itself (an
idle upstream, a dropped connection) ends the stream with an exception frame, which the caller's
SDK raises as it would Bedrock's own.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Literal, cast

import orjson

from ..errors import GatewayError
from ..guardrails import ACTION_FIELD, TRACE_FIELD, GuardrailOutcome, native_trace, outcome_of_converse
from ..translate.types import JSONObject, TokenUsage
from .frames import encode_frame, frame_headers, frame_payload, frames

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import TokenUsageTypeDef

StreamOperation = Literal["ConverseStream", "InvokeModelWithResponseStream"]

# A string header as the format encodes it: name length, name, type 7 (string), value length, value.
_METADATA_EVENT = b"\x0b:event-type\x07\x00\x08metadata"
_STOP_EVENT = b"\x0b:event-type\x07\x00\x0bmessageStop"
_METRICS = b"amazon-bedrock-invocationMetrics"
_ACTION = ACTION_FIELD.encode()

# The exception members each stream's union declares (botocore's model); others are sent as the last.
_MEMBERS: dict[StreamOperation, frozenset[str]] = {
    "ConverseStream": frozenset(
        {
            "internalServerException",
            "modelStreamErrorException",
            "validationException",
            "throttlingException",
            "serviceUnavailableException",
        }
    ),
    "InvokeModelWithResponseStream": frozenset(
        {
            "internalServerException",
            "modelStreamErrorException",
            "validationException",
            "throttlingException",
            "modelTimeoutException",
            "serviceUnavailableException",
        }
    ),
}


class EventStreamRelay:
    """Relays whole frames unchanged and keeps the token usage they report."""

    def __init__(self, operation: StreamOperation) -> None:
        self._operation = operation
        self.usage = TokenUsage()
        self._stop_reason: Any = None  # ConverseStream's messageStop
        self._intervened = False  # InvokeModelWithResponseStream's amazon-bedrock-guardrailAction
        self._trace: Any = None

    @property
    def guardrail(self) -> GuardrailOutcome:
        """What a guardrail on the call did, as the stream reported it (final once it ended)."""
        if self._operation == "ConverseStream":
            return outcome_of_converse(self._stop_reason, {"guardrail": self._trace})
        return GuardrailOutcome(self._intervened, self._trace)

    def feed(self, batch: bytes) -> bytes:
        """One or more whole frames in, the same bytes out."""
        if self._operation == "ConverseStream":
            if _METADATA_EVENT in batch or _STOP_EVENT in batch:
                self._read_converse_events(batch)
        else:
            self._read_chunks(batch)
        return batch

    def finish(self) -> bytes:
        """Nothing: Bedrock's own last frame already ended the stream."""
        return b""

    def fail(self, error: GatewayError) -> bytes:
        """An exception frame of the stream's own kind, carrying the explained error."""
        member = error.bedrock_type[:1].lower() + error.bedrock_type[1:]
        if member not in _MEMBERS[self._operation]:
            member = "internalServerException"
        headers = [
            (":message-type", "exception"),
            (":exception-type", member),
            (":content-type", "application/json"),
        ]
        return encode_frame(headers, orjson.dumps({"message": error.message}))

    def _read_converse_events(self, batch: bytes) -> None:
        for frame in frames(batch):
            kind = frame_headers(frame).get(":event-type")
            if kind not in ("metadata", "messageStop"):
                continue
            event = _json(frame_payload(frame))
            if not isinstance(event, dict):
                continue
            if kind == "messageStop":
                self._stop_reason = event.get("stopReason")
                continue
            usage = event.get("usage")
            if isinstance(usage, dict):
                self.usage = TokenUsage.from_converse(cast("TokenUsageTypeDef", usage))
            trace = event.get("trace")
            if isinstance(trace, dict):
                self._trace = trace.get("guardrail")

    def _read_chunks(self, batch: bytes) -> None:
        for frame in frames(batch):
            chunk = _json(frame_payload(frame))
            encoded = chunk.get("bytes") if isinstance(chunk, dict) else None
            if not isinstance(encoded, str):
                continue
            try:
                inner = base64.b64decode(encoded)
            except (binascii.Error, ValueError):
                continue
            if _METRICS in inner or _ACTION in inner:
                self._read_chunk(inner)

    def _read_chunk(self, inner: bytes) -> None:
        body = _json(inner)
        if not isinstance(body, dict):
            return
        self._read_guardrail(body)
        message = body.get("message")
        if isinstance(message, dict):  # message_start, for an input blocked from the start
            self._read_guardrail(message)
        metrics = body.get("amazon-bedrock-invocationMetrics")
        if isinstance(metrics, dict):
            self.usage = TokenUsage(
                _int(metrics.get("inputTokenCount")),
                _int(metrics.get("outputTokenCount")),
                _int(metrics.get("cacheReadInputTokenCount")),
                _int(metrics.get("cacheWriteInputTokenCount")),
            )

    def _read_guardrail(self, payload: JSONObject) -> None:  # any family's decoded chunk, relayed as is
        if payload.get(ACTION_FIELD) == "INTERVENED":
            self._intervened = True
        trace = native_trace(payload.get(TRACE_FIELD))
        if trace is not None:
            self._trace = trace


def stream_refusal(frame: bytes) -> tuple[str, str] | None:
    """``(error type, message)`` when ``frame`` is an exception or error message, else None.

    Bedrock can accept a streamed call and then refuse it in its first frame (a throttling
    exception); the route treats that as a refusal before the first byte, so it can fall over.
    """
    headers = frame_headers(frame)
    kind = headers.get(":message-type")
    if kind == "exception":
        body = _json(frame_payload(frame))
        message = body.get("message", body.get("Message", "")) if isinstance(body, dict) else ""
        code = headers.get(":exception-type") or "UnknownError"
        return code[:1].upper() + code[1:], str(message)
    if kind == "error":
        return headers.get(":error-code") or "UnknownError", headers.get(":error-message") or ""
    return None


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0

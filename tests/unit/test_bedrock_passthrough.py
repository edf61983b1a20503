"""The pass-through's sans-IO pieces: event-stream frame splitting, the relay, beta lowering, errors."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from bedrock_mw.bedrock_api.auth import is_sigv4
from bedrock_mw.bedrock_api.body import lower_betas
from bedrock_mw.bedrock_api.runtime import converse_usage
from bedrock_mw.dispatch._wire import FrameSplitter
from bedrock_mw.errors import ErrorKind, GatewayError, error_body
from bedrock_mw.stream.frames import encode_frame, frame_headers, frames
from bedrock_mw.stream.passthrough import EventStreamRelay, stream_refusal
from bedrock_mw.testing import encode_event, encode_exception


def converse_stream_bytes() -> bytes:
    events = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"delta": {"text": "héllo ✓"}, "contentBlockIndex": 0}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": {"inputTokens": 11, "outputTokens": 7, "cacheReadInputTokens": 3}}),
    ]
    return b"".join(encode_event(kind, payload) for kind, payload in events)


def invoke_stream_bytes() -> bytes:
    chunks = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 9}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 9, "outputTokenCount": 4},
        },
    ]
    return b"".join(
        encode_event("chunk", {"bytes": base64.b64encode(orjson.dumps(c)).decode()}) for c in chunks
    )


# -- frames -------------------------------------------------------------------------------------
@given(st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_chunking_relays_the_same_bytes_that_botocore_decodes_with_usage(cuts: list[int]) -> None:
    data = converse_stream_bytes()
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    splitter, relay = FrameSplitter(), EventStreamRelay("ConverseStream")
    out = b"".join(relay.feed(frame) for piece in pieces for frame in splitter.feed(piece))
    assert out == data
    buffer = EventStreamBuffer()
    buffer.add_data(out)
    assert [m.headers[":event-type"] for m in buffer][-1] == "metadata"
    assert (relay.usage.input_tokens, relay.usage.output_tokens) == (11, 7)
    assert relay.usage.cache_read_input_tokens == 3


def test_a_first_exception_frame_is_a_refusal_and_an_event_is_not() -> None:
    (event, *_) = frames(converse_stream_bytes())
    assert stream_refusal(bytes(event)) is None
    assert stream_refusal(encode_exception("throttlingException", "slow down")) == (
        "ThrottlingException",
        "slow down",
    )


def test_frame_headers_reads_string_headers_of_an_exception() -> None:
    (frame,) = frames(encode_exception("throttlingException", "slow down"))
    headers = frame_headers(frame)
    assert headers[":message-type"] == "exception"
    assert headers[":exception-type"] == "throttlingException"


def test_encoded_frames_are_what_botocore_decodes() -> None:
    frame = encode_frame([(":message-type", "exception"), (":exception-type", "x")], b'{"message":"m"}')
    buffer = EventStreamBuffer()
    buffer.add_data(frame)
    (message,) = list(buffer)
    assert message.headers[":exception-type"] == "x" and message.payload == b'{"message":"m"}'


# -- the relay ------------------------------------------------------------------------------------
def test_invoke_stream_relay_reads_usage_from_the_invocation_metrics_chunk() -> None:
    relay = EventStreamRelay("InvokeModelWithResponseStream")
    for frame in FrameSplitter().feed(invoke_stream_bytes()):
        assert relay.feed(frame) is frame  # the very same bytes object: nothing re-encoded
    assert (relay.usage.input_tokens, relay.usage.output_tokens) == (9, 4)


def _chunk_frames(*chunks: dict[str, object]) -> bytes:
    return b"".join(
        encode_event("chunk", {"bytes": base64.b64encode(orjson.dumps(c)).decode()}) for c in chunks
    )


@pytest.mark.parametrize(
    ("start", "stop", "intervened"),
    [
        ({}, {"amazon-bedrock-guardrailAction": "INTERVENED"}, True),  # on the last chunk
        ({"amazon-bedrock-guardrailAction": "INTERVENED"}, {}, True),  # in message_start's message
        ({}, {"amazon-bedrock-guardrailAction": "NONE"}, False),
    ],
)
def test_invoke_stream_relay_reads_the_guardrails_verdict_wherever_bedrock_puts_it(
    start: dict[str, object], stop: dict[str, object], intervened: bool
) -> None:
    trace = {"guardrail": {"actionReason": "Guardrail blocked."}}
    data = _chunk_frames(
        {"type": "message_start", "message": {"usage": {"input_tokens": 9}, **start}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 9, "outputTokenCount": 4},
            "amazon-bedrock-trace": trace,
            **stop,
        },
    )
    for cut in range(len(data) + 1):  # split anywhere: the relay sees whole frames either way
        relay = EventStreamRelay("InvokeModelWithResponseStream")
        splitter = FrameSplitter()
        out = b"".join(relay.feed(f) for part in (data[:cut], data[cut:]) for f in splitter.feed(part))
        assert out == data
    assert relay.guardrail.intervened is intervened
    assert relay.guardrail.trace == trace["guardrail"]
    assert (relay.usage.input_tokens, relay.usage.output_tokens) == (9, 4)


def test_converse_stream_relay_reads_the_guardrails_stop_and_trace() -> None:
    data = b"".join(
        encode_event(kind, payload)
        for kind, payload in [
            ("messageStart", {"role": "assistant"}),
            ("messageStop", {"stopReason": "guardrail_intervened"}),
            ("metadata", {"usage": {"inputTokens": 3, "outputTokens": 0}, "trace": {"guardrail": {"x": 1}}}),
        ]
    )
    relay = EventStreamRelay("ConverseStream")
    assert b"".join(relay.feed(f) for f in FrameSplitter().feed(data)) == data
    assert relay.guardrail.intervened and relay.guardrail.trace == {"x": 1}


@pytest.mark.parametrize(
    ("kind", "operation", "member"),
    [
        (ErrorKind.RATE_LIMIT, "ConverseStream", "throttlingException"),
        (ErrorKind.TIMEOUT, "InvokeModelWithResponseStream", "modelTimeoutException"),
        (ErrorKind.TIMEOUT, "ConverseStream", "internalServerException"),
        (ErrorKind.BAD_GATEWAY, "ConverseStream", "internalServerException"),
        (ErrorKind.OVERLOADED, "ConverseStream", "serviceUnavailableException"),
    ],
)
def test_a_failure_ends_the_stream_with_an_exception_member_the_union_declares(
    kind: ErrorKind, operation: str, member: str
) -> None:
    relay = EventStreamRelay(operation)  # type: ignore[arg-type]
    buffer = EventStreamBuffer()
    buffer.add_data(relay.fail(GatewayError(kind, "what happened")))
    (message,) = list(buffer)
    assert message.headers[":exception-type"] == member
    assert json.loads(message.payload) == {"message": "what happened"}


# -- bodies ---------------------------------------------------------------------------------------
def test_a_body_without_betas_goes_byte_for_byte() -> None:
    body = b'{ "messages" : [ ],   "x": 1.50 }'
    notes: dict[str, str] = {}
    assert lower_betas(body, None, notes) is body
    assert notes == {}


def test_supported_betas_leave_the_body_untouched() -> None:
    body = b'{"anthropic_beta": ["interleaved-thinking-2025-05-14"], "max_tokens": 1}'
    assert lower_betas(body, None, {}) is body


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (
            {"anthropic_beta": ["interleaved-thinking-2025-05-14", "made-up-1"]},
            {"anthropic_beta": ["interleaved-thinking-2025-05-14"]},
        ),
        ({"anthropic_beta": ["made-up-1"]}, {}),
        (
            {"additionalModelRequestFields": {"anthropic_beta": ["made-up-1"], "top_k": 5}},
            {"additionalModelRequestFields": {"top_k": 5}},
        ),
    ],
)
def test_betas_bedrock_refuses_are_dropped_and_named(
    given: dict[str, object], kept: dict[str, object]
) -> None:
    notes: dict[str, str] = {}
    out = lower_betas(orjson.dumps(given), None, notes)
    assert orjson.loads(out) == kept
    assert notes == {"x-bedrock-mw-dropped-betas": "made-up-1"}


def test_configured_betas_replace_the_built_in_list() -> None:
    notes: dict[str, str] = {}
    out = lower_betas(b'{"anthropic_beta": ["made-up-1"]}', ["made-up-1"], notes)
    assert orjson.loads(out) == {"anthropic_beta": ["made-up-1"]} and notes == {}


def test_converse_usage_is_read_from_the_answer() -> None:
    body = (
        b'{"output":{"message":{"content":[{"text":"\\"usage\\": {}"}]}},'
        b'"usage":{"inputTokens":4,"outputTokens":2}}'
    )
    usage = converse_usage(orjson.loads(body))
    assert (usage.input_tokens, usage.output_tokens) == (4, 2)


# -- auth and errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("authorization", "query", "signed"),
    [
        ("AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/bedrock/aws4_request, ...", b"", True),
        (None, b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc", True),
        ("Bearer vk-test", b"", False),
        ("Bearer vk-test", b"note=signature", False),
        (None, b"", False),
    ],
)
def test_sigv4_is_recognised_in_the_header_and_in_a_presigned_query(
    authorization: str | None, query: bytes, signed: bool
) -> None:
    assert is_sigv4(authorization, query) is signed


@pytest.mark.parametrize(
    ("err", "status", "error_type"),
    [
        (GatewayError(ErrorKind.PERMISSION, "no"), 403, "AccessDeniedException"),
        (GatewayError(ErrorKind.AUTHENTICATION, "no"), 403, "UnrecognizedClientException"),
        (GatewayError(ErrorKind.REQUEST_TOO_LARGE, "no"), 413, "ValidationException"),
        (
            GatewayError(ErrorKind.OVERLOADED, "no", code="ModelNotReadyException"),
            429,
            "ModelNotReadyException",
        ),
        (
            GatewayError(ErrorKind.RATE_LIMIT, "no", code="ServiceQuotaExceededException"),
            400,
            "ServiceQuotaExceededException",
        ),
        # The provider's own credentials refused upstream: not the caller's key.
        (
            GatewayError(ErrorKind.BAD_GATEWAY, "no", code="UnrecognizedClientException"),
            500,
            "InternalServerException",
        ),
    ],
)
def test_errors_in_bedrocks_shape_keep_bedrocks_type_and_status(
    err: GatewayError, status: int, error_type: str
) -> None:
    assert (err.status_for("bedrock"), err.bedrock_type) == (status, error_type)
    assert orjson.loads(error_body(err, "bedrock")) == {"message": "no"}

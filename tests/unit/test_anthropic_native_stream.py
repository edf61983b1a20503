"""Claude's native stream re-framed as Anthropic SSE: bytes passed through, usage read in passing."""

from __future__ import annotations

import base64
from typing import Any

import botocore.session
import orjson

from bedrock_mw.dispatch._wire import EventStreamDecoder, Wire
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.guardrails import GuardrailOutcome
from bedrock_mw.stream.anthropic_native import AnthropicNativeStreamTranscoder
from bedrock_mw.testing.eventstream import encode_event

WIRE = Wire.from_model(botocore.session.get_session().get_service_model("bedrock-runtime"))


def chunk(payload: dict[str, Any] | bytes) -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return {"chunk": {"bytes": data}}


START = {
    "type": "message_start",
    "message": {
        "id": "msg_bdrk_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
        },
    },
}
DELTA = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \\u00e9"}}'
STOP = {
    "type": "message_stop",
    "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 7},
}


def events(transcoder: AnthropicNativeStreamTranscoder, *items: dict[str, Any]) -> list[tuple[str, Any]]:
    out = b"".join(transcoder.feed(item) for item in items) + transcoder.finish()
    frames = []
    for frame in out.decode().split("\n\n"):
        if frame:
            head, data = frame.split("\n", 1)
            frames.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return frames


def test_deltas_are_framed_with_bedrocks_bytes_untouched() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="claude-haiku-4-5")
    assert transcoder.feed(chunk(DELTA)) == b"event: content_block_delta\ndata: " + DELTA + b"\n\n"


def test_a_whole_stream_names_the_requested_model_and_records_usage() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="claude-haiku-4-5")
    got = events(
        transcoder,
        chunk(START),
        chunk({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        chunk(DELTA),
        chunk({"type": "content_block_stop", "index": 0}),
        chunk(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            }
        ),
        chunk(STOP),
    )
    assert [name for name, _ in got] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert got[0][1]["message"]["model"] == "claude-haiku-4-5"
    assert got[0][1]["message"]["usage"]["input_tokens"] == 12  # real, where Converse's stream says 0
    assert got[-1][1] == {"type": "message_stop"}  # Bedrock's metrics stay with the gateway
    u = transcoder.usage
    assert (u.input_tokens, u.output_tokens, u.cache_write_input_tokens, u.cache_read_input_tokens) == (
        12,
        7,
        100,
        0,
    )
    assert transcoder.stop_reason == "end_turn"


def test_an_event_whose_type_is_not_first_is_still_framed_by_its_type() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    data = b'{"index":0,"type":"content_block_stop"}'
    assert transcoder.feed(chunk(data)).startswith(b"event: content_block_stop\ndata: ")


def test_a_stream_that_ends_before_message_stop_ends_with_an_error_event() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    got = events(transcoder, chunk(START), chunk(DELTA))
    assert got[-1][0] == "error" and got[-1][1]["error"]["type"] == "api_error"


def test_an_exception_in_the_stream_is_an_error_event_and_the_end() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    transcoder.feed(chunk(START))
    out = transcoder.feed({"throttlingException": {"message": "Too many tokens"}})
    assert out.startswith(b"event: error\n") and b"rate_limit_error" in out and b"Too many tokens" in out
    assert transcoder.feed(chunk(DELTA)) == b"" and transcoder.finish() == b""


def test_fail_writes_one_error_event() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    assert b"overloaded_error" in transcoder.fail(GatewayError(ErrorKind.OVERLOADED, "busy"))
    assert transcoder.fail(GatewayError(ErrorKind.OVERLOADED, "busy")) == b""


# -- a guardrail on the call ----------------------------------------------------------------------
TRACE = {"guardrail": {"inputAssessment": {"gr1": {"wordPolicy": {}}}, "actionReason": "Guardrail blocked."}}
GUARDED_DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}


def guarded_stream(*, action: str = "INTERVENED", trace: Any = TRACE) -> list[dict[str, Any]]:
    """A guarded native stream as the emulator sends it: Bedrock's members on the last chunk."""
    stop: dict[str, Any] = {**STOP, "amazon-bedrock-guardrailAction": action}
    if trace is not None:
        stop["amazon-bedrock-trace"] = trace
    return [
        chunk(START),
        chunk({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        chunk(DELTA),
        chunk({"type": "content_block_stop", "index": 0}),
        chunk(GUARDED_DELTA),
        chunk(stop),
    ]


def test_an_intervention_on_the_last_chunk_makes_the_held_delta_a_refusal_with_the_trace() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    got = events(transcoder, *guarded_stream())
    assert [name for name, _ in got][-2:] == ["message_delta", "message_stop"]
    delta = got[-2][1]
    assert delta["delta"]["stop_reason"] == "refusal"  # Bedrock kept the model's end_turn
    assert delta["amazon-bedrock-trace"] == TRACE  # where the Converse path puts it
    assert got[-1][1] == {"type": "message_stop"}  # Bedrock's members stay with the gateway
    assert transcoder.stop_reason == "refusal"
    assert transcoder.guardrail.intervened and transcoder.guardrail.trace == TRACE["guardrail"]


def test_a_guardrail_that_let_the_answer_through_leaves_the_stop_reason_as_the_model_ended() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    got = events(transcoder, *guarded_stream(action="NONE", trace=None))
    assert got[-2][1] == GUARDED_DELTA
    assert transcoder.stop_reason == "end_turn"
    assert transcoder.guardrail.action == "NONE" and transcoder.guardrail.trace is None


def test_an_intervention_reported_in_message_start_is_a_refusal_too() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    start = {**START, "message": {**START["message"], "amazon-bedrock-guardrailAction": "INTERVENED"}}
    got = events(transcoder, chunk(start), chunk(GUARDED_DELTA), chunk(STOP))
    assert "amazon-bedrock-guardrailAction" not in got[0][1]["message"]
    assert got[-2][1]["delta"]["stop_reason"] == "refusal"
    assert "amazon-bedrock-trace" not in got[-2][1]  # no trace asked for, none invented


def test_a_trace_in_bedrocks_documented_guardrails_spelling_is_read() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    got = events(transcoder, *guarded_stream(trace={"guardrails": {"actionReason": "x"}}))
    assert got[-2][1]["amazon-bedrock-trace"] == {"guardrail": {"actionReason": "x"}}


def test_a_stream_cut_after_message_delta_still_sends_the_delta_before_the_error() -> None:
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    got = events(transcoder, chunk(START), chunk(GUARDED_DELTA))
    assert [name for name, _ in got] == ["message_start", "message_delta", "error"]


def _encoded(items: list[dict[str, Any]]) -> bytes:
    return b"".join(
        encode_event("chunk", {"bytes": base64.b64encode(item["chunk"]["bytes"]).decode()}) for item in items
    )


def _transcoded(data: bytes, split: int) -> tuple[bytes, GuardrailOutcome]:
    decoder = EventStreamDecoder(WIRE["InvokeModelWithResponseStream"])
    transcoder = AnthropicNativeStreamTranscoder(model="m")
    out = b"".join(transcoder.feed(e) for part in (data[:split], data[split:]) for e in decoder.feed(part))
    return out + transcoder.finish(), transcoder.guardrail


def test_a_guarded_stream_split_at_every_byte_boundary_transcodes_identically() -> None:
    data = _encoded(guarded_stream())
    whole, outcome = _transcoded(data, len(data))
    assert b'"stop_reason":"refusal"' in whole and outcome.intervened
    for split in range(len(data) + 1):
        assert _transcoded(data, split) == (whole, outcome)

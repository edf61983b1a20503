"""Claude's native stream re-framed as Anthropic SSE: bytes passed through, usage read in passing."""

from __future__ import annotations

from typing import Any

import orjson

from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.stream.anthropic_native import AnthropicNativeStreamTranscoder


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

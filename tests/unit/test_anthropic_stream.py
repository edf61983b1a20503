"""The ConverseStream -> Anthropic SSE transcoder: event order, bytes, and agreement with the SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from anthropic import Anthropic
from anthropic._streaming import SSEDecoder
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.stream.anthropic import AnthropicStreamTranscoder
from bedrock_mw.translate.anthropic import converse_to_anthropic
from bedrock_mw.translate.types import ConverseCall, TokenUsage

MODEL = "claude-gateway-test"
USAGE = {
    "inputTokens": 12,
    "outputTokens": 7,
    "totalTokens": 19,
    "cacheReadInputTokens": 4,
    "cacheWriteInputTokens": 1,
}


def delta(index: int, **d: Any) -> dict[str, Any]:
    return {"contentBlockDelta": {"contentBlockIndex": index, "delta": d}}


def stop(index: int) -> dict[str, Any]:
    return {"contentBlockStop": {"contentBlockIndex": index}}


def metadata(usage: dict[str, Any] = USAGE) -> dict[str, Any]:
    return {"metadata": {"usage": usage, "metrics": {"latencyMs": 5}}}


# One answer of every block kind, as ConverseStream sends it and as Converse returns it whole.
STREAM_EVENTS: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    delta(0, reasoningContent={"text": "hm"}),
    delta(0, reasoningContent={"text": "m"}),
    delta(0, reasoningContent={"signature": "sig"}),
    stop(0),
    delta(1, reasoningContent={"redactedContent": b"\x00"}),
    delta(1, reasoningContent={"redactedContent": b"\x01"}),
    stop(1),
    delta(2, text="Hi"),
    delta(2, text=" there"),
    stop(2),
    {
        "contentBlockStart": {
            "contentBlockIndex": 3,
            "start": {"toolUse": {"toolUseId": "toolu_1", "name": "get"}},
        }
    },
    delta(3, toolUse={"input": '{"a":'}),
    delta(3, toolUse={"input": " 1}"}),
    stop(3),
    {"messageStop": {"stopReason": "tool_use"}},
    metadata(),
]
WHOLE_RESPONSE: dict[str, Any] = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
                {"reasoningContent": {"redactedContent": b"\x00\x01"}},
                {"text": "Hi there"},
                {"toolUse": {"toolUseId": "toolu_1", "name": "get", "input": {"a": 1}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": USAGE,
    "metrics": {"latencyMs": 5},
}


def transcoder(call: ConverseCall | None = None) -> AnthropicStreamTranscoder:
    return AnthropicStreamTranscoder(
        model=MODEL, message_id="msg_test", call=call or ConverseCall(request={})
    )


def run(events: list[dict[str, Any]], call: ConverseCall | None = None, *, finish: bool = True) -> bytes:
    t = transcoder(call)
    out = b"".join(t.feed(e) for e in events)
    return out + (t.finish() if finish else b"")


def parse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """SSE frames as (event name, JSON data), checking every frame is well formed."""
    assert data.endswith(b"\n\n") or not data
    frames = []
    for raw in data.split(b"\n\n")[:-1]:
        name, payload = raw.split(b"\n")
        assert name.startswith(b"event: ") and payload.startswith(b"data: ")
        body = json.loads(payload[6:])
        assert body["type"] == name[7:].decode()
        frames.append((body["type"], body))
    return frames


def names(data: bytes) -> list[str]:
    return [n for n, _ in parse(data)]


def test_the_sdk_accumulator_rebuilds_the_non_streamed_message() -> None:
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for sse in SSEDecoder().iter_bytes(iter([run(STREAM_EVENTS)])):
        snapshot = accumulate_event(event=sse.json(), current_snapshot=snapshot, json_bufs=json_bufs)
    expected = converse_to_anthropic(
        WHOLE_RESPONSE, model=MODEL, call=ConverseCall(request={}), message_id="msg_test"
    )
    assert snapshot is not None
    assert snapshot.model_dump(exclude_none=True) == Message.model_validate(expected).model_dump(
        exclude_none=True
    )


def test_the_official_client_reads_the_stream_end_to_end() -> None:
    payload = run(STREAM_EVENTS)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=payload)

    client = Anthropic(
        api_key="k",
        base_url="http://gateway",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 12 and final.usage.output_tokens == 7
    assert final.usage.cache_read_input_tokens == 4 and final.usage.cache_creation_input_tokens == 1


def test_text_stream_golden_bytes() -> None:
    events = [
        {"messageStart": {"role": "assistant"}},
        delta(0, text="Hi"),
        stop(0),
        {"messageStop": {"stopReason": "end_turn"}},
        metadata(),
    ]
    assert run(events, finish=False) == (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_test","type":"message",'
        b'"role":"assistant","model":"claude-gateway-test","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,'
        b'"cache_read_input_tokens":0}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta",'
        b'"delta":{"stop_reason":"end_turn","stop_sequence":null},'
        b'"usage":{"input_tokens":12,"output_tokens":7,"cache_creation_input_tokens":1,'
        b'"cache_read_input_tokens":4}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


def test_every_event_is_answered_at_once() -> None:
    t = transcoder()
    expected = {
        0: ["message_start"],
        1: ["content_block_start", "content_block_delta"],
        2: ["content_block_delta"],
        3: ["content_block_delta"],
        4: ["content_block_stop"],
        8: ["content_block_start", "content_block_delta"],
        9: ["content_block_delta"],
        11: ["content_block_start"],
        12: ["content_block_delta"],
        15: [],  # messageStop: usage is still to come
        16: ["message_delta", "message_stop"],
    }
    for i, event in enumerate(STREAM_EVENTS):
        got = names(t.feed(event))
        if i in expected:
            assert got == expected[i], (i, event)
    assert t.finish() == b""


def test_message_end_waits_for_metadata() -> None:
    t = transcoder()
    t.feed({"messageStart": {"role": "assistant"}})
    assert names(t.feed(delta(0, text="x"))) == ["content_block_start", "content_block_delta"]
    assert names(t.feed({"messageStop": {"stopReason": "end_turn"}})) == ["content_block_stop"]
    assert t.stop_reason is None
    assert names(t.feed(metadata())) == ["message_delta", "message_stop"]
    assert t.stop_reason == "end_turn"
    assert t.usage == TokenUsage(12, 7, 4, 1)


def test_finish_without_metadata_sends_the_usage_known() -> None:
    events = [
        {"messageStart": {"role": "assistant"}},
        delta(0, text="x"),
        {"messageStop": {"stopReason": "max_tokens"}},
    ]
    frames = parse(run(events))
    assert [n for n, _ in frames][-2:] == ["message_delta", "message_stop"]
    assert frames[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert frames[-2][1]["usage"]["output_tokens"] == 0


def test_finish_before_message_stop_is_an_error() -> None:
    frames = parse(run([{"messageStart": {"role": "assistant"}}, delta(0, text="x")]))
    assert frames[-1][0] == "error"
    assert frames[-1][1]["error"]["type"] == "api_error"


def test_fail_emits_one_error_event_and_ends_the_stream() -> None:
    t = transcoder()
    t.feed({"messageStart": {"role": "assistant"}})
    out = t.fail(GatewayError(ErrorKind.OVERLOADED, "busy"))
    assert (
        out
        == b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    )
    assert (
        t.feed(delta(0, text="late")) == b""
        and t.finish() == b""
        and t.fail(GatewayError(ErrorKind.API_ERROR, "x")) == b""
    )


@pytest.mark.parametrize(
    ("name", "error_type"),
    [
        ("throttlingException", "rate_limit_error"),
        ("modelStreamErrorException", "api_error"),
        ("internalServerException", "api_error"),
        ("serviceUnavailableException", "overloaded_error"),
        ("validationException", "invalid_request_error"),
    ],
)
def test_stream_exceptions_become_error_events(name: str, error_type: str) -> None:
    frames = parse(run([{"messageStart": {"role": "assistant"}}, {name: {"message": "nope"}}]))
    assert frames[-1] == ("error", {"type": "error", "error": {"type": error_type, "message": "nope"}})


def test_malformed_output_ends_in_an_error_not_a_stop() -> None:
    frames = parse(
        run(
            [
                {"messageStart": {"role": "assistant"}},
                {"messageStop": {"stopReason": "malformed_tool_use"}},
                metadata(),
            ]
        )
    )
    assert [n for n, _ in frames] == ["message_start", "error"]


def test_stop_sequence_is_reported_in_message_delta() -> None:
    call = ConverseCall(request={}, stop_sequences=("A", "B"))
    events = [
        {"messageStart": {"role": "assistant"}},
        delta(0, text="x"),
        {
            "messageStop": {
                "stopReason": "stop_sequence",
                "additionalModelResponseFields": {"stop_sequence": "B"},
            }
        },
        metadata(),
    ]
    frames = parse(run(events, call))
    assert frames[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "B"}


def test_refusal_maps_from_guardrail() -> None:
    frames = parse(
        run(
            [
                {"messageStart": {"role": "assistant"}},
                {"messageStop": {"stopReason": "guardrail_intervened"}},
                metadata(),
            ]
        )
    )
    assert frames[-2][1]["delta"]["stop_reason"] == "refusal"


def test_blocks_get_anthropic_indices_in_order_even_when_converse_skips() -> None:
    events = [
        {"messageStart": {"role": "assistant"}},
        delta(3, text="a"),
        stop(3),
        delta(7, text="b"),
        stop(7),
    ]
    frames = parse(run([*events, {"messageStop": {"stopReason": "end_turn"}}]))
    starts = [f["index"] for n, f in frames if n == "content_block_start"]
    assert starts == [0, 1]


def test_a_missing_message_start_is_supplied() -> None:
    assert names(transcoder().feed(delta(0, text="x")))[0] == "message_start"


def test_unclosed_blocks_are_closed_at_message_stop() -> None:
    t = transcoder()
    t.feed({"messageStart": {"role": "assistant"}})
    t.feed(delta(0, text="x"))
    t.feed(delta(1, reasoningContent={"redactedContent": b"zz"}))
    frames = parse(t.feed({"messageStop": {"stopReason": "end_turn"}}))
    assert [(n, f.get("index")) for n, f in frames] == [
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
    ]
    assert frames[1][1]["content_block"] == {"type": "redacted_thinking", "data": "eno="}


def test_a_change_of_kind_at_one_index_opens_a_new_block() -> None:
    t = transcoder()
    t.feed({"messageStart": {"role": "assistant"}})
    t.feed(delta(0, reasoningContent={"text": "think"}))
    assert names(t.feed(delta(0, text="say"))) == [
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
    ]


def test_unknown_and_empty_events_are_ignored() -> None:
    t = transcoder()
    assert t.feed({}) == b"" and t.feed({"somethingNew": {}}) == b""
    assert t.feed(delta(0, citation={"title": "t"})) == b""  # a citation with no location says nothing
    assert t.feed({"contentBlockStop": {"contentBlockIndex": 9}}) == b""


def test_output_is_deterministic() -> None:
    assert run(STREAM_EVENTS) == run(STREAM_EVENTS)


# -- citations -------------------------------------------------------------------------------------

CITATION = {
    "title": "document-1",
    "sourceContent": [{"text": "The sky is blue."}],
    "location": {"documentChar": {"documentIndex": 0, "start": 0, "end": 16}},
}
CITED_CALL = ConverseCall(request={}, document_titles=("Sky facts",))
MAPPED_CITATION = {
    "type": "char_location",
    "cited_text": "The sky is blue.",
    "document_index": 0,
    "document_title": "Sky facts",
    "start_char_index": 0,
    "end_char_index": 16,
}


def test_a_citation_delta_becomes_a_citations_delta_on_the_text_block() -> None:
    events = [delta(0, text="Blue."), delta(0, citation=CITATION), stop(0)]
    frames = parse(run(events, CITED_CALL, finish=False))
    assert frames[1][1]["content_block"] == {"type": "text", "text": ""}
    assert frames[3][1] == {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "citations_delta", "citation": MAPPED_CITATION},
    }


def test_a_block_opened_by_a_citation_starts_with_an_empty_citations_list() -> None:
    frames = parse(run([delta(0, citation=CITATION), delta(0, text="Blue.")], CITED_CALL, finish=False))
    assert frames[1][1]["content_block"] == {"type": "text", "text": "", "citations": []}
    assert [f[1]["delta"]["type"] for f in frames[2:]] == ["citations_delta", "text_delta"]


def test_citations_with_unknown_locations_are_not_forwarded() -> None:
    web = {**CITATION, "location": {"web": {"url": "https://example.com"}}}
    assert transcoder(CITED_CALL).feed(delta(0, citation=web)) == b""


def test_the_sdk_accumulator_rebuilds_the_non_streamed_cited_message() -> None:
    events = [
        {"messageStart": {"role": "assistant"}},
        delta(0, text="Intro. "),
        stop(0),
        delta(1, text="The sky "),
        delta(1, text="is blue."),
        delta(1, citation=CITATION),
        stop(1),
        {"messageStop": {"stopReason": "end_turn"}},
        metadata(),
    ]
    whole = {
        **WHOLE_RESPONSE,
        "stopReason": "end_turn",
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Intro. "},
                    {
                        "citationsContent": {
                            "content": [{"text": "The sky is blue."}],
                            "citations": [CITATION],
                        }
                    },
                ],
            }
        },
    }
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for sse in SSEDecoder().iter_bytes(iter([run(events, CITED_CALL)])):
        snapshot = accumulate_event(event=sse.json(), current_snapshot=snapshot, json_bufs=json_bufs)
    expected = converse_to_anthropic(whole, model=MODEL, call=CITED_CALL, message_id="msg_test")
    assert expected["content"][1]["citations"] == [MAPPED_CITATION]
    assert snapshot is not None
    assert snapshot.model_dump() == Message.model_validate(expected).model_dump()

"""ConverseStream → Responses SSE events (docs/responses.md, "Streaming"), read back by the openai SDK."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai import omit
from openai._models import construct_type_unchecked
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.families import family_of
from bedrock_mw.stream.responses import ResponsesStreamTranscoder
from bedrock_mw.translate.responses import (
    ReasoningSeal,
    ResponseHead,
    converse_to_response,
    responses_to_converse,
)
from bedrock_mw.translate.responses.request import ResponsesOptions
from tests.unit.test_responses_translate import CLAUDE, TOOL

SEAL = ReasoningSeal("k")
USAGE = {"inputTokens": 12, "outputTokens": 8, "totalTokens": 20, "cacheReadInputTokens": 4}


def call(**body: Any) -> Any:
    return responses_to_converse(
        {"model": "m", "input": "Hi", "stream": True, **body}, CLAUDE, ResponsesOptions(), SEAL
    )


def transcoder(c: Any = None) -> ResponsesStreamTranscoder:
    c = c if c is not None else call(tools=[TOOL])
    return ResponsesStreamTranscoder(
        head=ResponseHead(model="m", echo=c.echo, id="resp_1"), call=c, seal=SEAL
    )


def parse(data: bytes) -> list[dict[str, Any]]:
    """Split SSE bytes into events; each frame's ``event:`` line must match its data's type."""
    out = []
    for frame in data.split(b"\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split(b"\n")
        payload = orjson.loads(data_line.removeprefix(b"data: "))
        assert event_line == b"event: " + payload["type"].encode()
        out.append(payload)
    return out


def converse_events() -> list[dict[str, Any]]:
    return [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hm"}}}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "m"}}}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s"}}}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"text": "Let me "}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"text": "check."}}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {
            "contentBlockStart": {
                "contentBlockIndex": 2,
                "start": {"toolUse": {"toolUseId": "t1", "name": "get"}},
            }
        },
        {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"city": "Par'}}}},
        {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"toolUse": {"input": 'is"}'}}}},
        {"contentBlockStop": {"contentBlockIndex": 2}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": USAGE, "metrics": {"latencyMs": 5}}},
    ]


NON_STREAMED = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": "t1", "name": "get", "input": {"city": "Paris"}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": USAGE,
}


def sdk_state(events: list[dict[str, Any]]) -> ResponseStreamState[Any]:
    """Feed events to the openai SDK's own stream accumulator (it raises on grammar it rejects)."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=[TOOL], text_format=omit)  # type: ignore[list-item]
    for event in events:
        state.handle_event(construct_type_unchecked(type_=ResponseStreamEvent, value=event))  # type: ignore[arg-type]
    return state


def without_ids(value: Any) -> Any:
    """Ids and seals are fresh per call; arguments compare as JSON (streamed text keeps its spaces)."""
    if isinstance(value, dict):
        return {
            k: orjson.loads(v) if k == "arguments" else without_ids(v)
            for k, v in value.items()
            if k not in ("id", "encrypted_content")
        }
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def test_the_event_grammar_of_a_reasoning_text_and_tool_answer() -> None:
    t = transcoder()
    events = parse(b"".join(t.feed(e) for e in converse_events()) + t.finish())
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2]


def test_the_sdk_reassembles_the_non_streamed_response() -> None:
    c = call(tools=[TOOL])
    t = transcoder(c)
    events = parse(b"".join(t.feed(e) for e in converse_events()) + t.finish())
    state = sdk_state(events)
    final = events[-1]["response"]
    expected, kept = converse_to_response(
        NON_STREAMED, ResponseHead(model="m", echo=c.echo, id="resp_1"), c, SEAL
    )
    assert without_ids({**final, "created_at": 0}) == without_ids({**expected, "created_at": 0})
    completed = state._completed_response  # the SDK's own reassembly of the events
    assert completed is not None and completed.output_text == "Let me check."
    assert SEAL.open(t.items[0]["encrypted_content"], "p") == SEAL.open(kept[0]["encrypted_content"], "p")
    assert t.final is final or t.final == final


def test_each_feed_returns_its_events_at_once() -> None:
    t = transcoder()
    assert [e["type"] for e in parse(t.feed({"messageStart": {"role": "assistant"}}))] == [
        "response.created",
        "response.in_progress",
    ]
    delta = parse(t.feed({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "x"}}}))
    assert delta[-1]["type"] == "response.output_text.delta" and delta[-1]["delta"] == "x"


@pytest.mark.parametrize("cut", range(len(converse_events()) + 1))
def test_a_failure_after_any_event_ends_in_response_failed_the_sdk_accepts(cut: int) -> None:
    t = transcoder()
    out = b"".join(t.feed(e) for e in converse_events()[:cut])
    out += t.fail(GatewayError(ErrorKind.OVERLOADED, "busy"))
    events = parse(out)
    sdk_state(events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "overloaded", "message": "busy"}
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert t.finish() == b"" and t.feed(converse_events()[0]) == b""


@pytest.mark.parametrize("cut", range(len(converse_events())))
def test_a_stream_that_ends_early_never_looks_complete(cut: int) -> None:
    t = transcoder()
    for e in converse_events()[:cut]:
        t.feed(e)
    if cut > 12:  # messageStop arrived: only metadata is missing, the answer is whole
        return
    tail = parse(t.finish())
    assert tail[-1]["type"] == "response.failed"
    assert t.final is None


def test_max_tokens_ends_with_response_incomplete() -> None:
    t = transcoder(call())
    t.feed({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "x"}}})
    t.feed({"messageStop": {"stopReason": "max_tokens"}})
    last = parse(t.finish())[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_encrypted_content_is_streamed_only_when_included() -> None:
    shown = transcoder(call(include=["reasoning.encrypted_content"]))
    hidden = transcoder(call())
    for t, sealed in ((shown, True), (hidden, False)):
        events = parse(b"".join(t.feed(e) for e in converse_events()[:5]))
        done = next(e for e in events if e["type"] == "response.output_item.done")
        assert bool(done["item"]["encrypted_content"]) is sealed


def test_the_forced_structured_output_tool_streams_as_text() -> None:
    schema = {"type": "object"}
    nova = responses_to_converse(
        {"model": "m", "input": "Hi",
         "text": {"format": {"type": "json_schema", "name": "out", "schema": schema}}},
        family_of("meta.llama3-1-70b-instruct-v1:0"),
        ResponsesOptions(),
        SEAL,
    )  # fmt: skip
    if "toolConfig" not in nova.converse.request:
        pytest.skip("this family has native structured output")
    t = transcoder(nova)
    out = t.feed(
        {
            "contentBlockStart": {
                "contentBlockIndex": 0,
                "start": {"toolUse": {"toolUseId": "t", "name": "out"}},
            }
        }
    )
    out += t.feed({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a":1}'}}}})
    out += t.feed({"contentBlockStop": {"contentBlockIndex": 0}})
    out += t.feed({"messageStop": {"stopReason": "tool_use"}}) + t.finish()
    final = parse(out)[-1]["response"]
    assert final["output"][0]["type"] == "message"
    assert final["output"][0]["content"][0]["text"] == '{"a":1}'

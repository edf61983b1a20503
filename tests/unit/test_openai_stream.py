"""ConverseStream → chat.completion.chunk SSE (docs/openai.md, "Streaming")."""

from __future__ import annotations

from typing import Any

import orjson
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.families import family_of
from bedrock_mw.stream.openai import OpenAIStreamTranscoder
from bedrock_mw.translate.openai import OpenAIOptions, converse_to_openai, openai_to_converse
from bedrock_mw.translate.types import ConverseCall

PLAIN = ConverseCall(request={"messages": []}, stream=True)
USAGE = {"inputTokens": 12, "outputTokens": 8, "totalTokens": 20, "cacheReadInputTokens": 4}


def frames(data: bytes) -> list[Any]:
    """Split SSE bytes into decoded ``data:`` payloads ("[DONE]" kept as a string)."""
    out: list[Any] = []
    for frame in data.split(b"\n\n"):
        if not frame:
            continue
        assert frame.startswith(b"data: ")
        payload = frame[len(b"data: ") :]
        out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def events(*items: dict[str, Any]) -> list[dict[str, Any]]:
    return list(items)


def transcoder(call: ConverseCall = PLAIN, include_usage: bool = False) -> OpenAIStreamTranscoder:
    return OpenAIStreamTranscoder(
        model="m", completion_id="chatcmpl-1", created=3, call=call, include_usage=include_usage
    )


def tool_events() -> list[dict[str, Any]]:
    return [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s"}}}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"text": "Let me check."}}},
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
        {
            "contentBlockStart": {
                "contentBlockIndex": 3,
                "start": {"toolUse": {"toolUseId": "t2", "name": "now"}},
            }
        },
        {"contentBlockDelta": {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}},
        {"contentBlockStop": {"contentBlockIndex": 3}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": USAGE, "metrics": {"latencyMs": 5}}},
    ]


def test_text_stream_golden() -> None:
    t = transcoder()
    out = (
        b"".join(
            t.feed(e)
            for e in events(
                {"messageStart": {"role": "assistant"}},
                {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hi"}}},
                {"contentBlockStop": {"contentBlockIndex": 0}},
                {"messageStop": {"stopReason": "end_turn"}},
                {"metadata": {"usage": USAGE, "metrics": {"latencyMs": 5}}},
            )
        )
        + t.finish()
    )
    head = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 3,
        "model": "m",
        "system_fingerprint": None,
    }

    def choice(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}

    assert frames(out) == [
        choice({"role": "assistant", "content": ""}),
        choice({"content": "Hi"}),
        choice({}, "stop"),
        "[DONE]",
    ]
    assert t.finish_reason == "stop"
    assert t.usage.input_tokens == 12 and t.usage.cache_read_input_tokens == 4


def test_each_feed_returns_its_frames_immediately() -> None:
    t = transcoder()
    assert t.feed({"messageStart": {"role": "assistant"}}) != b""
    assert frames(t.feed({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "x"}}}))[0][
        "choices"
    ][0]["delta"] == {"content": "x"}
    assert t.feed({"contentBlockStop": {"contentBlockIndex": 0}}) == b""


def test_tool_call_chunks_shape() -> None:
    t = transcoder()
    chunks = [c for e in tool_events() for c in frames(t.feed(e))]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert {"reasoning_content": "hmm"} in deltas
    assert {
        "tool_calls": [
            {"index": 0, "id": "t1", "type": "function", "function": {"name": "get", "arguments": ""}}
        ]
    } in deltas
    assert {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Par'}}]} in deltas
    assert {
        "tool_calls": [
            {"index": 1, "id": "t2", "type": "function", "function": {"name": "now", "arguments": ""}}
        ]
    } in deltas
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_sdk_reassembles_the_same_tool_calls_as_the_non_streamed_answer() -> None:
    t = transcoder(include_usage=True)
    sse = b"".join(t.feed(e) for e in tool_events()) + t.finish()
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    payloads = frames(sse)
    assert payloads[-1] == "[DONE]"
    for payload in payloads[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate(payload))
    streamed = state.get_final_completion()

    non_streamed = converse_to_openai(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                        {"text": "Let me check."},
                        {"toolUse": {"toolUseId": "t1", "name": "get", "input": {"city": "Paris"}}},
                        {"toolUse": {"toolUseId": "t2", "name": "now", "input": {}}},
                    ],
                }
            },
            "stopReason": "tool_use",
            "usage": USAGE,
        },
        model="m",
        call=PLAIN,
        completion_id="chatcmpl-1",
        created=3,
    )
    message = non_streamed["choices"][0]["message"]
    calls = streamed.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
        for c in message["tool_calls"]
    ]
    assert streamed.choices[0].message.content == message["content"]
    assert streamed.choices[0].finish_reason == "tool_calls"
    assert (
        streamed.usage is not None and streamed.usage.model_dump(exclude_none=True) == non_streamed["usage"]
    )


def test_usage_chunk_has_no_choices_and_precedes_done() -> None:
    t = transcoder(include_usage=True)
    for event in tool_events():
        for chunk in frames(t.feed(event)):
            assert chunk["usage"] is None  # OpenAI: every other chunk carries usage null
    tail = frames(t.finish())
    assert tail[-1] == "[DONE]"
    assert tail[-2]["choices"] == []
    assert tail[-2]["usage"]["prompt_tokens"] == 16
    assert tail[-2]["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}


def test_a_stream_that_ends_before_the_model_stopped_ends_in_an_error_not_done() -> None:
    t = transcoder()
    t.feed({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "x"}}})
    tail = frames(t.finish())
    assert tail == [
        {
            "error": {
                "message": "Bedrock ended the stream before the model stopped",
                "type": "server_error",
                "param": None,
                "code": "bad_gateway",
            }
        }
    ]


def test_fail_sends_an_error_frame_and_never_done() -> None:
    t = transcoder()
    t.feed({"messageStart": {"role": "assistant"}})
    out = t.fail(GatewayError(ErrorKind.OVERLOADED, "busy"))
    assert frames(out) == [
        {"error": {"message": "busy", "type": "server_error", "param": None, "code": "overloaded"}}
    ]
    assert t.finish() == b""
    assert t.feed({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "x"}}}) == b""


def test_structured_output_tool_streams_as_content() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}}}
    call = openai_to_converse(
        {"messages": [{"role": "user", "content": "hi"}], "response_format": schema, "stream": True},
        family_of("amazon.nova-pro-v1:0"),
        OpenAIOptions(),
    )
    t = transcoder(call)
    out = (
        b"".join(
            t.feed(e)
            for e in events(
                {"messageStart": {"role": "assistant"}},
                {
                    "contentBlockStart": {
                        "contentBlockIndex": 0,
                        "start": {"toolUse": {"toolUseId": "t", "name": "person"}},
                    }
                },
                {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"name":'}}}},
                {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '"Ann"}'}}}},
                {"messageStop": {"stopReason": "tool_use"}},
            )
        )
        + t.finish()
    )
    chunks = frames(out)[:-1]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == '{"name":"Ann"}'
    assert all("tool_calls" not in c["choices"][0]["delta"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

"""OpenAI chat ⇄ native InvokeModel bodies (Titan Text, Llama 3) and their streams (docs/openai.md)."""

from __future__ import annotations

import base64
from typing import Any

import botocore.session
import orjson
import pytest

from bedrock_mw.dispatch._wire import EventStreamDecoder, Wire
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.families import family_of
from bedrock_mw.stream.native import NativeChatStreamTranscoder
from bedrock_mw.testing.eventstream import encode_event
from bedrock_mw.translate.openai import OpenAIOptions
from bedrock_mw.translate.openai.native import (
    invoke_to_openai,
    llama3_prompt,
    openai_to_invoke,
    titan_transcript,
)
from bedrock_mw.translate.types import InvokeCall

TITAN = family_of("amazon.titan-text-express-v1")
LLAMA = family_of("meta.llama3-1-8b-instruct-v1:0")
CLAUDE = family_of("anthropic.claude-sonnet-4-5-20250929-v1:0")
DEFAULT = OpenAIOptions()


def chat(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": "titan", "messages": list(messages), **params}


def frames(data: bytes) -> list[Any]:
    out: list[Any] = []
    for frame in filter(None, data.split(b"\n\n")):
        payload = frame.removeprefix(b"data: ")
        out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def test_titan_body_golden() -> None:
    call = openai_to_invoke(
        chat(
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
            max_tokens=50,
            temperature=0.2,
            top_p=0.9,
            stream=True,
        ),
        TITAN,
        DEFAULT,
    )
    assert call.body == {
        "inputText": "Be brief.\n\nUser: Hi\nBot: Hello!\nUser: 2+2?\nBot:",
        "textGenerationConfig": {
            "stopSequences": ["User:"],
            "maxTokenCount": 50,
            "temperature": 0.2,
            "topP": 0.9,
        },
    }
    assert call.stream is True


def test_titan_transcript_without_system_and_with_prefill() -> None:
    assert titan_transcript([("user", "a")]) == "User: a\nBot:"
    assert titan_transcript([("user", "a"), ("assistant", "b")]) == "User: a\nBot: b"


def test_titan_stop_sequences_are_limited_to_what_titan_accepts() -> None:
    assert openai_to_invoke(chat({"role": "user", "content": "x"}, stop="|"), TITAN, DEFAULT).body[
        "textGenerationConfig"
    ]["stopSequences"] == ["|"]
    with pytest.raises(GatewayError) as caught:
        openai_to_invoke(chat({"role": "user", "content": "x"}, stop=["END"]), TITAN, DEFAULT)
    assert caught.value.param == "stop[0]"


def test_llama_prompt_format() -> None:
    assert llama3_prompt([("system", "S"), ("user", "U")]) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert llama3_prompt([("user", "U"), ("assistant", "A")]).endswith("<|end_header_id|>\n\nA")


def test_llama_native_body() -> None:
    call = openai_to_invoke(
        chat({"role": "user", "content": "U"}, max_tokens=9, temperature=1.5), LLAMA, DEFAULT
    )
    assert call.body["max_gen_len"] == 9
    assert call.body["temperature"] == 1.0  # OpenAI's 0..2 is clamped to the native 0..1
    assert call.body["prompt"].startswith("<|begin_of_text|>")


REFUSED = [
    (
        "tools",
        chat({"role": "user", "content": "x"}, tools=[{"type": "function", "function": {"name": "f"}}]),
        "tools",
    ),
    (
        "image",
        chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]}),
        "messages[0].content[0]",
    ),
    (
        "tool message",
        chat({"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "a", "content": "r"}),
        "messages[1].role",
    ),
    (
        "json_schema",
        chat({"role": "user", "content": "x"}, response_format={"type": "json_schema"}),
        "response_format.type",
    ),
    ("reasoning", chat({"role": "user", "content": "x"}, reasoning_effort="low"), "reasoning_effort"),
    ("seed", chat({"role": "user", "content": "x"}, seed=3), "seed"),
    ("no user message", chat({"role": "system", "content": "x"}), "messages"),
    ("n=2", chat({"role": "user", "content": "x"}, n=2), "n"),
]


@pytest.mark.parametrize(("name", "request_body", "param"), REFUSED, ids=[r[0] for r in REFUSED])
def test_native_refusals(name: str, request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        openai_to_invoke(request_body, TITAN, DEFAULT)
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert caught.value.param == param


def test_family_without_native_chat_body_is_refused() -> None:
    with pytest.raises(GatewayError):
        openai_to_invoke(chat({"role": "user", "content": "x"}), CLAUDE, DEFAULT)


def test_cache_control_and_json_object_on_titan() -> None:
    call = openai_to_invoke(
        chat(
            {
                "role": "user",
                "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
            },
            response_format={"type": "json_object"},
        ),
        TITAN,
        DEFAULT,
    )
    assert call.notes == {"x-bedrock-mw-dropped-cache-control": "1"}
    assert "Respond with a single valid JSON object" in call.body["inputText"]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("FINISH", "stop"),
        ("LENGTH", "length"),
        ("STOP_CRITERIA_MET", "stop"),
        ("CONTENT_FILTERED", "content_filter"),
    ],
)
def test_titan_response(reason: str, finish: str) -> None:
    result = invoke_to_openai(
        {
            "inputTextTokenCount": 7,
            "results": [{"tokenCount": 3, "outputText": " Four.", "completionReason": reason}],
        },
        family=TITAN,
        model="titan",
        call=InvokeCall(body={}),
        completion_id="chatcmpl-1",
        created=1,
    )
    assert result["choices"][0]["message"] == {"role": "assistant", "content": "Four.", "refusal": None}
    assert result["choices"][0]["finish_reason"] == finish
    assert result["usage"]["prompt_tokens"] == 7 and result["usage"]["completion_tokens"] == 3
    assert result["object"] == "chat.completion"


def test_input_token_header_fills_a_missing_count() -> None:
    result = invoke_to_openai(
        {"generation": "hi", "stop_reason": "length", "generation_token_count": 2},
        family=LLAMA,
        model="llama",
        call=InvokeCall(body={}),
        completion_id="c",
        created=1,
        input_tokens_header=11,
    )
    assert result["usage"]["prompt_tokens"] == 11
    assert result["choices"][0]["finish_reason"] == "length"


def titan_stream(include_usage: bool = False) -> NativeChatStreamTranscoder:
    return NativeChatStreamTranscoder(
        family=TITAN,
        model="titan",
        completion_id="chatcmpl-1",
        created=1,
        call=InvokeCall(body={}, stream=True),
        include_usage=include_usage,
    )


def test_titan_stream_golden() -> None:
    t = titan_stream(include_usage=True)
    out = (
        b"".join(
            t.feed_chunk(c)
            for c in [
                {
                    "outputText": "\n",
                    "index": 0,
                    "totalOutputTextTokenCount": 1,
                    "completionReason": None,
                    "inputTextTokenCount": 5,
                },
                {"outputText": " Four", "index": 0, "totalOutputTextTokenCount": 2, "completionReason": None},
                {
                    "outputText": ".",
                    "index": 0,
                    "totalOutputTextTokenCount": 3,
                    "completionReason": "FINISH",
                    "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": 5,
                        "outputTokenCount": 3,
                        "invocationLatency": 10,
                        "firstByteLatency": 5,
                    },
                },
            ]
        )
        + t.finish()
    )
    chunks = frames(out)
    assert chunks[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in chunks[:-2]]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "Four"}, {"content": "."}, {}]
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["prompt_tokens"] == 5
    assert chunks[-2]["usage"]["completion_tokens"] == 3
    assert t.finish_reason == "stop"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks[:-1])


def test_titan_stream_length_and_failure() -> None:
    t = titan_stream()
    first = frames(
        t.feed_chunk({"outputText": "abc", "completionReason": "LENGTH", "totalOutputTextTokenCount": 9})
        + t.finish()
    )
    assert first[-2]["choices"][0]["finish_reason"] == "length"
    assert t.usage.output_tokens == 9
    t2 = titan_stream()
    t2.feed_chunk({"outputText": "abc"})
    error = frames(t2.fail(GatewayError(ErrorKind.TIMEOUT, "slow")))
    assert error == [
        {"error": {"message": "slow", "type": "timeout_error", "param": None, "code": "timeout"}}
    ]
    assert t2.finish() == b""


def test_llama_stream() -> None:
    t = NativeChatStreamTranscoder(
        family=LLAMA,
        model="llama",
        completion_id="c",
        created=1,
        call=InvokeCall(body={}),
        include_usage=False,
    )
    out = t.feed_chunk(
        {"generation": "Hi", "prompt_token_count": 4, "generation_token_count": 1, "stop_reason": None}
    )
    out += t.feed_chunk(
        {"generation": "!", "prompt_token_count": None, "generation_token_count": 2, "stop_reason": "stop"}
    )
    out += t.finish()
    chunks = frames(out)
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:-1]] == ["", "Hi", "!", None]
    assert t.usage.input_tokens == 4 and t.usage.output_tokens == 2


GUARDED_LAST = {
    "outputText": "Hi.",
    "index": 0,
    "totalOutputTextTokenCount": 2,
    "completionReason": "FINISH",
    "amazon-bedrock-invocationMetrics": {"inputTokenCount": 5, "outputTokenCount": 2},
}


def test_a_guardrail_intervention_on_the_last_chunk_finishes_with_content_filter_and_the_trace() -> None:
    t = titan_stream(include_usage=True)
    trace = {"guardrail": {"actionReason": "Guardrail blocked."}}
    last = {**GUARDED_LAST, "amazon-bedrock-guardrailAction": "INTERVENED", "amazon-bedrock-trace": trace}
    chunks = frames(t.feed_chunk(last) + t.finish())
    reasons = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"]]
    assert reasons[-1] == "content_filter" and reasons.count("content_filter") == 1
    traced = [c for c in chunks[:-1] if not c["choices"] and "amazon-bedrock-trace" in c]
    assert traced[0]["amazon-bedrock-trace"] == trace
    assert t.guardrail.intervened and t.guardrail.trace == trace["guardrail"]
    assert t.finish_reason == "content_filter"


def test_a_guardrail_that_let_the_answer_through_keeps_the_models_finish_reason() -> None:
    t = titan_stream()
    chunks = frames(t.feed_chunk({**GUARDED_LAST, "amazon-bedrock-guardrailAction": "NONE"}) + t.finish())
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert t.guardrail.action == "NONE"


def test_a_stream_that_fails_after_the_reason_sends_no_finish_chunk() -> None:
    t = titan_stream()
    out = t.feed_chunk(GUARDED_LAST) + t.fail(GatewayError(ErrorKind.TIMEOUT, "slow"))
    assert b'finish_reason":"stop' not in out and b"timeout_error" in out
    assert t.finish() == b""


def test_a_guarded_titan_stream_split_at_every_byte_boundary_transcodes_identically() -> None:
    wire = Wire.from_model(botocore.session.get_session().get_service_model("bedrock-runtime"))
    chunks = [
        {"outputText": "Hi", "index": 0, "totalOutputTextTokenCount": 1, "inputTextTokenCount": 5},
        {**GUARDED_LAST, "amazon-bedrock-guardrailAction": "INTERVENED"},
    ]
    data = b"".join(
        encode_event("chunk", {"bytes": base64.b64encode(orjson.dumps(c)).decode()}) for c in chunks
    )

    def transcoded(split: int) -> bytes:
        decoder = EventStreamDecoder(wire["InvokeModelWithResponseStream"])
        t = titan_stream()
        return (
            b"".join(t.feed(e) for part in (data[:split], data[split:]) for e in decoder.feed(part))
            + t.finish()
        )

    whole = transcoded(len(data))
    assert b'"finish_reason":"content_filter"' in whole
    for split in range(len(data) + 1):
        assert transcoded(split) == whole

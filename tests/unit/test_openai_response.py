"""Converse response → OpenAI chat.completion (docs/openai.md, "Response")."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from bedrock_mw.routing.families import family_of
from bedrock_mw.translate.openai import (
    OpenAIOptions,
    converse_to_openai,
    new_completion_id,
    openai_to_converse,
)
from bedrock_mw.translate.types import ConverseCall

CLAUDE = family_of("anthropic.claude-sonnet-4-5-20250929-v1:0")
NOVA = family_of("amazon.nova-pro-v1:0")
PLAIN = ConverseCall(request={"messages": []})


def converse(*blocks: dict[str, Any], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": list(blocks)}},
        "stopReason": stop,
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, **usage},
        "metrics": {"latencyMs": 1},
    }


def translate(response: dict[str, Any], call: ConverseCall = PLAIN) -> dict[str, Any]:
    return converse_to_openai(response, model="claude", call=call, completion_id="chatcmpl-1", created=7)


def test_text_answer_golden() -> None:
    assert translate(converse({"text": "Hel"}, {"text": "lo"})) == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 7,
        "model": "claude",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0},
            "cache_creation_input_tokens": 0,
        },
        "system_fingerprint": None,
    }


def test_tool_calls_and_reasoning() -> None:
    result = translate(
        converse(
            {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get", "input": {"q": "x"}}},
            stop="tool_use",
        )
    )
    message = result["choices"][0]["message"]
    assert message["content"] is None
    assert message["reasoning_content"] == "think"
    assert message["tool_calls"] == [
        {"id": "tooluse_1", "type": "function", "function": {"name": "get", "arguments": '{"q":"x"}'}}
    ]
    assert result["choices"][0]["finish_reason"] == "tool_calls"
    ChatCompletion.model_validate(result)  # the official SDK accepts it


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_tool_use", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    assert translate(converse({"text": "x"}, stop=stop_reason))["choices"][0]["finish_reason"] == finish


def test_cached_tokens_count_inside_prompt_tokens() -> None:
    usage = translate(converse({"text": "x"}, cacheReadInputTokens=100, cacheWriteInputTokens=20))["usage"]
    assert usage == {
        "prompt_tokens": 130,
        "completion_tokens": 5,
        "total_tokens": 135,
        "prompt_tokens_details": {"cached_tokens": 100},
        "cache_creation_input_tokens": 20,
    }


def test_structured_output_tool_becomes_content() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}}}
    call = openai_to_converse(
        {"messages": [{"role": "user", "content": "hi"}], "response_format": schema}, NOVA, OpenAIOptions()
    )
    result = translate(
        converse(
            {"toolUse": {"toolUseId": "t1", "name": "person", "input": {"name": "Ann"}}}, stop="tool_use"
        ),
        call,
    )
    choice = result["choices"][0]
    assert choice["message"]["content"] == '{"name":"Ann"}'
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_completion_ids_are_fresh_and_prefixed() -> None:
    first, second = new_completion_id(), new_completion_id()
    assert first.startswith("chatcmpl-") and first != second

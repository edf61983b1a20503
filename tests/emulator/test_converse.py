"""Converse and CountTokens: deterministic answers and Bedrock's request rules, via the real client."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from bedrock_mw.testing import BedrockEmulator

from .conftest import ClientFactory, user

SONNET4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
HAIKU35 = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"
WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Get the weather",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                    "days": {"type": "integer"},
                    "detail": {
                        "type": "object",
                        "properties": {"hourly": {"type": "boolean"}},
                        "required": ["hourly"],
                    },
                    "optional": {"type": "string"},
                },
                "required": ["city", "unit", "days", "detail"],
            }
        },
    }
}
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
pytestmark = pytest.mark.anyio


async def converse(make_client: ClientFactory, region: str = "us-east-1", **kwargs: Any) -> dict[str, Any]:
    async with make_client(region=region) as client:
        return await client.converse(**kwargs)  # type: ignore[no-any-return]


async def converse_error(
    make_client: ClientFactory, region: str = "us-east-1", **kwargs: Any
) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        await converse(make_client, region, **kwargs)
    return info.value.response["Error"]  # type: ignore[no-any-return]


async def test_reply_echoes_last_user_text_with_word_usage(make_client: ClientFactory) -> None:
    response = await converse(
        make_client, modelId=NOVA, system=[{"text": "be brief"}], messages=[user("hello big world")]
    )
    assert response["output"]["message"] == {
        "role": "assistant",
        "content": [{"text": "Echo: hello big world"}],
    }
    # input: system 2 + message (1 role + 3 words) + 3 overhead; output: 4 words
    assert response["usage"] == {
        "inputTokens": 9,
        "outputTokens": 4,
        "totalTokens": 13,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": 0,
    }
    assert response["metrics"]["latencyMs"] >= 1


async def test_count_tokens_matches_converse_input_tokens(make_client: ClientFactory) -> None:
    request = {
        "system": [{"text": "sys prompt"}],
        "messages": [user("one two three")],
        "toolConfig": {"tools": [WEATHER]},
    }
    response = await converse(make_client, modelId=SONNET4, **request)
    async with make_client() as client:
        counted = await client.count_tokens(
            modelId="anthropic.claude-sonnet-4-20250514-v1:0", input={"converse": request}
        )
    assert counted["inputTokens"] == response["usage"]["inputTokens"]


async def test_tool_is_called_when_user_says_use_name(make_client: ClientFactory) -> None:
    response = await converse(
        make_client,
        modelId=SONNET4,
        messages=[user("please use get_weather now")],
        toolConfig={"tools": [WEATHER]},
    )
    content = response["output"]["message"]["content"]
    assert content[0] == {"text": "Calling get_weather."}
    tool_use = content[1]["toolUse"]
    assert tool_use["name"] == "get_weather"
    assert tool_use["input"] == {"city": "example", "unit": "c", "days": 1, "detail": {"hourly": True}}
    assert tool_use["toolUseId"].startswith("tooluse_")
    assert response["stopReason"] == "tool_use"


async def test_tool_choice_any_calls_first_tool_without_text(make_client: ClientFactory) -> None:
    response = await converse(
        make_client,
        modelId=SONNET4,
        messages=[user("hi")],
        toolConfig={"tools": [WEATHER], "toolChoice": {"any": {}}},
    )
    assert [next(iter(b)) for b in response["output"]["message"]["content"]] == ["toolUse"]


async def test_tool_results_are_summarised(make_client: ClientFactory) -> None:
    messages = [
        user("use get_weather"),
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}, {"json": {"t": 20}}]}}
            ],
        },
    ]
    response = await converse(
        make_client, modelId=SONNET4, messages=messages, toolConfig={"tools": [WEATHER]}
    )
    assert response["output"]["message"]["content"] == [{"text": 'Tool results: sunny {"t":20}'}]


async def test_stop_sequence_cuts_and_is_reported(make_client: ClientFactory) -> None:
    response = await converse(
        make_client,
        modelId=NOVA,
        messages=[user("alpha beta STOP gamma")],
        inferenceConfig={"stopSequences": ["STOP"]},
        additionalModelResponseFieldPaths=["/stop_sequence"],
    )
    assert response["output"]["message"]["content"] == [{"text": "Echo: alpha beta "}]
    assert response["stopReason"] == "stop_sequence"
    assert response["additionalModelResponseFields"] == {"stop_sequence": "STOP"}


async def test_max_tokens_truncates_words(make_client: ClientFactory) -> None:
    response = await converse(
        make_client, modelId=NOVA, messages=[user("emit 50 words")], inferenceConfig={"maxTokens": 4}
    )
    assert response["output"]["message"]["content"] == [{"text": "lorem ipsum dolor sit"}]
    assert response["stopReason"] == "max_tokens"
    assert response["usage"]["outputTokens"] == 4


async def test_thinking_block_signature_round_trips(make_client: ClientFactory) -> None:
    first = await converse(
        make_client,
        modelId=SONNET4,
        messages=[user("use get_weather")],
        toolConfig={"tools": [WEATHER]},
        additionalModelRequestFields=THINKING,
    )
    content = first["output"]["message"]["content"]
    assert content[0]["reasoningContent"]["reasoningText"]["text"] == "Thinking about: use get_weather"
    tool_use_id = content[-1]["toolUse"]["toolUseId"]
    result = {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": tool_use_id, "content": [{"text": "ok"}]}}],
    }
    follow = [user("use get_weather"), {"role": "assistant", "content": content}, result]
    second = await converse(
        make_client,
        modelId=SONNET4,
        messages=follow,
        toolConfig={"tools": [WEATHER]},
        additionalModelRequestFields=THINKING,
    )
    assert second["output"]["message"]["content"][-1] == {"text": "Tool results: ok"}

    stripped = [user("use get_weather"), {"role": "assistant", "content": content[1:]}, result]
    error = await converse_error(
        make_client,
        modelId=SONNET4,
        messages=stripped,
        toolConfig={"tools": [WEATHER]},
        additionalModelRequestFields=THINKING,
    )
    assert error["Code"] == "ValidationException"
    assert "Expected `thinking` or `redacted_thinking`, but found `text`" in error["Message"]

    forged = [dict(content[0])]
    forged[0] = {
        "reasoningContent": {
            "reasoningText": {"text": "Thinking about: use get_weather", "signature": "Zm9yZ2Vk"}
        }
    }
    bad = [user("use get_weather"), {"role": "assistant", "content": forged + content[1:]}, result]
    error = await converse_error(
        make_client,
        modelId=SONNET4,
        messages=bad,
        toolConfig={"tools": [WEATHER]},
        additionalModelRequestFields=THINKING,
    )
    assert "Invalid `signature` in `thinking` block" in error["Message"]

    # A signature with non-ASCII characters is just as invalid: a 400, never a 500.
    forged[0]["reasoningContent"]["reasoningText"]["signature"] = "sïgnatüre-✓"
    bad = [user("use get_weather"), {"role": "assistant", "content": forged + content[1:]}, result]
    error = await converse_error(
        make_client,
        modelId=SONNET4,
        messages=bad,
        toolConfig={"tools": [WEATHER]},
        additionalModelRequestFields=THINKING,
    )
    assert error["Code"] == "ValidationException"
    assert "Invalid `signature` in `thinking` block" in error["Message"]


async def test_prompt_cache_writes_then_reads(make_client: ClientFactory) -> None:
    system = [
        {"text": "a long shared system prompt of ten words right here"},
        {"cachePoint": {"type": "default"}},
    ]
    first = await converse(make_client, modelId=SONNET4, system=system, messages=[user("q one")])
    second = await converse(make_client, modelId=SONNET4, system=system, messages=[user("q two")])
    assert (first["usage"]["cacheWriteInputTokens"], first["usage"]["cacheReadInputTokens"]) == (10, 0)
    assert (second["usage"]["cacheWriteInputTokens"], second["usage"]["cacheReadInputTokens"]) == (0, 10)
    assert second["usage"]["inputTokens"] == 3 + 3  # message (1 + 2 words) + overhead
    assert second["usage"]["totalTokens"] == 6 + 10 + second["usage"]["outputTokens"]


async def test_prompt_cache_is_scoped_per_region(make_client: ClientFactory) -> None:
    system = [{"text": "shared words"}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    await converse(make_client, modelId=SONNET4, system=system, messages=[user("q")])
    other = await converse(
        make_client, region="us-west-2", modelId=SONNET4, system=system, messages=[user("q")]
    )
    assert other["usage"]["cacheWriteInputTokens"] == 2


async def test_cache_point_on_unsupported_model_is_access_denied(make_client: ClientFactory) -> None:
    error = await converse_error(
        make_client,
        modelId="meta.llama3-8b-instruct-v1:0",
        messages=[{"role": "user", "content": [{"text": "x"}, {"cachePoint": {"type": "default"}}]}],
    )
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"].startswith(
        "You invoked an unsupported model or your request did not allow prompt caching."
    )


async def test_more_than_four_cache_points_is_rejected(make_client: ClientFactory) -> None:
    blocks: list[dict[str, Any]] = []
    for i in range(5):
        blocks += [{"text": f"part {i}"}, {"cachePoint": {"type": "default"}}]
    error = await converse_error(make_client, modelId=SONNET4, system=blocks, messages=[user("x")])
    assert error["Code"] == "ValidationException"
    assert "Found 5" in error["Message"]


@pytest.mark.parametrize(
    ("model_id", "region"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "us-east-1"),
        ("anthropic.claude-3-haiku-20240307-v1", "us-east-1"),
        ("eu.anthropic.claude-sonnet-4-20250514-v1:0", "eu-central-1"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", "ap-southeast-1"),
        ("jp.anthropic.claude-sonnet-4-5-20250929-v1:0", "ap-northeast-1"),
        ("au.anthropic.claude-sonnet-4-5-20250929-v1:0", "ap-southeast-2"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "sa-east-1"),
        ("arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-pro-v1:0", "us-west-2"),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123", "us-east-1"),
        ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/xyz", "us-east-1"),
        ("mistral.mistral-large-2402-v1:0", "us-east-1"),
    ],
)
async def test_accepted_model_id_forms(make_client: ClientFactory, model_id: str, region: str) -> None:
    response = await converse(make_client, region=region, modelId=model_id, messages=[user("ok")])
    assert response["stopReason"] == "end_turn"


@pytest.mark.parametrize(
    ("model_id", "region", "fragment"),
    [
        (
            "anthropic.claude-opus-4-1-20250805-v1:0",
            "eu-west-1",
            "eu.anthropic.claude-opus-4-1-20250805-v1:0",
        ),
        (
            "meta.llama4-scout-17b-instruct-v1:0",
            "us-east-1",
            "with on-demand throughput isn\u2019t supported",
        ),
        ("deepseek.r1-v1:0", "us-west-2", "us.deepseek.r1-v1:0"),
        (
            "amazon.nova-premier-v1:0",
            "us-east-1",
            "Retry your request with the ID or ARN of an inference profile",
        ),
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", "us-east-1", "on-demand"),
        (
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "eu-west-1",
            "The provided model identifier is invalid.",
        ),
        ("jp.anthropic.claude-sonnet-4-5-20250929-v1:0", "ap-southeast-1", "invalid"),
        ("arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-pro-v1:0", "us-east-1", "invalid"),
        ("acme.super-model-v1", "us-east-1", "The provided model identifier is invalid."),
    ],
)
async def test_rejected_model_ids(
    make_client: ClientFactory, model_id: str, region: str, fragment: str
) -> None:
    error = await converse_error(make_client, region=region, modelId=model_id, messages=[user("x")])
    assert error["Code"] == "ValidationException"
    assert fragment in error["Message"]


async def test_titan_text_rejects_system_and_tools(make_client: ClientFactory) -> None:
    titan = "amazon.titan-text-express-v1"
    error = await converse_error(make_client, modelId=titan, system=[{"text": "s"}], messages=[user("x")])
    assert error["Message"] == "This model doesn't support system messages."
    error = await converse_error(
        make_client, modelId=titan, messages=[user("x")], toolConfig={"tools": [WEATHER]}
    )
    assert error["Message"] == "This model doesn't support tool use."


async def test_conversation_must_start_with_user(make_client: ClientFactory) -> None:
    error = await converse_error(
        make_client, modelId=NOVA, messages=[{"role": "assistant", "content": [{"text": "x"}]}]
    )
    assert error["Message"].startswith("A conversation must start with a user message.")


async def test_request_log_records_parsed_body(make_client: ClientFactory, emu: BedrockEmulator) -> None:
    await converse(make_client, modelId=NOVA, messages=[user("logged")])
    entry = emu.log[-1]
    assert entry.operation == "converse"
    assert entry.body == {"messages": [user("logged")]}
    assert entry.status == 200

"""Mistral and Amazon Nova native bodies on InvokeModel and InvokeModelWithResponseStream."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

MIXTRAL = "mistral.mixtral-8x7b-instruct-v0:1"
MISTRAL_LARGE = "mistral.mistral-large-2407-v1:0"
NOVA = "amazon.nova-lite-v1:0"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def invoke(make_client: ClientFactory, model: str, body: dict[str, Any]) -> dict[str, Any]:
    async with make_client() as client:
        response = await client.invoke_model(modelId=model, body=json.dumps(body))
        return json.loads(await response["body"].read())  # type: ignore[no-any-return]


async def stream_chunks(make_client: ClientFactory, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with make_client() as client:
        response = await client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
        return [json.loads(event["chunk"]["bytes"]) async for event in response["body"]]


async def test_mistral_text_completion_answers_outputs(make_client: ClientFactory) -> None:
    body = {"prompt": "<s>[INST] hello mistral [/INST]", "max_tokens": 50}
    assert await invoke(make_client, MIXTRAL, body) == {
        "outputs": [{"text": "Echo: hello mistral", "stop_reason": "stop"}]
    }


async def test_mistral_text_completion_max_tokens_is_length(make_client: ClientFactory) -> None:
    body = {"prompt": "<s>[INST] one two three four [/INST]", "max_tokens": 2}
    assert await invoke(make_client, MIXTRAL, body) == {
        "outputs": [{"text": "Echo: one", "stop_reason": "length"}]
    }


async def test_mistral_text_completion_stream(make_client: ClientFactory) -> None:
    chunks = await stream_chunks(make_client, MIXTRAL, {"prompt": "<s>[INST] emit 4 events [/INST]"})
    texts = [c["outputs"][0]["text"] for c in chunks]
    assert "".join(texts) == "lorem ipsum dolor sit"
    assert [c["outputs"][0]["stop_reason"] for c in chunks] == [None, None, None, "stop"]
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 4


async def test_mistral_chat_answers_choices(make_client: ClientFactory) -> None:
    body = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]}
    assert await invoke(make_client, MISTRAL_LARGE, body) == {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Echo: hi there"}, "stop_reason": "stop"}
        ]
    }


async def test_mistral_chat_tool_call_and_result(make_client: ClientFactory) -> None:
    first = await invoke(
        make_client,
        MISTRAL_LARGE,
        {
            "messages": [{"role": "user", "content": "use get_weather"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": "any",
        },
    )
    choice = first["choices"][0]
    assert choice["stop_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"example"}'}
    second = await invoke(
        make_client,
        MISTRAL_LARGE,
        {
            "messages": [
                {"role": "user", "content": "use get_weather"},
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
            ],
            "tools": [WEATHER_TOOL],
        },
    )
    assert second["choices"][0]["message"]["content"] == "Tool results: sunny"


async def test_mistral_chat_stream(make_client: ClientFactory) -> None:
    chunks = await stream_chunks(
        make_client, MISTRAL_LARGE, {"messages": [{"role": "user", "content": "emit 2 events"}]}
    )
    assert [c["choices"][0]["message"]["content"] for c in chunks] == ["lorem", " ipsum"]
    assert chunks[-1]["choices"][0]["stop_reason"] == "stop"
    assert "amazon-bedrock-invocationMetrics" in chunks[-1]


async def test_mistral_unknown_key_is_malformed(make_client: ClientFactory) -> None:
    async with make_client() as client:
        with pytest.raises(ClientError) as info:
            await client.invoke_model(modelId=MIXTRAL, body=json.dumps({"prompt": "x", "n": 2}))
    assert "#: extraneous key [n] is not permitted" in info.value.response["Error"]["Message"]


def nova(**extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": "messages-v1",
        "system": [{"text": "be brief"}],
        "messages": [{"role": "user", "content": [{"text": "hello nova"}]}],
        "inferenceConfig": {"max_new_tokens": 50, "temperature": 0.5},
        **extra,
    }


async def test_nova_invoke_answers_converse_like_body(make_client: ClientFactory) -> None:
    payload = await invoke(make_client, NOVA, nova())
    assert payload == {
        "output": {"message": {"role": "assistant", "content": [{"text": "Echo: hello nova"}]}},
        "stopReason": "end_turn",
        # input: system 2 + message (1 role + 2 words) + 3 overhead; output 3 words
        "usage": {
            "inputTokens": 8,
            "outputTokens": 3,
            "totalTokens": 11,
            "cacheReadInputTokenCount": 0,
            "cacheWriteInputTokenCount": 0,
        },
    }


async def test_nova_invoke_stream_chunks(make_client: ClientFactory) -> None:
    chunks = await stream_chunks(make_client, NOVA, nova())
    assert [next(iter(c)) for c in chunks] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert chunks[1]["contentBlockDelta"] == {"contentBlockIndex": 0, "delta": {"text": "Echo: hello nova"}}
    assert chunks[3]["messageStop"] == {"stopReason": "end_turn"}
    assert chunks[-1]["metadata"]["usage"]["outputTokens"] == 3
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] == 8


async def test_nova_invoke_tool_use(make_client: ClientFactory) -> None:
    tool = {
        "toolSpec": {
            "name": "get_weather",
            "inputSchema": {
                "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            },
        }
    }
    body = nova(
        messages=[{"role": "user", "content": [{"text": "use get_weather"}]}],
        toolConfig={"tools": [tool]},
    )
    payload = await invoke(make_client, NOVA, body)
    assert payload["stopReason"] == "tool_use"
    assert payload["output"]["message"]["content"][1]["toolUse"]["input"] == {"city": "example"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (nova(messages="hi"), "#/messages"),
        (nova(schemaVersion="messages-v2"), "#/schemaVersion: messages-v2 is not a valid enum value"),
        (
            nova(inferenceConfig={"max_new_tokens": 0}),
            "#/inferenceConfig/max_new_tokens: 0 is not greater or equal to 1",
        ),
        (nova(extra=1), "#: extraneous key [extra] is not permitted"),
    ],
)
async def test_nova_invoke_refuses_malformed_bodies(
    make_client: ClientFactory, body: Any, message: str
) -> None:
    async with make_client() as client:
        with pytest.raises(ClientError) as info:
            await client.invoke_model(modelId=NOVA, body=json.dumps(body))
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("Malformed input request: ")
    assert message in error["Message"]

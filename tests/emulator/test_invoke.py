"""InvokeModel native bodies (Anthropic, Titan Text, Llama), embeddings, and CountTokens on them."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bedrock_mw.testing import BedrockEmulator

from .conftest import ClientFactory

SONNET4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
pytestmark = pytest.mark.anyio


async def invoke(
    make_client: ClientFactory, model_id: str, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    async with make_client() as client:
        response = await client.invoke_model(modelId=model_id, body=json.dumps(body))
        payload = json.loads(await response["body"].read())
    return payload, response["ResponseMetadata"]["HTTPHeaders"]


async def test_anthropic_messages_body(make_client: ClientFactory) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "be nice", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
    }
    message, headers = await invoke(make_client, SONNET4, body)
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "claude-sonnet-4-20250514"
    assert message["content"] == [{"type": "text", "text": "Echo: hi there"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["cache_creation_input_tokens"] == 2
    assert headers["x-amzn-bedrock-input-token-count"] == str(message["usage"]["input_tokens"])
    assert headers["x-amzn-bedrock-output-token-count"] == "3"


async def test_anthropic_tool_use_body(make_client: ClientFactory) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "tools": [
            {
                "name": "calc",
                "input_schema": {
                    "type": "object",
                    "properties": {"x": {"type": "number"}},
                    "required": ["x"],
                },
            }
        ],
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "compute"}],
    }
    message, _ = await invoke(make_client, SONNET4, body)
    (block,) = message["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_bdrk_")
    assert block["input"] == {"x": 1}
    assert message["stop_reason"] == "tool_use"


async def test_anthropic_body_requires_version(make_client: ClientFactory) -> None:
    with pytest.raises(ClientError) as info:
        await invoke(make_client, SONNET4, {"max_tokens": 5, "messages": []})
    assert "required key [anthropic_version] not found" in info.value.response["Error"]["Message"]


async def test_titan_text_body(make_client: ClientFactory) -> None:
    body = {"inputText": "User: what is up\nBot:", "textGenerationConfig": {"maxTokenCount": 100}}
    payload, headers = await invoke(make_client, "amazon.titan-text-express-v1", body)
    assert payload == {
        "inputTextTokenCount": 5,
        "results": [{"tokenCount": 4, "outputText": "Echo: what is up", "completionReason": "FINISH"}],
    }
    assert headers["x-amzn-bedrock-input-token-count"] == "5"


async def test_llama_body(make_client: ClientFactory) -> None:
    prompt = (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello llama<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    payload, _ = await invoke(
        make_client, "meta.llama3-70b-instruct-v1:0", {"prompt": prompt, "max_gen_len": 64}
    )
    assert payload["generation"] == "Echo: hello llama"
    assert payload["generation_token_count"] == 3
    assert payload["stop_reason"] == "stop"


async def test_native_extraneous_key_is_malformed(make_client: ClientFactory) -> None:
    with pytest.raises(ClientError) as info:
        await invoke(make_client, "amazon.titan-text-express-v1", {"inputText": "x", "bogus": 1})
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "extraneous key [bogus]" in info.value.response["Error"]["Message"]


async def test_titan_embed_v1(make_client: ClientFactory) -> None:
    payload, headers = await invoke(
        make_client, "amazon.titan-embed-text-v1", {"inputText": "embed me please"}
    )
    assert len(payload["embedding"]) == 1536
    assert payload["inputTextTokenCount"] == 3
    assert headers["x-amzn-bedrock-input-token-count"] == "3"
    again, _ = await invoke(make_client, "amazon.titan-embed-text-v1", {"inputText": "embed me please"})
    assert again["embedding"] == payload["embedding"]


@pytest.mark.parametrize(("dimensions", "normalize"), [(256, True), (512, False), (None, None)])
async def test_titan_embed_v2(
    make_client: ClientFactory, dimensions: int | None, normalize: bool | None
) -> None:
    body: dict[str, Any] = {"inputText": "vector"}
    if dimensions:
        body["dimensions"] = dimensions
    if normalize is not None:
        body["normalize"] = normalize
    payload, _ = await invoke(make_client, "amazon.titan-embed-text-v2:0", body)
    assert len(payload["embedding"]) == (dimensions or 1024)
    norm = math.sqrt(sum(v * v for v in payload["embedding"]))
    assert (abs(norm - 1) < 1e-9) == (normalize is not False)


async def test_titan_embed_v2_rejects_bad_dimensions(make_client: ClientFactory) -> None:
    with pytest.raises(ClientError):
        await invoke(make_client, "amazon.titan-embed-text-v2:0", {"inputText": "x", "dimensions": 300})


@pytest.mark.parametrize("model_id", ["cohere.embed-english-v3", "cohere.embed-multilingual-v3"])
async def test_cohere_embed_list_and_by_type(make_client: ClientFactory, model_id: str) -> None:
    plain, _ = await invoke(make_client, model_id, {"texts": ["a b", "c"], "input_type": "search_document"})
    assert plain["response_type"] == "embeddings_floats"
    assert [len(v) for v in plain["embeddings"]] == [1024, 1024]
    typed, _ = await invoke(
        make_client,
        model_id,
        {"texts": ["a b"], "input_type": "search_query", "embedding_types": ["float", "int8", "binary"]},
    )
    assert typed["response_type"] == "embeddings_by_type"
    assert set(typed["embeddings"]) == {"float", "int8", "binary"}
    assert len(typed["embeddings"]["binary"][0]) == 128
    assert typed["texts"] == ["a b"]


async def test_cohere_embed_limits(make_client: ClientFactory) -> None:
    with pytest.raises(ClientError):
        await invoke(
            make_client, "cohere.embed-english-v3", {"texts": ["x"] * 97, "input_type": "search_document"}
        )
    with pytest.raises(ClientError):
        await invoke(make_client, "cohere.embed-english-v3", {"texts": ["x"]})


async def test_embedding_model_rejects_converse(make_client: ClientFactory) -> None:
    async with make_client() as client:
        with pytest.raises(ClientError) as info:
            await client.converse(
                modelId="cohere.embed-english-v3", messages=[{"role": "user", "content": [{"text": "x"}]}]
            )
    assert "doesn't support the model" in info.value.response["Error"]["Message"]


async def test_count_tokens_invoke_body_matches_invoke(
    make_client: ClientFactory, emu: BedrockEmulator
) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "count these words"}],
    }
    message, _ = await invoke(make_client, SONNET4, body)
    async with make_client() as client:
        counted = await client.count_tokens(
            modelId="anthropic.claude-sonnet-4-20250514-v1:0",
            input={"invokeModel": {"body": json.dumps(body).encode()}},
        )
    assert counted["inputTokens"] == message["usage"]["input_tokens"]
    assert emu.log[-1].operation == "count-tokens"

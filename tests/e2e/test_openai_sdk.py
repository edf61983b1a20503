"""The official OpenAI SDK, over real sockets, through the gateway, to the emulator."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import openai
import orjson
import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import GatewayFactory, SDKClients, ServedApp

pytestmark = pytest.mark.anyio

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


@pytest.mark.parametrize(
    ("model", "operation", "sent_id"),
    [
        ("claude-haiku-4-5", "converse", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("amazon.nova-lite-v1:0", "converse", "amazon.nova-lite-v1:0"),
        ("bedrock/meta.llama3-1-70b-instruct-v1:0", "converse", "meta.llama3-1-70b-instruct-v1:0"),
        ("amazon.titan-text-express-v1", "invoke", "amazon.titan-text-express-v1"),
    ],
)
async def test_a_plain_completion_works_for_each_family_through_its_api(
    sdk: SDKClients,
    gateway: ServedApp,
    bedrock_emulator: BedrockEmulator,
    model: str,
    operation: str,
    sent_id: str,
) -> None:
    completion = await sdk.openai(gateway).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello friend"}],
        max_tokens=50,
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == model
    assert completion.choices[0].message.content == "Echo: Hello friend"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    entry = bedrock_emulator.log.entries[-1]
    assert (entry.operation, entry.model_id) == (operation, sent_id)


async def test_streaming_with_include_usage_ends_with_a_usage_chunk(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    stream = await sdk.openai(gateway).chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "emit 20 words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 20
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 20


async def test_streamed_tool_call_arguments_reassemble_to_the_non_streamed_ones(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    c = sdk.openai(gateway)
    request: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "messages": [{"role": "user", "content": "What is the weather in Oslo?"}],
        "tools": [WEATHER],
        "tool_choice": "required",
    }
    plain = await c.chat.completions.create(**request)
    call = plain.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert plain.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"

    async with c.chat.completions.stream(**request) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert streamed.function.name == "get_weather"
    assert orjson.loads(streamed.function.arguments) == orjson.loads(call.function.arguments)

    # The round trip: the tool's result goes back as a tool message.
    answer = await c.chat.completions.create(
        model="claude-haiku-4-5",
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "What is the weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert answer.choices[0].finish_reason == "stop"
    assert "sunny" in (answer.choices[0].message.content or "")


async def test_json_schema_response_format_returns_json_matching_the_schema(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    for model in ("claude-haiku-4-5", "amazon.nova-lite-v1:0"):
        completion = await sdk.openai(gateway).chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Describe a person"}],
            response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
        )
        content = completion.choices[0].message.content
        assert content is not None
        parsed = orjson.loads(content)
        assert set(parsed) == {"name", "age"}, model
        assert completion.choices[0].finish_reason == "stop"


async def test_cached_tokens_are_reported_after_a_cache_control_prefix(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    messages: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "Policy text. " * 400, "cache_control": {"type": "ephemeral"}},
            ],
        },
        {"role": "user", "content": "Hi"},
    ]
    c = sdk.openai(gateway)
    first = await c.chat.completions.create(model="claude-haiku-4-5", messages=messages)  # type: ignore[arg-type]
    second = await c.chat.completions.create(model="claude-haiku-4-5", messages=messages)  # type: ignore[arg-type]
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    written = (first.model_extra or {}).get("usage", {}) or first.usage.model_extra or {}
    assert written.get("cache_creation_input_tokens", 0) > 500
    assert second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens == written["cache_creation_input_tokens"]
    assert second.usage.prompt_tokens == first.usage.prompt_tokens


def _floats(b64: str) -> list[float]:
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.mark.parametrize(
    ("model", "extra", "dims"),
    [
        ("amazon.titan-embed-text-v1", {}, 1536),
        ("amazon.titan-embed-text-v2:0", {"dimensions": 256}, 256),
        ("cohere.embed-english-v3", {}, 1024),
    ],
)
async def test_embeddings_in_both_encodings_agree(
    sdk: SDKClients, gateway: ServedApp, model: str, extra: dict[str, Any], dims: int
) -> None:
    c = sdk.openai(gateway)
    inputs = ["the quick brown fox", "jumps over", "the lazy dog"]
    floats = await c.embeddings.create(model=model, input=inputs, encoding_format="float", **extra)
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert all(len(d.embedding) == dims for d in floats.data)
    assert floats.usage.prompt_tokens > 0
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        r = await http.post(
            "/v1/embeddings",
            headers={"authorization": "Bearer vk-test"},
            json={"model": model, "input": inputs, "encoding_format": "base64", **extra},
        )
    assert r.status_code == 200
    decoded = [_floats(d["embedding"]) for d in r.json()["data"]]
    for got, want in zip(decoded, floats.data, strict=True):
        assert got == pytest.approx(want.embedding, rel=1e-6, abs=1e-7)
    # The SDK's own default (base64) decodes to the same vectors.
    sdk_default = await c.embeddings.create(model=model, input=inputs, **extra)
    assert sdk_default.data[2].embedding == pytest.approx(floats.data[2].embedding, rel=1e-6, abs=1e-7)


async def test_models_lists_the_keys_aliases_and_catalogue(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["virtual_keys"][0]["model_aliases"] = {"fast": "bedrock/amazon.nova-micro-v1:0"}
    gateway = serve_gateway(cfg)
    models = await sdk.openai(gateway).models.list()
    ids = [m.id for m in models.data]
    assert ids[0] == "fast"
    assert "claude-haiku-4-5" in ids


async def test_an_unsupported_parameter_is_refused_then_dropped_when_configured(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    strict = serve_gateway()
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.openai(strict).chat.completions.create(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}], logit_bias={"1": 5}
        )
    assert "logit_bias" in caught.value.message
    assert caught.value.body["param"] == "logit_bias"  # type: ignore[index]
    assert bedrock_emulator.log.entries == []

    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["virtual_keys"][0]["drop_unsupported_params"] = True
    lenient = serve_gateway(cfg)
    raw = await sdk.openai(lenient).chat.completions.with_raw_response.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}], logit_bias={"1": 5}
    )
    assert raw.headers["x-bedrock-mw-dropped-params"] == "logit_bias"
    assert raw.parse().choices[0].message.content == "Echo: x"


async def test_openai_errors_come_in_openai_shape(sdk: SDKClients, gateway: ServedApp) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await sdk.openai(gateway, api_key="nope").models.list()
    assert caught.value.status_code == 401
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.openai(gateway).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert "claude-" in missing.value.message  # it lists what the key may use


async def test_tool_history_without_tools_and_schemaless_tools_pass_bedrocks_rules(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    # Bedrock refuses tool history with no toolConfig, non-object tool schemas and blank text; the
    # emulator enforces all three, so these calls reach an answer only if the translation lowers them.
    client = sdk.openai(gateway)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history: list[Any] = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": " ", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    raw = await client.chat.completions.with_raw_response.create(model="claude-haiku-4-5", messages=history)
    assert raw.headers["x-bedrock-mw-synthesized-tools"] == "get_weather"
    assert raw.parse().choices[0].message.content == "Tool results: sunny"
    schemaless = {"type": "function", "function": {"name": "lookup", "parameters": {"properties": {}}}}
    completion = await client.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "use lookup"}],
        tools=[schemaless],  # type: ignore[list-item]
    )
    assert completion.choices[0].message.tool_calls is not None


async def test_sampling_bedrock_would_refuse_is_lowered_and_named_not_a_400(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    # OpenAI accepts temperature 0..2 with top_p; Bedrock takes temperature 0..1 and, on Claude
    # Haiku 4.5, temperature or top_p but not both (the emulator refuses both, as Bedrock does).
    raw = await sdk.openai(gateway).chat.completions.with_raw_response.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "Hello friend"}],
        max_tokens=20,
        temperature=1.6,
        top_p=0.5,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: Hello friend"
    assert raw.headers["x-bedrock-mw-lowered"] == (
        "temperature:1(bedrock-max),top_p:dropped(model-takes-temperature-or-top_p)"
    )
    sent = bedrock_emulator.log.entries[-1].body
    assert sent["inferenceConfig"] == {"maxTokens": 20, "temperature": 1.0}

"""The official Anthropic SDK, over real sockets, through the gateway, to the emulator."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import orjson
import pytest

from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import GatewayFactory, SDKClients, ServedApp

pytestmark = pytest.mark.anyio


@pytest.fixture
def gateway(serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator) -> ServedApp:
    """This module pins the Converse path; tests/e2e/test_messages_native.py covers native InvokeModel."""
    config = emulator_gateway_config(bedrock_emulator)
    config["providers"][0]["messages_api"] = "converse"
    return serve_gateway(config)


MODEL = "claude-haiku-4-5"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}


async def test_a_plain_message_comes_back_in_anthropic_shape(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    message = await sdk.anthropic(gateway).messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: Hello there"
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")
    assert message.usage.output_tokens == 3
    entry = bedrock_emulator.log.for_operation("converse")[-1]
    # The Anthropic name resolved to the geo inference profile of the provider's region.
    assert entry.model_id == "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert entry.region == "us-east-1"


async def test_a_stream_accumulates_to_the_same_message_as_the_plain_call(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    c = sdk.anthropic(gateway)
    request: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "emit 40 words please"}],
    }
    plain = await c.messages.create(**request)
    async with c.messages.stream(**request) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert events[0] == "message_start"
    assert "content_block_delta" in events
    assert [b.model_dump(exclude={"parsed_output"}) for b in final.content] == [
        b.model_dump() for b in plain.content
    ]
    assert final.usage.model_dump() == plain.usage.model_dump()
    assert final.stop_reason == plain.stop_reason


async def test_a_tool_round_trip_with_thinking_passes_the_signed_thinking_back(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    c = sdk.anthropic(gateway)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = await c.messages.create(
        model=MODEL,
        max_tokens=4096,
        thinking=thinking,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Please use get_weather for Paris"}],
    )
    assert first.stop_reason == "tool_use"
    kinds = [block.type for block in first.content]
    assert kinds[0] == "thinking" and "tool_use" in kinds
    assert first.content[0].signature  # type: ignore[union-attr]
    tool_use = next(block for block in first.content if block.type == "tool_use")
    assert tool_use.input == {"city": "example"}

    second = await c.messages.create(
        model=MODEL,
        max_tokens=4096,
        thinking=thinking,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Please use get_weather for Paris"},
            {
                "role": "assistant",
                "content": [block.model_dump(exclude_none=True) for block in first.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18 degrees"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert any(block.type == "text" and "18 degrees" in block.text for block in second.content)
    sent = bedrock_emulator.log.for_operation("converse")[-1].body
    assistant = sent["messages"][1]["content"]
    assert "reasoningContent" in assistant[0]


async def test_cache_control_writes_then_reads_the_prompt_cache(sdk: SDKClients, gateway: ServedApp) -> None:
    c = sdk.anthropic(gateway)
    long_system = "You are a careful assistant. " * 300
    request: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "system": [{"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}],
        "tools": [{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hello"}],
    }
    first = await c.messages.create(**request)
    second = await c.messages.create(**request)
    assert first.usage.cache_creation_input_tokens and first.usage.cache_creation_input_tokens > 1000
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens


async def test_a_stop_sequence_is_reported_as_the_one_that_matched(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    message = await sdk.anthropic(gateway).messages.create(
        model=MODEL,
        max_tokens=64,
        stop_sequences=["STOP", "HALT"],
        messages=[{"role": "user", "content": "one two HALT three"}],
    )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "HALT"
    assert message.content[0].text == "Echo: one two "  # type: ignore[union-attr]


async def test_count_tokens_matches_the_input_tokens_bedrock_reports(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    c = sdk.anthropic(gateway)
    request: dict[str, Any] = {
        "model": MODEL,
        "system": "Be brief.",
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "How many tokens is this sentence?"}],
    }
    counted = await c.messages.count_tokens(**request)
    message = await c.messages.create(max_tokens=64, **request)
    assert counted.input_tokens == message.usage.input_tokens
    # CountTokens takes base model ids only: the profile was counted on its base model.
    assert (
        bedrock_emulator.log.for_operation("count-tokens")[-1].model_id
        == "anthropic.claude-haiku-4-5-20251001-v1:0"
    )


async def test_upstream_throttling_becomes_an_anthropic_rate_limit_error(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.faults.add(Fault.throttling(retry_after="7"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        await sdk.anthropic(gateway).messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    err = caught.value
    assert err.status_code == 429
    assert err.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "us-east-1" in err.message and "default_region" in err.message
    assert err.response.headers["retry-after"] == "7"


async def test_model_access_denied_is_a_permission_error_that_says_how_to_enable_it(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.faults.add(Fault.access_denied())
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        await sdk.anthropic(gateway).messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert "Model access" in caught.value.message
    assert "us-east-1" in caught.value.message


async def test_an_error_in_mid_stream_surfaces_as_an_sdk_error(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.faults.add(Fault.stream_error(after=3))
    c = sdk.anthropic(gateway)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with c.messages.stream(
            model=MODEL, max_tokens=500, messages=[{"role": "user", "content": "emit 30 events"}]
        ) as stream:
            async for event in stream:
                seen.append(event.type)
    assert "message_start" in seen
    assert "message_stop" not in seen
    assert "ModelStreamErrorException" in str(caught.value)


CLAUDE_CODE_BETAS = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20"
)


async def test_a_claude_code_shaped_request_is_answered_the_first_time(
    gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    body = {
        "model": "claude-haiku-4-5-20251001",
        "max_tokens": 32000,
        "stream": True,
        "metadata": {"user_id": orjson.dumps({"device_id": "abc", "session_id": "s1"}).decode()},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.3; cc_entrypoint=cli"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Project rules. " * 50, "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [
            {**WEATHER_TOOL},
            {"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {}}},
            {
                "name": "WebFetch",
                "description": "fetch",
                "input_schema": {"type": "object", "properties": {}},
                "defer_loading": True,
            },
        ],
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello from the cli", "cache_control": {"type": "ephemeral"}}
                ],
            }
        ],
    }
    headers = {
        "x-api-key": "vk-test",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": CLAUDE_CODE_BETAS,
        "anthropic-dangerous-direct-browser-access": "true",
        "x-app": "cli",
        "x-stainless-lang": "js",
        "accept-encoding": "gzip, br, zstd",
        "content-type": "application/json",
    }
    async with (
        httpx.AsyncClient(base_url=gateway.url) as http,
        http.stream("POST", "/v1/messages?beta=true", content=orjson.dumps(body), headers=headers) as r,
    ):
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        dropped = r.headers.get("x-bedrock-mw-dropped-betas", "")
        text = (await r.aread()).decode()
    events = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "error" not in events
    assert "claude-code-20250219" in dropped
    deltas = [
        orjson.loads(line.removeprefix("data: "))["delta"]
        for line in text.splitlines()
        if line.startswith("data: ") and '"content_block_delta"' in line
    ]
    assert any(d["type"] == "thinking_delta" for d in deltas)
    assert "".join(d.get("text", "") for d in deltas) == "Echo: hello from the cli"
    sent = bedrock_emulator.log.for_operation("converse-stream")[-1].body
    betas = sent["additionalModelRequestFields"].get("anthropic_beta", [])
    assert "interleaved-thinking-2025-05-14" in betas
    assert "claude-code-20250219" not in betas
    assert all("billing-header" not in block.get("text", "") for block in sent["system"])
    assert all("defer_loading" not in str(tool) for tool in sent["toolConfig"]["tools"])


async def test_a_missing_max_tokens_is_refused_before_bedrock_is_called(
    gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        r = await http.post(
            "/v1/messages",
            headers={"x-api-key": "vk-test"},
            json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in r.json()["error"]["message"]
    assert bedrock_emulator.log.entries == []


async def test_unknown_keys_get_an_anthropic_authentication_error(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await sdk.anthropic(gateway, api_key="vk-wrong").messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert "vk-wrong" not in caught.value.message


async def test_served_by_headers_name_provider_region_and_model(
    serve_gateway: GatewayFactory,
) -> None:
    gateway = serve_gateway()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        r = await http.post(
            "/v1/messages",
            headers={"x-api-key": "vk-test", "x-request-id": "req-abc"},
            json={"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-abc"
    assert r.headers["x-bedrock-mw-provider"] == "emulator"
    assert r.headers["x-bedrock-mw-region"] == "us-east-1"
    assert r.headers["x-bedrock-mw-model-id"] == "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert r.headers["x-bedrock-mw-attempts"] == "1"


async def test_a_cited_document_gives_char_location_citations_plain_and_streamed(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    c = sdk.anthropic(gateway)
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue. Grass is green."},
        "title": "Sky facts: v2",
        "citations": {"enabled": True},
    }
    request: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": [document, {"type": "text", "text": "Sky colour?"}]}],
    }
    plain = await c.messages.create(**request)
    block = plain.content[0]
    assert block.type == "text" and block.text == "The sky is blue."
    assert block.citations is not None
    citation = block.citations[0]
    assert citation.type == "char_location"
    assert citation.cited_text == "The sky is blue."
    assert (citation.document_index, citation.start_char_index, citation.end_char_index) == (0, 0, 16)
    assert citation.document_title == "Sky facts: v2"  # the client's title, not Bedrock's document name
    async with c.messages.stream(**request) as stream:
        final = await stream.get_final_message()
    assert [b.model_dump(exclude={"parsed_output"}) for b in final.content] == [
        b.model_dump() for b in plain.content
    ]

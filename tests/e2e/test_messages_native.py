"""The official Anthropic SDK through the gateway's native InvokeModel path (Claude's default)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import GatewayFactory, SDKClients, ServedApp
from .test_claude_code import BETAS, claude_code_request

pytestmark = pytest.mark.anyio

MODEL = "claude-haiku-4-5"
MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


async def test_a_plain_message_goes_to_invoke_model_with_the_anthropic_body(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    raw = await sdk.anthropic(gateway).messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello there"}]
    )
    message = await raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "Echo: Hello there"
    assert message.model == MODEL and message.stop_reason == "end_turn"
    assert raw.headers["x-bedrock-mw-messages-api"] == "invoke"
    entry = bedrock_emulator.log.entries[-1]
    assert (entry.operation, entry.model_id) == ("invoke", MODEL_ID)
    assert entry.body == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hello there"}],
    }


async def test_a_stream_has_real_usage_in_message_start_and_matches_the_plain_call(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
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
        events = [event async for event in stream]
        final = await stream.get_final_message()
    start = events[0]
    assert start.type == "message_start"
    assert start.message.usage.input_tokens == plain.usage.input_tokens > 0  # Converse could not say
    assert start.message.model == MODEL
    assert [b.model_dump(exclude={"parsed_output"}) for b in final.content] == [
        b.model_dump() for b in plain.content
    ]
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert bedrock_emulator.log.entries[-1].operation == "invoke-with-response-stream"


async def test_a_tool_round_trip_with_thinking(sdk: SDKClients, gateway: ServedApp) -> None:
    c = sdk.anthropic(gateway)
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    question = {"role": "user", "content": "Please use get_weather for Paris"}
    first = await c.messages.create(
        model=MODEL, max_tokens=4096, thinking=thinking, tools=[WEATHER_TOOL], messages=[question]
    )
    assert first.stop_reason == "tool_use"
    assert first.content[0].type == "thinking" and first.content[0].signature
    tool_use = next(block for block in first.content if block.type == "tool_use")
    async with c.messages.stream(
        model=MODEL,
        max_tokens=4096,
        thinking=thinking,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18 degrees"}],
            },
        ],
    ) as stream:
        second = await stream.get_final_message()
    assert second.stop_reason == "end_turn"
    assert any(block.type == "text" and "18 degrees" in block.text for block in second.content)


async def test_cache_control_writes_then_reads_the_prompt_cache(sdk: SDKClients, gateway: ServedApp) -> None:
    c = sdk.anthropic(gateway)
    request: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "system": [
            {"type": "text", "text": "You are careful. " * 300, "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [{"role": "user", "content": "Hello"}],
    }
    first = await c.messages.create(**request)
    async with c.messages.stream(**request) as stream:
        second = await stream.get_final_message()
    assert first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


async def test_a_claude_code_request_with_a_system_turn_and_tool_addition(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    async with sdk.anthropic(gateway).beta.messages.stream(
        **claude_code_request("claude-opus-5-5"), betas=BETAS, extra_body={"brand_new_sdk_field": 1}
    ) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "end_turn"
    sent = bedrock_emulator.log.entries[-1]
    assert sent.operation == "invoke-with-response-stream"
    assert [m["role"] for m in sent.body["messages"]] == ["user"]
    assert [t["name"] for t in sent.body["tools"]] == ["Read", "Grep"]
    assert sent.body["output_config"] == {"effort": "medium"}
    assert sent.body["thinking"] == {"type": "adaptive"}
    assert "brand_new_sdk_field" not in sent.body


async def test_count_tokens_counts_the_native_body(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    c = sdk.anthropic(gateway)
    messages: Any = [{"role": "user", "content": "count these words please"}]
    counted = await c.messages.count_tokens(model=MODEL, messages=messages)
    created = await c.messages.create(model=MODEL, max_tokens=16, messages=messages)
    assert counted.input_tokens == created.usage.input_tokens
    count = bedrock_emulator.log.for_operation("count-tokens")[-1]
    assert "invokeModel" in count.body["input"]


async def test_the_key_can_pin_converse(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["messages_api"] = "converse"
    gateway = serve_gateway(config)
    raw = await sdk.anthropic(gateway).messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-bedrock-mw-messages-api"] == "converse"
    assert bedrock_emulator.log.entries[-1].operation == "converse"


async def test_an_alias_entry_chooses_the_api_over_its_key(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    key = config["virtual_keys"][0]
    key["messages_api"] = "invoke"
    key["model_aliases"] = {
        "haiku-converse": {
            "model": "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "messages_api": "converse",
        },
        "haiku": "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0",
    }
    gateway = serve_gateway(config)
    client = sdk.anthropic(gateway)
    messages = [{"role": "user", "content": "hi"}]
    pinned = await client.messages.with_raw_response.create(
        model="haiku-converse", max_tokens=16, messages=messages
    )
    plain = await client.messages.with_raw_response.create(model="haiku", max_tokens=16, messages=messages)
    assert pinned.headers["x-bedrock-mw-messages-api"] == "converse"
    assert plain.headers["x-bedrock-mw-messages-api"] == "invoke"
    assert [e.operation for e in bedrock_emulator.log.entries] == ["converse", "invoke"]


async def test_a_fallback_attempt_may_use_the_other_api(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    primary = config["providers"][0]
    config["providers"].append({**primary, "id": "second", "messages_api": "converse"})
    config["virtual_keys"][0]["providers"] = ["emulator", "second"]
    gateway = serve_gateway(config)
    bedrock_emulator.faults.add(Fault.throttling(times=1))
    raw = await sdk.anthropic(gateway).messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    message = await raw.parse()
    assert message.content[0].type == "text"
    assert raw.headers["x-bedrock-mw-provider"] == "second"
    assert raw.headers["x-bedrock-mw-messages-api"] == "converse"
    assert [e.operation for e in bedrock_emulator.log.entries] == ["invoke", "converse"]


async def test_an_error_in_mid_stream_surfaces_as_an_sdk_error(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.faults.add(Fault(stream_error_after=2, error="ModelStreamErrorException"))
    with pytest.raises(anthropic.APIStatusError):
        async with sdk.anthropic(gateway).messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "emit 20 words"}]
        ) as stream:
            await stream.get_final_message()

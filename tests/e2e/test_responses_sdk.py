"""The official OpenAI SDK's Responses API, over real sockets, through the gateway, to the emulator."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import openai
import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.faults import Fault

from .conftest import GatewayFactory, SDKClients, ServedApp

pytestmark = pytest.mark.anyio

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def _without_ids(output: list[Any]) -> list[Any]:
    """Output items minus their ids (fresh per call) and the SDK's parsed-stream extras."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in ("id", "parsed")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return [clean(item.model_dump(exclude_none=True)) for item in output]


@pytest.mark.parametrize(
    ("model", "sent_id"),
    [
        ("claude-haiku-4-5", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
        ("bedrock/meta.llama3-1-70b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0"),
    ],
)
async def test_a_plain_response_works_for_each_converse_family(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator, model: str, sent_id: str
) -> None:
    response = await sdk.openai(gateway).responses.create(
        model=model, input="Hello friend", max_output_tokens=50
    )
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == model
    assert response.output_text == "Echo: Hello friend"
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.input_tokens_details.cached_tokens == 0
    entry = bedrock_emulator.log.entries[-1]
    assert (entry.operation, entry.model_id) == ("converse", sent_id)


async def test_instructions_become_the_system_prompt(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    await sdk.openai(gateway).responses.create(
        model="claude-haiku-4-5", instructions="Be terse.", input=[{"role": "user", "content": "Hi"}]
    )
    sent = bedrock_emulator.log.entries[-1].body
    assert sent["system"] == [{"text": "Be terse."}]
    assert sent["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]


async def test_the_streamed_final_response_equals_the_non_streamed_answer(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    client = sdk.openai(gateway)
    plain = await client.responses.create(model="claude-haiku-4-5", input="emit 20 words")
    async with client.responses.stream(model="claude-haiku-4-5", input="emit 20 words") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text == plain.output_text
    assert len(final.output_text.split()) == 20
    assert _without_ids(final.output) == _without_ids(plain.output)
    assert final.usage == plain.usage
    assert final.status == plain.status == "completed"


async def test_every_streamed_event_carries_an_increasing_sequence_number(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    stream = await sdk.openai(gateway).responses.create(
        model="amazon.nova-lite-v1:0", input="emit 5 words", stream=True
    )
    numbers = [event.sequence_number async for event in stream]
    assert numbers == list(range(len(numbers)))


async def test_max_output_tokens_ends_the_response_incomplete(sdk: SDKClients, gateway: ServedApp) -> None:
    response = await sdk.openai(gateway).responses.create(
        model="claude-haiku-4-5", input="emit 50 words", max_output_tokens=16
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


async def test_a_function_tool_round_trip_with_thinking_keeps_the_reasoning_across_turns(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    """Codex's shape: store false, the reasoning travels sealed in encrypted_content."""
    client = sdk.openai(gateway)
    common: Any = {
        "model": "claude-sonnet-4-5",
        "tools": [WEATHER],
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "store": False,
    }
    history: list[Any] = [{"role": "user", "content": "use get_weather for Paris"}]
    first = await client.responses.create(input=history, **common)
    kinds = [item.type for item in first.output]
    assert kinds[0] == "reasoning" and "function_call" in kinds
    reasoning = first.output[0]
    assert reasoning.encrypted_content and reasoning.summary
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments)["city"]
    sent = bedrock_emulator.log.entries[-1].body
    assert sent["additionalModelRequestFields"]["thinking"]["type"] == "enabled"

    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny"})
    async with client.responses.stream(input=history, **common) as stream:
        second = await stream.get_final_response()
    assert "sunny" in second.output_text
    replayed = bedrock_emulator.log.entries[-1].body["messages"][1]["content"]
    assert "reasoningContent" in replayed[0]  # the thinking block and its signature came back
    assert replayed[0]["reasoningContent"]["reasoningText"]["text"] == reasoning.summary[0].text


async def test_a_forged_encrypted_reasoning_is_refused(sdk: SDKClients, gateway: ServedApp) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.openai(gateway).responses.create(
            model="claude-sonnet-4-5",
            input=[
                {"role": "user", "content": "Hi"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "bmw1.AAAA"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Again"},
            ],
        )
    assert "not issued by this gateway" in caught.value.message
    assert caught.value.body["param"] == "input[1].encrypted_content"  # type: ignore[index]


async def test_previous_response_id_continues_a_stored_conversation(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    client = sdk.openai(gateway)
    first = await client.responses.create(model="claude-haiku-4-5", input="My name is Ada")
    second = await client.responses.create(
        model="claude-haiku-4-5", input="What is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    sent = bedrock_emulator.log.entries[-1].body["messages"]
    assert [turn["role"] for turn in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == [{"text": "My name is Ada"}]
    assert sent[1]["content"] == [{"text": first.output_text}]
    fetched = await client.responses.retrieve(first.id)
    assert fetched.output_text == first.output_text
    items = await client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["message"]
    deleted = await client.responses.delete(first.id)
    assert deleted is None
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(first.id)


async def test_a_streamed_response_is_stored_before_its_last_event(
    sdk: SDKClients, gateway: ServedApp
) -> None:
    client = sdk.openai(gateway)
    async with client.responses.stream(model="claude-haiku-4-5", input="Remember 42") as stream:
        final = await stream.get_final_response()
    stored = await client.responses.retrieve(final.id)
    assert stored.output_text == final.output_text


async def test_a_key_never_sees_another_keys_responses(
    serve_gateway: GatewayFactory, sdk: SDKClients, bedrock_emulator: BedrockEmulator
) -> None:
    from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

    config = emulator_gateway_config(bedrock_emulator)
    other = dict(config["virtual_keys"][0], id="other", key="vk-other")
    config["virtual_keys"].append(other)
    gateway = serve_gateway(config)
    mine = await sdk.openai(gateway).responses.create(model="claude-haiku-4-5", input="secret")
    theirs = sdk.openai(gateway, api_key="vk-other")
    with pytest.raises(openai.NotFoundError):
        await theirs.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        await theirs.responses.create(model="claude-haiku-4-5", input="hi", previous_response_id=mine.id)


async def test_structured_output_follows_the_json_schema(sdk: SDKClients, gateway: ServedApp) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    response = await sdk.openai(gateway).responses.create(
        model="claude-haiku-4-5",
        input="Plan a trip",
        text={"format": {"type": "json_schema", "name": "trip", "schema": schema, "strict": True}},
    )
    answer = json.loads(response.output_text)
    assert set(answer) == {"city", "days"} and isinstance(answer["days"], int)


async def test_hosted_tool_types_are_refused_by_name(sdk: SDKClients, gateway: ServedApp) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.openai(gateway).responses.create(
            model="claude-haiku-4-5", input="Hi", tools=[{"type": "web_search"}]
        )
    assert "'web_search'" in caught.value.message
    assert caught.value.body["param"] == "tools[0].type"  # type: ignore[index]


async def test_unknown_fields_are_dropped_and_named(sdk: SDKClients, gateway: ServedApp) -> None:
    raw = await sdk.openai(gateway).responses.with_raw_response.create(
        model="claude-haiku-4-5",
        input="Hi",
        parallel_tool_calls=False,
        extra_body={"brand_new_field": 1},
    )
    assert raw.headers["x-bedrock-mw-ignored-params"] == "brand_new_field"
    assert raw.headers["x-bedrock-mw-dropped-params"] == "parallel_tool_calls"


async def test_an_upstream_429_reaches_the_sdk_as_a_rate_limit_error(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.faults.add(Fault.throttling(retry_after="7"))
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.openai(gateway).responses.create(model="claude-haiku-4-5", input="Hi")
    assert caught.value.response.headers["retry-after"] == "7"


async def test_a_mid_stream_error_ends_the_stream_with_response_failed(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.faults.add(Fault.stream_error(after=3))
    stream = await sdk.openai(gateway).responses.create(
        model="claude-haiku-4-5", input="emit 30 words", stream=True
    )
    events = [event async for event in stream]
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert last.response.error is not None and last.response.error.message
    assert "response.completed" not in [e.type for e in events]


async def test_a_tool_output_with_an_image_reaches_claude_after_the_tool_result(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    png = base64.b64encode(bytes.fromhex("89504e470d0a1a0a") + b"fake").decode()
    client = sdk.openai(gateway)
    history: list[Any] = [{"role": "user", "content": "use get_weather for Paris"}]
    first = await client.responses.create(model="claude-haiku-4-5", input=history, tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    history += [item.model_dump(exclude_none=True) for item in first.output]
    output = [
        {"type": "input_text", "text": "radar"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{png}"},
    ]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": output})
    raw = await client.responses.with_raw_response.create(
        model="claude-haiku-4-5", input=history, tools=[WEATHER]
    )
    assert raw.headers["x-bedrock-mw-lowered"] == "tool-output-images:1"
    assert "radar" in raw.parse().output_text
    last = bedrock_emulator.log.entries[-1].body["messages"][-1]["content"]
    assert [next(iter(block)) for block in last] == ["toolResult", "image"]


def _sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]


async def test_a_codex_shaped_session_gets_past_its_first_tool_call(
    gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    """Codex's request shape, streamed, stateless, with thinking: two turns over raw HTTP."""
    shell = {
        "type": "function",
        "name": "shell",
        "description": "Runs a shell command and returns its output.",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "array", "items": {"type": "string"}}},
            "required": ["command"],
            "additionalProperties": False,
        },
    }
    base = {
        "model": "claude-sonnet-4-5",
        "instructions": "You are a coding agent.",
        "tools": [shell],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "low", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "session-1",
    }
    history: list[dict[str, Any]] = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "use shell to list"}]}
    ]
    headers = {"authorization": "Bearer vk-test"}
    async with httpx.AsyncClient(base_url=gateway.url + "/v1", headers=headers, timeout=30) as http:
        first = await http.post("/responses", json={**base, "input": history})
        assert first.status_code == 200, first.text
        assert first.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(first.text)
        done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        assert [item["type"] for item in done][:1] == ["reasoning"]
        call = next(item for item in done if item["type"] == "function_call")
        assert events[-1]["type"] == "response.completed"
        history += done
        history.append({"type": "function_call_output", "call_id": call["call_id"], "output": "a.txt b.txt"})
        second = await http.post("/responses", json={**base, "input": history})
    assert second.status_code == 200, second.text
    final = _sse_events(second.text)[-1]
    assert final["type"] == "response.completed", final
    assert "a.txt b.txt" in json.dumps(final["response"]["output"])
    sent = bedrock_emulator.log.entries[-1].body
    assert sent["additionalModelRequestFields"]["thinking"]["type"] == "enabled"  # thinking stayed on

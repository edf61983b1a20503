"""The OpenAI Agents SDK runs an agent with a tool through the gateway's Responses API."""

from __future__ import annotations

import pytest

agents = pytest.importorskip("agents")

from bedrock_mw.testing import BedrockEmulator  # noqa: E402

from .conftest import SDKClients, ServedApp  # noqa: E402

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
async def test_an_agent_calls_its_tool_and_answers_from_the_result(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator, streamed: bool
) -> None:
    agents.set_tracing_disabled(True)  # traces would go to OpenAI, never through the gateway
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    model = agents.OpenAIResponsesModel("claude-haiku-4-5", openai_client=sdk.openai(gateway))
    agent = agents.Agent(name="helper", instructions="Use your tools.", model=model, tools=[get_weather])
    if streamed:
        run = agents.Runner.run_streamed(agent, "use get_weather please")
        async for _ in run.stream_events():
            pass
        final_output = run.final_output
    else:
        final_output = (await agents.Runner.run(agent, "use get_weather please")).final_output

    assert len(calls) == 1
    assert "sunny in" in final_output
    operation = "converse-stream" if streamed else "converse"
    turns = [e for e in bedrock_emulator.log.entries if e.operation == operation]
    assert len(turns) == 2
    last = turns[-1].body["messages"]
    assert "toolResult" in last[-1]["content"][0]
    assert last[-1]["content"][0]["toolResult"]["content"] == [{"text": f"sunny in {calls[0]}"}]


@pytest.mark.parametrize("store", [True, False], ids=["stored", "not-stored"])
async def test_an_agent_with_reasoning_on_claude_gets_past_its_first_tool_call(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator, store: bool
) -> None:
    """The Agents SDK sends reasoning items back without encrypted_content. Stored, the thinking is
    found from the item's id and replayed; not stored, thinking is turned off for the turn that cannot
    replay it (named in a header) instead of Claude refusing the turn."""
    from openai.types.shared import Reasoning

    agents.set_tracing_disabled(True)

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    model = agents.OpenAIResponsesModel("claude-sonnet-4-5", openai_client=sdk.openai(gateway))
    settings = agents.ModelSettings(reasoning=Reasoning(effort="low"), store=store)
    agent = agents.Agent(name="helper", model=model, tools=[get_weather], model_settings=settings)
    result = await agents.Runner.run(agent, "use get_weather please")

    assert "sunny" in result.final_output
    first, second = [e.body for e in bedrock_emulator.log.entries if e.operation == "converse"]
    assert first["additionalModelRequestFields"]["thinking"]["type"] == "enabled"
    if store:
        assert second["additionalModelRequestFields"]["thinking"]["type"] == "enabled"
        assert "reasoningContent" in second["messages"][1]["content"][0]
    else:
        assert "additionalModelRequestFields" not in second

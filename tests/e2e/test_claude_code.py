"""Claude Code's newest request shapes through the official Anthropic SDK: lowered, never refused."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import GatewayFactory, SDKClients, ServedApp

pytestmark = pytest.mark.anyio


@pytest.fixture
def gateway(serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator) -> ServedApp:
    """Lowering on the Converse path (the native path: tests/e2e/test_messages_native.py)."""
    config = emulator_gateway_config(bedrock_emulator)
    config["providers"][0]["messages_api"] = "converse"
    return serve_gateway(config)


EPHEMERAL = {"type": "ephemeral"}
READ = {"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {}}}
GREP = {"name": "Grep", "description": "Search files", "input_schema": {"type": "object", "properties": {}}}
BETAS = [
    "claude-code-20250219",
    "mid-conversation-tool-changes-2026-07-01",
    "per-turn-control-2026-07-01",
    "effort-2025-11-24",
    "context-management-2025-06-27",
    "inline-tools-2026-09-15",
]


def claude_code_request(model: str) -> dict[str, Any]:
    """What Claude Code sends for a model name it does not recognise (issue 12's capture)."""
    return {
        "model": model,
        "max_tokens": 8000,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": EPHEMERAL}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hello from the cli"}]},
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "# Environment\ncwd: /repo", "cache_control": EPHEMERAL}
                ],
                "output_config": {"effort": "medium"},
            },
            {
                "role": "system",
                "content": [
                    {"type": "tool_addition", "tool": {"type": "tool_definition", "definition": GREP}}
                ],
            },
        ],
        "tools": [dict(READ, defer_loading=True)],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }


async def test_a_mid_conversation_system_turn_and_tool_addition_are_lowered_on_converse(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    request = claude_code_request("claude-haiku-4-5")
    raw = await sdk.anthropic(gateway).beta.messages.with_raw_response.create(
        **request, betas=BETAS, extra_body={"brand_new_sdk_field": {"on": True}}
    )
    message = await raw.parse()
    assert message.stop_reason == "end_turn"
    assert any(block.type == "text" for block in message.content)
    assert raw.headers["x-bedrock-mw-lowered"] == (
        "system-turn:2,tool_addition:1,per-turn-effort:medium,thinking:adaptive->enabled(4000)"
    )
    ignored = raw.headers["x-bedrock-mw-ignored-params"].split(",")
    assert {"brand_new_sdk_field", "thinking.display", "tools.defer_loading"} <= set(ignored)
    sent = bedrock_emulator.log.for_operation("converse")[-1].body
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert sent["messages"][0]["content"][1]["text"].startswith("<system-reminder>\n# Environment")
    assert [t["toolSpec"]["name"] for t in sent["toolConfig"]["tools"]] == ["Read", "Grep"]
    assert sent["outputConfig"] == {"effort": "medium"}
    assert sent["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 4000}


async def test_the_same_request_streams_on_converse(sdk: SDKClients, gateway: ServedApp) -> None:
    request = claude_code_request("claude-haiku-4-5")
    async with sdk.anthropic(gateway).beta.messages.stream(**request, betas=BETAS) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "end_turn"


async def test_an_unknown_top_level_field_is_a_400_when_the_host_is_strict(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["reject_unknown_fields"] = True
    strict = serve_gateway(config)
    with pytest.raises(Exception) as caught:
        await sdk.anthropic(strict).messages.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"brand_new_sdk_field": 1},
        )
    assert getattr(caught.value, "status_code", None) == 400
    assert "brand_new_sdk_field" in str(caught.value)
    assert bedrock_emulator.log.entries == []

"""A recorded Claude Code session replayed through a gateway with no model configured: 200 every time.

The capture (``data/claude_code_2_1_332.json``) holds what Claude Code 2.1.332 sends when nothing but
a base URL and a key are configured: its own default model (``claude-opus-5-5``), the small fast
model, mid-conversation system turns with per-turn effort, ``tool_addition``, a turn-scoped
reminder, deferred tools, adaptive thinking with ``display``, context management, and a compaction
request with tool history and no tools. Assistant turns are replayed from the gateway's own earlier
answers, as Claude Code does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import GatewayFactory

pytestmark = pytest.mark.anyio

CAPTURE = orjson.loads((Path(__file__).parent / "data" / "claude_code_2_1_332.json").read_bytes())


def _messages_of(text: str) -> dict[str, Any]:
    """The final message of an answer, plain or streamed (accumulated from the SSE events)."""
    if not text.startswith("event:"):
        message: dict[str, Any] = orjson.loads(text)
        return message
    message = {}
    for line in text.splitlines():
        if not line.startswith("data: "):
            continue
        event = orjson.loads(line.removeprefix("data: "))
        if event["type"] == "message_start":
            message = event["message"]
        elif event["type"] == "content_block_start":
            message["content"].append(event["content_block"])
        elif event["type"] == "content_block_delta":
            block, delta = message["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                block["_json"] = block.get("_json", "") + delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
        elif event["type"] == "content_block_stop":
            block = message["content"][event["index"]]
            if "_json" in block:
                block["input"] = orjson.loads(block.pop("_json") or "{}")
        elif event["type"] == "error":
            raise AssertionError(f"stream ended in an error: {event}")
    return message


def _resolve(value: Any, answers: dict[int, dict[str, Any]]) -> Any:
    """Fill the capture's placeholders with the gateway's earlier answers."""
    if isinstance(value, list):
        return [_resolve(v, answers) for v in value]
    if not isinstance(value, dict):
        return value
    if "$assistant_from_step" in value:
        return {"role": "assistant", "content": answers[value["$assistant_from_step"]]["content"]}
    if "$tool_use_id_from_step" in value:
        blocks = answers[value["$tool_use_id_from_step"]]["content"]
        return next(b["id"] for b in blocks if b["type"] == "tool_use")
    return {k: _resolve(v, answers) for k, v in value.items()}


@pytest.mark.parametrize("messages_api", ["auto", "converse"])
async def test_a_recorded_claude_code_session_gets_200_on_every_request(
    messages_api: str, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)  # no catalogue entries, no aliases, no arn_models
    config["providers"][0]["messages_api"] = messages_api
    gateway = serve_gateway(config)
    headers = dict(CAPTURE["headers"], authorization="Bearer vk-test")
    answers: dict[int, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for index, step in enumerate(CAPTURE["steps"]):
            body = _resolve(step["body"], answers)
            response = await http.request(
                step["method"], step["path"], content=orjson.dumps(body), headers=headers
            )
            assert response.status_code == 200, f"{step['name']}: {response.text}"
            if step["path"].startswith("/v1/messages?"):
                answers[index] = _messages_of(response.text)
    first_turn = answers[2]
    assert any(b["type"] == "tool_use" and b["name"] == "Read" for b in first_turn["content"])
    assert all(e.status == 200 for e in bedrock_emulator.log.entries)

"""The example host, end to end against the Bedrock emulator: host routes, gateway, usage, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bedrock_mw.testing import BedrockEmulator, Fault
from example_app.stores import ResponseRow

pytestmark = pytest.mark.anyio

DEMO = {"x-api-key": "vk-demo", "anthropic-version": "2023-06-01"}


def _message(
    model: str = "claude-haiku-4-5", text: str = "Hello there, gateway", **extra: Any
) -> dict[str, Any]:
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}], **extra}


async def _usage(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/usage")
    assert response.status_code == 200
    return response.json()["data"]


async def test_host_routes(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/llm" in page.text
    hello = await client.get("/api/hello")
    assert hello.json() == {"message": "hello from the host app", "gateway": "/llm"}
    assert (await client.get("/llm/livez")).status_code == 200


async def test_messages_call_writes_a_usage_row(
    client: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    response = await client.post("/llm/v1/messages", headers=DEMO, json=_message())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "message"
    assert body["content"][0]["type"] == "text"
    tokens = body["usage"]
    assert tokens["input_tokens"] > 0 and tokens["output_tokens"] > 0

    # The emulator really was called, with the model the gateway resolved for the Anthropic name.
    calls = bedrock_emulator.log.entries
    assert len(calls) == 1 and "claude-haiku-4-5" in calls[0].model_id

    rows = await _usage(client)
    assert len(rows) == 1
    row = rows[0]
    assert row["key_id"] == "demo"
    assert row["endpoint"] == "messages"
    assert row["model"] == "claude-haiku-4-5"
    assert row["provider_id"] == "emulator"
    assert row["status"] == 200
    assert row["stream"] is False
    assert row["input_tokens"] == tokens["input_tokens"]
    assert row["output_tokens"] == tokens["output_tokens"]
    assert row["request_id"] == response.headers["x-request-id"]

    page = await client.get("/usage")
    assert page.status_code == 200
    assert "claude-haiku-4-5" in page.text and "<table>" in page.text


async def test_streamed_message_is_recorded(client: httpx.AsyncClient) -> None:
    response = await client.post("/llm/v1/messages", headers=DEMO, json=_message(stream=True))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    output_tokens = next(e for e in events if e["type"] == "message_delta")["usage"]["output_tokens"]

    [row] = await _usage(client)
    assert row["stream"] is True
    assert row["status"] == 200
    assert row["output_tokens"] == output_tokens


async def test_chat_completions_and_sql_alias(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/llm/v1/chat/completions",
        headers={"authorization": "Bearer vk-demo"},
        json={"model": "bedrock/us.amazon.nova-lite-v1:0", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"

    # "fast" is an alias stored in the demo key's row and resolved through SqlAliasStore.
    aliased = await client.post("/llm/v1/messages", headers=DEMO, json=_message(model="fast"))
    assert aliased.status_code == 200, aliased.text

    rows = await _usage(client)
    assert [r["endpoint"] for r in rows] == ["messages", "chat_completions"]
    assert rows[0]["model_id"] is not None and "claude-haiku-4-5" in rows[0]["model_id"]


async def test_unknown_key_is_401(client: httpx.AsyncClient, bedrock_emulator: BedrockEmulator) -> None:
    response = await client.post(
        "/llm/v1/messages", headers={**DEMO, "x-api-key": "vk-nope"}, json=_message()
    )
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert "vk-nope" not in response.text
    assert bedrock_emulator.log.entries == []


async def test_bedrock_throttling_reaches_the_client_as_anthropic_429(
    client: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.faults.add(Fault.throttling(model="*claude*"))  # every attempt is throttled

    response = await client.post("/llm/v1/messages", headers=DEMO, json=_message())

    assert response.status_code == 429, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert any(e.error == "ThrottlingException" for e in bedrock_emulator.log.entries)

    [row] = await _usage(client)
    assert row["status"] == 429
    assert row["error_type"] is not None
    assert row["input_tokens"] == 0

    bedrock_emulator.faults.clear()
    retry = await client.post("/llm/v1/messages", headers=DEMO, json=_message())
    assert retry.status_code == 200


async def test_host_lifespan_seeds_and_closes(example_app: Any) -> None:
    # Drive the host's lifespan as a server would: startup seeds the database, shutdown closes.
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await example_app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_stored_responses_live_in_sql_and_continue_a_conversation(
    client: httpx.AsyncClient, example_app: Any
) -> None:
    auth = {"authorization": "Bearer vk-demo"}
    first = await client.post("/llm/v1/responses", headers=auth, json={"model": "fast", "input": "I am Ada"})
    assert first.status_code == 200, first.text
    first_id = first.json()["id"]
    second = await client.post(
        "/llm/v1/responses",
        headers=auth,
        json={"model": "fast", "input": "Who am I?", "previous_response_id": first_id},
    )
    assert second.status_code == 200, second.text
    db = example_app.state.db
    async with db.sessions() as session:
        rows = (await session.execute(select(ResponseRow))).scalars().all()
    assert {(r.key_id, r.response_id) for r in rows} == {("demo", first_id), ("demo", second.json()["id"])}
    fetched = await client.get(f"/llm/v1/responses/{first_id}", headers=auth)
    assert fetched.json()["output"] == first.json()["output"]
    deleted = await client.delete(f"/llm/v1/responses/{first_id}", headers=auth)
    assert deleted.json() == {"id": first_id, "object": "response", "deleted": True}
    gone = await client.get(f"/llm/v1/responses/{first_id}", headers=auth)
    assert gone.status_code == 404

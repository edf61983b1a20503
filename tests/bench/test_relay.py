"""The floor relay (``bench.relay``): it forwards the raw call, signed, and relays the answer as it is."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, BedrockEmulator
from bench.names import MODEL_ID
from bench.relay import Relay

pytestmark = pytest.mark.anyio

BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Say hello"}],
}


async def test_the_relays_lifespan_opens_and_closes_its_upstream_client() -> None:
    relay = Relay("http://127.0.0.1:9")
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []
    clients: list[object] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])
        clients.append(relay.client)

    await relay({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert clients[0] is not None and clients[1] is None


async def test_the_relay_signs_the_call_and_answers_with_bedrocks_status_and_body(
    bedrock_emulator: BedrockEmulator,
) -> None:
    relay = Relay(bedrock_emulator.endpoint_url)
    await relay.start()
    try:
        transport = httpx.ASGITransport(app=relay)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
            path = f"/model/{quote(MODEL_ID, safe='')}"
            answer = await http.post(path + "/invoke", content=orjson.dumps(BODY))
            assert answer.status_code == 200, answer.text
            assert answer.json()["content"][0]["type"] == "text"
            assert answer.headers["content-length"] == str(len(answer.content))
            # Bedrock's refusal passes through as it is: its status and its error body.
            refused = await http.post(path + "/invoke", content=b'{"max_tokens": 64}')
            assert refused.status_code == 400 and "message" in refused.json()
            streamed = await http.post(path + "/invoke-with-response-stream", content=orjson.dumps(BODY))
            assert streamed.status_code == 200
            assert streamed.headers["content-type"] == "application/vnd.amazon.eventstream"
            frames = EventStreamBuffer()
            frames.add_data(streamed.content)
            kinds = []
            for frame in frames:
                assert frame.headers[":event-type"] == "chunk"
                kinds.append(orjson.loads(base64.b64decode(orjson.loads(frame.payload)["bytes"]))["type"])
            assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
            assert (await http.get("/livez")).status_code == 200
    finally:
        await relay.stop()
    # Every call reached the emulator signed with SigV4 (it verifies the signature) by the relay's key.
    log = bedrock_emulator.state.log
    assert len(log) == 3
    assert all(e.auth_kind == "sigv4" and e.access_key_id == EMULATOR_ACCESS_KEY_ID for e in log)

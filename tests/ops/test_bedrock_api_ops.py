"""The pass-through routes share the others' operations: disconnects, key limits, body limits, records.

Plain HTTP here (httpx sends a key over http; only boto3 insists on TLS, see tests/e2e/test_bedrock_api.py).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import orjson
import pytest

from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import ServeGateway, eventually

pytestmark = pytest.mark.anyio

MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
KEY = {"authorization": "Bearer vk-test"}


def path(operation: str, model_id: str = MODEL_ID) -> str:
    return f"/bedrock/model/{quote(model_id, safe='')}/{operation}"


def converse_body(text: str = "hello") -> dict[str, object]:
    return {"messages": [{"role": "user", "content": [{"text": text}]}]}


async def test_a_client_leaving_a_pass_through_stream_closes_the_bedrock_stream(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve()
    bedrock_emulator.faults.add(Fault(event_delay_s=0.05, operation="converse-stream"))
    url = gw.url + path("converse-stream")
    async with http.stream("POST", url, json=converse_body("emit 200 events"), headers=KEY) as r:
        assert r.status_code == 200
        received = b""
        async for chunk in r.aiter_raw():
            received += chunk
            if received.count(b"contentBlockDelta") >= 3:
                break
        assert bedrock_emulator.open_streams == 1
    await eventually(lambda: bedrock_emulator.open_streams == 0, 1.0, "upstream stream closed")
    (record,) = await gw.usage.wait_for(1)
    assert (record.endpoint, record.status, record.error_type) == (
        "bedrock.ConverseStream",
        499,
        "client_disconnected",
    )


async def test_a_key_over_its_request_limit_gets_bedrocks_throttling_shape(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["limits"] = {"requests_per_minute": 1}
    gw = serve(config)
    first = await http.post(gw.url + path("converse"), json=converse_body(), headers=KEY)
    refused = await http.post(gw.url + path("converse"), json=converse_body(), headers=KEY)
    assert first.status_code == 200
    assert refused.status_code == 429
    assert refused.headers["x-amzn-errortype"] == "ThrottlingException"
    assert "retry-after" in refused.headers
    assert set(refused.json()) == {"message"}
    assert len(bedrock_emulator.log.entries) == 1


async def test_a_body_over_the_limit_is_refused_before_bedrock_is_called(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["limits"] = {"max_body_bytes": 2048}
    gw = serve(config)
    big = converse_body("x" * 4096)
    r = await http.post(gw.url + path("invoke"), content=orjson.dumps(big), headers=KEY)
    assert r.status_code == 413
    assert r.headers["x-amzn-errortype"] == "ValidationException"
    assert bedrock_emulator.log.entries == []


async def test_a_model_outside_every_profile_answers_in_bedrocks_shape_without_a_500(
    serve: ServeGateway, http: httpx.AsyncClient
) -> None:
    gw = serve()
    r = await http.post(gw.url + path("converse", "not a model"), json=converse_body(), headers=KEY)
    assert r.status_code in (400, 404)
    assert r.headers["x-amzn-errortype"] in ("ValidationException", "ResourceNotFoundException")
    assert "not a model" in r.json()["message"]


async def test_the_bedrock_api_can_be_turned_off(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["bedrock_api"] = {"enabled": False}
    gw = serve(config)
    r = await http.post(gw.url + path("converse"), json=converse_body(), headers=KEY)
    assert r.status_code == 404
    assert "x-amzn-errortype" not in r.headers

"""The pass-through routes share the others' operations: disconnects, key limits, body limits, records.

Plain HTTP here (httpx sends a key over http; only boto3 insists on TLS, see tests/e2e/test_bedrock_api.py).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.control_plane import application_profile_arn
from bedrock_mw.testing.credentials import EMULATOR_ACCOUNT_ID
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


async def test_an_idle_upstream_mid_stream_ends_with_an_exception_frame_the_sdk_can_read(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["providers"][0]["timeouts"] = {"first_byte_s": 10, "idle_s": 0.3}
    gw = serve(config)
    bedrock_emulator.faults.add(Fault(event_delay_s=1.0, operation="invoke-with-response-stream"))
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "several words to stream slowly"}],
    }
    r = await http.post(gw.url + path("invoke-with-response-stream"), json=body, headers=KEY)
    assert r.status_code == 200
    buffer = EventStreamBuffer()
    buffer.add_data(r.content)
    messages = list(buffer)
    assert messages[0].headers[":event-type"] == "chunk"  # the first frame, relayed as Bedrock sent it
    last = messages[-1]
    assert last.headers[":message-type"] == "exception"
    assert last.headers[":exception-type"] == "modelTimeoutException"
    assert "Bedrock" in orjson.loads(last.payload)["message"]
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.error_type, record.stream) == (504, "timeout", True)


async def test_metrics_name_the_bedrock_operation_and_count_its_tokens(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    config = emulator_gateway_config(bedrock_emulator)
    config["observability"] = {"metrics": True}
    gw = serve(config)
    answer = await http.post(gw.url + path("converse"), json=converse_body(), headers=KEY)
    usage = answer.json()["usage"]
    await gw.usage.wait_for(1)
    text = (await http.get(gw.url + "/metrics")).text
    samples = [
        (s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples
    ]
    requests = [
        v
        for n, lab, v in samples
        if n == "bedrock_mw_requests_total" and lab["endpoint"] == "bedrock.Converse"
    ]
    assert requests == [1.0]
    tokens = {lab["type"]: v for n, lab, v in samples if n == "bedrock_mw_tokens_total"}
    assert (tokens["input"], tokens["output"]) == (usage["inputTokens"], usage["outputTokens"])


async def test_x_api_key_works_like_the_bearer_token(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve()
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "x"}],
    }
    r = await http.post(gw.url + path("invoke"), json=body, headers={"x-api-key": "vk-test"})
    profiles = await http.get(gw.url + "/bedrock/inference-profiles", headers={"x-api-key": "vk-test"})
    assert r.status_code == 200 and r.json()["type"] == "message"
    assert profiles.status_code == 200 and profiles.json()["inferenceProfileSummaries"]
    refused = await http.get(gw.url + "/bedrock/inference-profiles")
    assert refused.status_code == 403
    assert refused.headers["x-amzn-errortype"] == "UnrecognizedClientException"


async def test_application_profiles_from_arn_models_are_listed_by_type(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    app_arn = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc123"
    config = emulator_gateway_config(bedrock_emulator)
    config["arn_models"] = {app_arn: "anthropic.claude-haiku-4-5-20251001-v1:0"}
    gw = serve(config)
    url = gw.url + "/bedrock/inference-profiles"
    apps = (await http.get(url, params={"type": "APPLICATION"}, headers=KEY)).json()
    system = (await http.get(url, params={"type": "SYSTEM_DEFINED"}, headers=KEY)).json()
    wrong = await http.get(url, params={"type": "OTHER"}, headers=KEY)
    # The account's own application profile (discovered) and the one the config names.
    listed = [(p["inferenceProfileArn"], p["type"]) for p in apps["inferenceProfileSummaries"]]
    assert listed == [
        (application_profile_arn("us-east-1", EMULATOR_ACCOUNT_ID), "APPLICATION"),
        (app_arn, "APPLICATION"),
    ]
    assert {p["type"] for p in system["inferenceProfileSummaries"]} == {"SYSTEM_DEFINED"}
    assert wrong.status_code == 400 and wrong.headers["x-amzn-errortype"] == "ValidationException"


@pytest.mark.parametrize("discovery", [True, False], ids=["account-offer", "catalogue"])
async def test_inference_profiles_come_from_the_accounts_offer_else_the_catalogue(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator, discovery: bool
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["model_discovery"] = {"enabled": discovery}
    gw = serve(config)
    r = await http.get(gw.url + "/bedrock/inference-profiles", headers=KEY)
    ids = {p["inferenceProfileId"] for p in r.json()["inferenceProfileSummaries"]}
    # The emulator's account offers a Claude the built-in catalogue does not know yet.
    assert ("us.anthropic.claude-sonnet-5-20261015-v1:0" in ids) is discovery
    assert MODEL_ID in ids
    assert not any(i.startswith(("eu.", "apac.", "jp.", "au.")) for i in ids)  # us-east-1 cannot call them

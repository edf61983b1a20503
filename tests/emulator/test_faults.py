"""Scripted faults (in-process and over the control API), the sync runner and the config fixture."""

from __future__ import annotations

import time
from typing import Any

import anyio
import botocore.config
import httpx
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from bedrock_mw.testing import EMULATOR_API_KEY, BedrockEmulator, Fault

from .conftest import ClientFactory, user

NOVA = "amazon.nova-lite-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
pytestmark = pytest.mark.anyio


async def converse_error(make_client: ClientFactory, model: str = NOVA, **kw: Any) -> dict[str, Any]:
    async with make_client(**kw) as client:
        with pytest.raises(ClientError) as info:
            await client.converse(modelId=model, messages=[user("x")])
    return info.value.response  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        (Fault.throttling(), "ThrottlingException", 429),
        (Fault.access_denied(), "AccessDeniedException", 403),
        (Fault.validation("bad input"), "ValidationException", 400),
        (Fault.internal_error(), "InternalServerException", 500),
        (Fault.unavailable(), "ServiceUnavailableException", 503),
        (Fault.model_not_ready(), "ModelNotReadyException", 429),
        (Fault(status=503), "ServiceUnavailableException", 503),
    ],
)
async def test_error_faults_answer_in_bedrock_shape(
    make_client: ClientFactory, emu: BedrockEmulator, fault: Fault, code: str, status: int
) -> None:
    emu.faults.add(Fault(**{**fault.to_json(), "id": fault.id, "times": 1}))
    response = await converse_error(make_client)
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    async with make_client() as client:  # times=1: the next call succeeds
        await client.converse(modelId=NOVA, messages=[user("x")])


async def test_access_denied_uses_model_access_message(
    make_client: ClientFactory, emu: BedrockEmulator
) -> None:
    emu.faults.add(Fault.access_denied())
    response = await converse_error(make_client)
    assert response["Error"]["Message"] == "You don't have access to the model with the specified model ID."


async def test_fault_matching_by_model_region_operation_and_auth(
    make_client: ClientFactory, emu: BedrockEmulator
) -> None:
    emu.faults.add(Fault.throttling(model="*claude*", region="us-west-2", operation="Converse", auth="sigv4"))
    async with make_client() as client:
        await client.converse(modelId=HAIKU, messages=[user("x")])  # other region
        await client.converse(modelId=NOVA, messages=[user("x")])  # other model
    response = await converse_error(make_client, model=HAIKU, region="us-west-2")
    assert response["Error"]["Code"] == "ThrottlingException"
    assert len(emu.faults) == 1  # permanent


async def test_retry_after_header(make_client: ClientFactory, emu: BedrockEmulator) -> None:
    emu.faults.add(Fault.throttling(retry_after="7", times=1))
    response = await converse_error(make_client)
    assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "7"


async def test_delay_and_cold_start(make_client: ClientFactory, emu: BedrockEmulator) -> None:
    emu.faults.add(Fault.cold_start(0.3))
    async with make_client() as client:
        started = time.monotonic()
        await client.converse(modelId=NOVA, messages=[user("x")])
        cold = time.monotonic() - started
        started = time.monotonic()
        await client.converse(modelId=NOVA, messages=[user("x")])
        warm = time.monotonic() - started
    assert cold >= 0.3 > warm
    emu.faults.clear()
    emu.faults.add(Fault.delay(0.2, times=1))
    async with make_client() as client:
        started = time.monotonic()
        await client.converse(modelId=NOVA, messages=[user("x")])
    assert time.monotonic() - started >= 0.2


async def test_hang_until_client_gives_up(make_client: ClientFactory, emu: BedrockEmulator) -> None:
    emu.faults.add(Fault.hanging(times=1))
    config = botocore.config.Config(retries={"max_attempts": 0}, read_timeout=0.5)
    async with make_client(config=config) as client:
        with pytest.raises(ReadTimeoutError):
            await client.converse(modelId=NOVA, messages=[user("x")])
        assert (await client.converse(modelId=NOVA, messages=[user("x")]))["stopReason"] == "end_turn"


async def test_control_api(emu: BedrockEmulator, make_client: ClientFactory) -> None:
    base = f"{emu.endpoint_url}/_emulator"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/health")).json() == {"status": "ok"}
        added = await http.post(f"{base}/faults", json={"error": "ThrottlingException", "times": 1})
        assert added.status_code == 201
        assert (await converse_error(make_client))["Error"]["Code"] == "ThrottlingException"
        log = (await http.get(f"{base}/log")).json()["entries"]
        assert log[-1]["error"] == "ThrottlingException"
        state = (await http.get(f"{base}/state")).json()
        assert state["open_streams"] == 0 and state["counters"]["errors"] == 1
        assert (await http.post(f"{base}/faults", json={"nope": 1})).status_code == 400
        await http.post(f"{base}/faults", json=[{"status": 500}])
        assert (await http.delete(f"{base}/faults")).status_code == 204
        assert (await http.delete(f"{base}/log")).status_code == 204
        assert (await http.get(f"{base}/log")).json() == {"entries": []}
    assert len(emu.faults) == 0


def test_sync_context_manager_serves_and_stops() -> None:
    with BedrockEmulator() as emu:
        assert httpx.get(f"{emu.endpoint_url}/_emulator/health").json() == {"status": "ok"}
        url = emu.endpoint_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_emulator/health")


async def test_stopping_releases_hanging_requests_promptly() -> None:
    statuses: list[int] = []
    async with anyio.create_task_group() as group:
        async with BedrockEmulator() as emu:
            emu.faults.add(Fault.hanging())
            group.start_soon(_hung_request, emu.endpoint_url, statuses)
            await anyio.sleep(0.3)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 2
    assert statuses == [503]


async def _hung_request(url: str, statuses: list[int]) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        headers = {"Authorization": f"Bearer {EMULATOR_API_KEY}"}
        response = await http.post(
            f"{url}/model/{NOVA}/converse", headers=headers, json={"messages": [user("x")]}
        )
        statuses.append(response.status_code)


def test_config_fixture_points_at_emulator(
    bedrock_emulator_config: dict[str, Any], emu: BedrockEmulator
) -> None:
    provider = bedrock_emulator_config["providers"][0]
    assert provider["endpoint_url"] == emu.endpoint_url
    assert provider["auth"]["mode"] == "access_keys"
    assert bedrock_emulator_config["virtual_keys"] == [
        {"id": "test", "key": "vk-test", "providers": ["emulator"]}
    ]


def test_sequential_requests_are_not_held_by_delayed_acks(emu: BedrockEmulator) -> None:
    # Without TCP_NODELAY each response's second write waits ~40 ms for the client's delayed ACK.
    with httpx.Client() as http:
        http.get(f"{emu.endpoint_url}/_emulator/health")
        started = time.monotonic()
        for _ in range(20):
            http.get(f"{emu.endpoint_url}/_emulator/health")
    assert time.monotonic() - started < 0.4

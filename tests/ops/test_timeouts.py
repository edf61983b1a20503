"""A Bedrock that never answers: a 504 within the provider's timeouts, or a fallover before first byte."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import DIALECTS, MODEL_ID, Dialect, ServeGateway

pytestmark = pytest.mark.anyio

FIRST_BYTE_S = 0.4
TOTAL_S = 0.8
# What these tests pin is that the configured deadlines are the ones applied, not the provider
# defaults (120 s to first byte, 900 s in all) a missing timeout would fall back to. The slack covers
# a machine shared by several test runs (seen: 2.5 s over on a load average of 12 on two cores) and
# is still a small fraction of the smallest default.
SLACK_S = 6.0


def short_timeouts(emu: BedrockEmulator) -> dict[str, Any]:
    config = emulator_gateway_config(emu)
    config["providers"][0]["timeouts"] = {"first_byte_s": FIRST_BYTE_S, "total_s": TOTAL_S}
    return config


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_hanging_bedrock_gives_a_504_within_the_configured_time(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    dialect: Dialect,
    stream: bool,
) -> None:
    gw = serve(short_timeouts(bedrock_emulator))
    bedrock_emulator.faults.add(Fault.hanging())

    started = time.monotonic()
    response = await http.post(
        gw.url + dialect.path, json=dialect.body(stream=stream), headers=dialect.headers()
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 504, response.text
    limit = FIRST_BYTE_S if stream else TOTAL_S
    assert limit <= elapsed < limit + SLACK_S
    error = dialect.error(response)
    assert error["type"] == "timeout_error"
    assert "did not answer provider emulator in us-east-1 in time" in error["message"]
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.error_type, record.attempts) == (504, "timeout", 1)


def primary_and_fallback(emu: BedrockEmulator) -> dict[str, Any]:
    """Two providers on the same emulator, told apart by region."""
    config = short_timeouts(emu)
    primary = config["providers"][0]
    primary["id"] = "primary"
    fallback = {**primary, "id": "fallback", "region": "us-west-2"}
    config["providers"].append(fallback)
    config["virtual_keys"][0]["providers"] = ["primary", "fallback"]
    return config


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_hang_on_the_primary_before_first_byte_falls_over_to_the_fallback(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    dialect: Dialect,
    stream: bool,
) -> None:
    gw = serve(primary_and_fallback(bedrock_emulator))
    bedrock_emulator.faults.add(Fault.hanging(region="us-east-1"))

    started = time.monotonic()
    response = await http.post(
        gw.url + dialect.path, json=dialect.body(stream=stream), headers=dialect.headers()
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert elapsed < (FIRST_BYTE_S if stream else TOTAL_S) + SLACK_S
    assert response.headers["x-bedrock-mw-provider"] == "fallback"
    assert response.headers["x-bedrock-mw-region"] == "us-west-2"
    assert response.headers["x-bedrock-mw-model-id"] == MODEL_ID
    assert response.headers["x-bedrock-mw-attempts"] == "2"
    if stream:
        assert "Echo: Hello there" in "".join(response.text.split("\n")), response.text
    assert [e.region for e in bedrock_emulator.log.entries] == ["us-east-1", "us-west-2"]
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.provider_id, record.region, record.attempts) == (
        200,
        "fallback",
        "us-west-2",
        2,
    )

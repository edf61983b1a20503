"""``/readyz`` and ``/livez``: readiness follows credentials and warm-up, liveness is unconditional."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from bedrock_mw.config import GatewayConfig, ProviderConfig, VirtualKeyConfig
from bedrock_mw.stores import StaticCredentialStore
from bedrock_mw.testing import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_SECRET_ACCESS_KEY,
    BedrockEmulator,
    Fault,
)
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import ANTHROPIC, KEY, ServeGateway

pytestmark = pytest.mark.anyio

# Every way botocore's default chain could find credentials other than the ones a test sets.
_CHAIN_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture
def empty_default_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A process where botocore's default chain finds nothing (and never waits on IMDS)."""
    for name in _CHAIN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def default_chain_config(emu: BedrockEmulator) -> dict[str, Any]:
    config = emulator_gateway_config(emu)
    config["providers"][0]["auth"] = {"mode": "default_chain"}
    return config


async def test_readyz_is_503_until_the_default_chain_finds_credentials_then_200(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    empty_default_chain: pytest.MonkeyPatch,
) -> None:
    gw = serve(default_chain_config(bedrock_emulator))

    not_ready = await http.get(gw.url + "/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json() == {
        "status": "not ready",
        "problems": ["provider emulator: credentials do not resolve (CredentialsError)"],
    }
    # Not-ready is never cached: the next probe looks again.
    assert (await http.get(gw.url + "/readyz")).status_code == 503

    empty_default_chain.setenv("AWS_ACCESS_KEY_ID", EMULATOR_ACCESS_KEY_ID)
    empty_default_chain.setenv("AWS_SECRET_ACCESS_KEY", EMULATOR_SECRET_ACCESS_KEY)
    ready = await http.get(gw.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    # The credentials the probe found are the ones requests use.
    answer = await http.post(gw.url + "/v1/messages", json=ANTHROPIC.body(), headers=ANTHROPIC.headers())
    assert answer.status_code == 200, answer.text
    assert bedrock_emulator.log.entries[-1].access_key_id == EMULATOR_ACCESS_KEY_ID


class FlakyCredentialStore:
    """A host credential store that raises until the host says it is up (a database starting)."""

    def __init__(self, config: GatewayConfig) -> None:
        self._inner = StaticCredentialStore(config)
        self.up = False

    async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
        self._check()
        return await self._inner.get_virtual_key(digest)

    async def get_provider(self, provider_id: str) -> ProviderConfig | None:
        self._check()
        return await self._inner.get_provider(provider_id)

    def _check(self) -> None:
        if not self.up:
            raise ConnectionRefusedError("database is starting")


async def test_readyz_is_503_while_the_host_credential_store_fails_then_200(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    store = FlakyCredentialStore(GatewayConfig.model_validate(config))
    gw = serve(config, credential_store=store)

    not_ready = await http.get(gw.url + "/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["problems"] == [
        "credential store failed for provider emulator: ConnectionRefusedError"
    ]
    assert (await http.get(gw.url + "/livez")).status_code == 200

    store.up = True
    assert (await http.get(gw.url + "/readyz")).status_code == 200


async def test_readyz_waits_for_a_warm_up_call_through_a_cold_start(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["probes"] = {
        "warmup": True,
        "warmup_model": "anthropic.claude-haiku-4-5-20251001-v1:0",
        "warmup_timeout_s": 0.5,
    }
    gw = serve(config)
    # Open the provider's Bedrock client first, so the warm-up's budget goes to the model alone.
    primer = {**ANTHROPIC.body(), "model": "amazon.nova-lite-v1:0"}
    assert (await http.post(gw.url + "/v1/messages", json=primer, headers=ANTHROPIC.headers())).is_success
    # Only the first call per (region, model) is slow: longer than the warm-up may wait.
    bedrock_emulator.faults.add(Fault.cold_start(1.5, operation="converse"))

    cold = await http.get(gw.url + "/readyz")
    assert cold.status_code == 503
    assert cold.json()["problems"] == [
        "warm-up of us.anthropic.claude-haiku-4-5-20251001-v1:0 via emulator in us-east-1 timed out"
    ]
    warm = await http.get(gw.url + "/readyz")
    assert warm.status_code == 200, warm.text

    calls = [c for c in bedrock_emulator.log.for_operation("converse") if "nova" not in c.model_id]
    assert len(calls) == 2
    assert {c.model_id for c in calls} == {"us.anthropic.claude-haiku-4-5-20251001-v1:0"}
    assert calls[-1].body["inferenceConfig"] == {"maxTokens": 1}
    # Warm-up succeeded once: later probes do not call the model again.
    assert (await http.get(gw.url + "/readyz")).status_code == 200
    assert len(bedrock_emulator.log.for_operation("converse")) == 3  # the primer and two warm-ups


async def test_livez_answers_200_even_when_not_ready(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    empty_default_chain: pytest.MonkeyPatch,
) -> None:
    gw = serve(default_chain_config(bedrock_emulator))
    assert (await http.get(gw.url + "/readyz")).status_code == 503
    live = await http.get(gw.url + "/livez")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}


@pytest.mark.parametrize("presented", [None, "vk-wrong", KEY], ids=["no-key", "wrong-key", "valid-key"])
async def test_probes_ignore_virtual_key_auth(
    serve: ServeGateway, http: httpx.AsyncClient, presented: str | None
) -> None:
    gw = serve()
    headers = {"authorization": f"Bearer {presented}"} if presented else {}
    assert (await http.get(gw.url + "/livez", headers=headers)).status_code == 200
    assert (await http.get(gw.url + "/readyz", headers=headers)).status_code == 200


async def test_probe_paths_are_configurable(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["probes"] = {"readyz_path": "/health/ready", "livez_path": "/health/live"}
    gw = serve(config)
    assert (await http.get(gw.url + "/health/ready")).json() == {"status": "ready"}
    assert (await http.get(gw.url + "/health/live")).json() == {"status": "ok"}
    for old in ("/readyz", "/livez"):
        moved = await http.get(gw.url + old)
        assert moved.status_code == 404
        assert moved.json()["error"]["type"] == "invalid_request_error"

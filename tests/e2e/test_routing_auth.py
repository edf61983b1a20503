"""Virtual keys, auth modes, regions, model ids and fallback, seen from the emulator's request log."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

import bedrock_mw
from bedrock_mw.config import ProviderConfig, VirtualKeyConfig
from bedrock_mw.testing import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_API_KEY,
    EMULATOR_SECRET_ACCESS_KEY,
    EMULATOR_SESSION_ACCESS_KEY_ID,
    EMULATOR_SESSION_SECRET_ACCESS_KEY,
    EMULATOR_SESSION_TOKEN,
    BedrockEmulator,
    Fault,
    key_fingerprint,
)

from .conftest import GatewayFactory, ServedApp

pytestmark = pytest.mark.anyio

HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
# The Bedrock transports a provider can select: the lean client and aiobotocore's, the reference.
TRANSPORTS = pytest.mark.parametrize("transport", ["lean", "aiobotocore"])


def provider(emu: BedrockEmulator, pid: str, region: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "auth": {
            "mode": "access_keys",
            "access_key_id": EMULATOR_ACCESS_KEY_ID,
            "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
        },
        "region": region,
        "endpoint_url": emu.endpoint_url,
        **extra,
    }


def two_region_config(emu: BedrockEmulator, transport: str = "lean", **key: Any) -> dict[str, Any]:
    return {
        "providers": [
            provider(emu, "primary", "us-east-1", transport=transport),
            provider(emu, "fallback", "eu-west-1", transport=transport),
        ],
        "virtual_keys": [{"id": "team", "key": "vk-test", "providers": ["primary", "fallback"], **key}],
    }


async def post(
    gateway: ServedApp,
    body: Mapping[str, Any],
    key: str = "vk-test",
    path: str = "/v1/messages",
    **headers: str,
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        return await http.post(path, json=dict(body), headers={"x-api-key": key, **headers})


def message(model: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": text}], **extra}


# -- auth modes -------------------------------------------------------------------------------------
@TRANSPORTS
async def test_access_keys_sign_with_sigv4_in_the_providers_region(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator, transport: str
) -> None:
    gateway = serve_gateway(
        {
            "providers": [provider(bedrock_emulator, "p", "us-west-2", transport=transport)],
            "virtual_keys": [{"id": "k", "key": "vk-test", "providers": ["p"]}],
        }
    )
    r = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert r.status_code == 200, r.text
    entry = bedrock_emulator.log.entries[-1]
    assert (entry.auth_kind, entry.access_key_id, entry.region) == (
        "sigv4",
        EMULATOR_ACCESS_KEY_ID,
        "us-west-2",
    )
    assert entry.session_token_present is False


@TRANSPORTS
async def test_a_session_token_travels_with_temporary_keys(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator, transport: str
) -> None:
    temporary = provider(bedrock_emulator, "p", "us-east-1", transport=transport)
    temporary["auth"] = {
        "mode": "access_keys",
        "access_key_id": EMULATOR_SESSION_ACCESS_KEY_ID,
        "secret_access_key": EMULATOR_SESSION_SECRET_ACCESS_KEY,
        "session_token": EMULATOR_SESSION_TOKEN,
    }
    gateway = serve_gateway(
        {"providers": [temporary], "virtual_keys": [{"id": "k", "key": "vk-test", "providers": ["p"]}]}
    )
    r = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert r.status_code == 200, r.text
    entry = bedrock_emulator.log.entries[-1]
    assert entry.access_key_id == EMULATOR_SESSION_ACCESS_KEY_ID
    assert entry.session_token == EMULATOR_SESSION_TOKEN


@TRANSPORTS
async def test_bedrock_api_keys_are_sent_as_bearer_tokens_per_provider(
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
) -> None:
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    bearer = {
        "id": "p",
        "transport": transport,
        "auth": {"mode": "api_key", "api_key": EMULATOR_API_KEY},
        "region": "us-east-1",
        "endpoint_url": bedrock_emulator.endpoint_url,
    }
    gateway = serve_gateway(
        {"providers": [bearer], "virtual_keys": [{"id": "k", "key": "vk-test", "providers": ["p"]}]}
    )
    r = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert r.status_code == 200, r.text
    entry = bedrock_emulator.log.entries[-1]
    assert entry.auth_kind == "bearer"
    assert entry.bearer_key_id == key_fingerprint(EMULATOR_API_KEY)
    assert entry.access_key_id is None


@TRANSPORTS
async def test_the_default_chain_finds_environment_credentials(
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    transport: str,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", EMULATOR_SESSION_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EMULATOR_SESSION_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", EMULATOR_SESSION_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    chain = {
        "id": "pod",
        "transport": transport,
        "auth": {"mode": "default_chain"},
        "region": "eu-central-1",
        "endpoint_url": bedrock_emulator.endpoint_url,
    }
    gateway = serve_gateway(
        {"providers": [chain], "virtual_keys": [{"id": "k", "key": "vk-test", "providers": ["pod"]}]}
    )
    r = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert r.status_code == 200, r.text
    entry = bedrock_emulator.log.entries[-1]
    assert (entry.auth_kind, entry.region) == ("sigv4", "eu-central-1")
    assert (entry.access_key_id, entry.session_token) == (
        EMULATOR_SESSION_ACCESS_KEY_ID,
        EMULATOR_SESSION_TOKEN,
    )


# -- regions and model ids --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key_extra", "model", "region", "sent"),
    [
        ({}, "claude-haiku-4-5", "us-east-1", f"us.{HAIKU}"),
        ({"default_region": "us-west-2"}, "claude-haiku-4-5", "us-west-2", f"us.{HAIKU}"),
        ({"default_region": "us-west-2"}, "bedrock/eu-west-1/claude-haiku-4-5", "eu-west-1", f"eu.{HAIKU}"),
        ({}, "bedrock/eu-west-3/amazon.nova-lite-v1:0", "eu-west-3", "amazon.nova-lite-v1:0"),
        ({}, f"eu.{HAIKU}", "eu-west-1", f"eu.{HAIKU}"),
        ({}, f"global.{HAIKU}", "us-east-1", f"global.{HAIKU}"),
        ({}, "meta.llama3-1-70b-instruct-v1:0", "us-east-1", "meta.llama3-1-70b-instruct-v1:0"),
        (
            {},
            f"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.{HAIKU}",
            "eu-west-1",
            f"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.{HAIKU}",
        ),
        (
            {},
            "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-lite-v1:0",
            "us-west-2",
            "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-lite-v1:0",
        ),
        (
            {"model_aliases": {"fast": "bedrock/us.amazon.nova-micro-v1:0"}},
            "fast",
            "us-east-1",
            "us.amazon.nova-micro-v1:0",
        ),
        (
            {"model_aliases": {"claude-opus-*": f"bedrock/us.{HAIKU}"}},
            "claude-opus-4-7",
            "us-east-1",
            f"us.{HAIKU}",
        ),
    ],
)
@TRANSPORTS
async def test_each_model_id_form_reaches_bedrock_in_the_right_region(
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    key_extra: dict[str, Any],
    model: str,
    region: str,
    sent: str,
    transport: str,
) -> None:
    gateway = serve_gateway(two_region_config(bedrock_emulator, transport, **key_extra))
    r = await post(gateway, message(model))
    assert r.status_code == 200, r.text
    entry = bedrock_emulator.log.entries[-1]
    assert (entry.model_id, entry.region) == (sent, region)
    assert r.headers["x-bedrock-mw-model-id"] == sent
    assert r.json()["model"] == model


async def test_a_geo_profile_outside_the_requested_region_is_a_clear_400(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(two_region_config(bedrock_emulator))
    r = await post(gateway, message(f"bedrock/eu-west-1/us.{HAIKU}"))
    assert r.status_code == 400
    assert "eu-west-1" in r.json()["error"]["message"]
    assert bedrock_emulator.log.entries == []


async def test_the_providers_inference_profile_arn_serves_requests_for_its_model(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU}"
    cfg = {
        "providers": [provider(bedrock_emulator, "p", "us-east-1", inference_profile_arn=arn)],
        "virtual_keys": [{"id": "k", "key": "vk-test", "providers": ["p"]}],
    }
    gateway = serve_gateway(cfg)
    assert (await post(gateway, message("claude-haiku-4-5"))).status_code == 200
    assert bedrock_emulator.log.entries[-1].model_id == arn
    assert (await post(gateway, message("amazon.nova-lite-v1:0"))).status_code == 200
    assert bedrock_emulator.log.entries[-1].model_id == "amazon.nova-lite-v1:0"


# -- fallback -----------------------------------------------------------------------------------------
@TRANSPORTS
async def test_throttling_in_the_primary_is_served_by_the_next_provider(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator, transport: str
) -> None:
    gateway = serve_gateway(two_region_config(bedrock_emulator, transport))
    bedrock_emulator.faults.add(Fault.throttling(region="us-east-1"))
    r = await post(gateway, message("claude-haiku-4-5"))
    assert r.status_code == 200, r.text
    assert r.headers["x-bedrock-mw-provider"] == "fallback"
    assert r.headers["x-bedrock-mw-region"] == "eu-west-1"
    assert r.headers["x-bedrock-mw-attempts"] == "2"
    regions = [(e.region, e.model_id, e.status) for e in bedrock_emulator.log.entries]
    # The fallback landed in another geography: the us. profile was rewritten to eu.
    assert regions == [("us-east-1", f"us.{HAIKU}", 429), ("eu-west-1", f"eu.{HAIKU}", 200)]


async def test_a_model_access_denial_falls_over_to_another_account(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(two_region_config(bedrock_emulator))
    bedrock_emulator.faults.add(Fault.access_denied(region="us-east-1"))
    r = await post(gateway, message("amazon.nova-lite-v1:0"), path="/v1/chat/completions")
    assert r.status_code == 200, r.text
    assert r.headers["x-bedrock-mw-provider"] == "fallback"


async def test_a_validation_error_does_not_fall_over(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(two_region_config(bedrock_emulator))
    bedrock_emulator.faults.add(Fault.validation("Malformed input request: bad field", region="us-east-1"))
    r = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert r.status_code == 400
    assert "Malformed input request" in r.json()["error"]["message"]
    assert len(bedrock_emulator.log.entries) == 1


async def test_when_every_attempt_fails_the_most_meaningful_error_names_each_attempt(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(two_region_config(bedrock_emulator))
    bedrock_emulator.faults.add(Fault.access_denied(region="us-east-1"))
    bedrock_emulator.faults.add(Fault.unavailable(region="eu-west-1"))
    r = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert r.status_code == 403
    text = r.json()["error"]["message"]
    assert "primary/us-east-1" in text and "fallback/eu-west-1" in text
    assert EMULATOR_SECRET_ACCESS_KEY not in text


@TRANSPORTS
async def test_a_stream_falls_over_before_its_first_byte(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator, transport: str
) -> None:
    gateway = serve_gateway(two_region_config(bedrock_emulator, transport))
    bedrock_emulator.faults.add(Fault.stream_error(after=0, error="ThrottlingException", region="us-east-1"))
    r = await post(gateway, {**message("claude-haiku-4-5", "emit 5 events"), "stream": True})
    assert r.status_code == 200
    assert r.headers["x-bedrock-mw-provider"] == "fallback"
    assert "event: error" not in r.text
    assert r.text.count("text_delta") == 5


# -- virtual keys ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer vk-test"},
        {"x-api-key": "vk-test"},
        {"api-key": "vk-test"},
        {"Authorization": "bearer vk-test"},
    ],
)
async def test_each_key_header_form_is_accepted(gateway: ServedApp, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        r = await http.post(
            "/v1/chat/completions",
            json={"model": "amazon.nova-lite-v1:0", "messages": [{"role": "user", "content": "x"}]},
            headers=headers,
        )
    assert r.status_code == 200, r.text


async def test_missing_and_wrong_keys_are_401_in_each_dialect(gateway: ServedApp) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        anthropic_style = await http.post("/v1/messages", json=message("claude-haiku-4-5"))
        openai_style = await http.post(
            "/v1/chat/completions", json={}, headers={"authorization": "Bearer vk-nope"}
        )
    assert anthropic_style.status_code == 401
    assert anthropic_style.json()["error"]["type"] == "authentication_error"
    assert openai_style.status_code == 401
    assert openai_style.json()["error"]["code"] == "invalid_api_key"
    assert "vk-nope" not in openai_style.text


async def test_a_revoked_key_stops_working_within_the_cache_ttl(bedrock_emulator: BedrockEmulator) -> None:
    keys = {"vk-live": VirtualKeyConfig(id="live", key="vk-live", providers=["p"])}
    prov = ProviderConfig.model_validate(provider(bedrock_emulator, "p", "us-east-1"))

    class HostStore:
        async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
            return next(
                (k for s, k in keys.items() if hashlib.sha256(s.encode()).hexdigest() == digest), None
            )

        async def get_provider(self, provider_id: str) -> ProviderConfig | None:
            return prov if provider_id == "p" else None

    clock = [0.0]
    store = bedrock_mw.CachingCredentialStore(HostStore(), ttl_s=30, clock=lambda: clock[0])
    app = bedrock_mw.create_gateway({"providers": []}, credential_store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        body = message("amazon.nova-lite-v1:0")
        assert (
            await http.post("/v1/messages", json=body, headers={"x-api-key": "vk-live"})
        ).status_code == 200
        del keys["vk-live"]  # revoked in the host's database
        clock[0] = 29.0
        assert (
            await http.post("/v1/messages", json=body, headers={"x-api-key": "vk-live"})
        ).status_code == 200
        clock[0] = 31.0
        assert (
            await http.post("/v1/messages", json=body, headers={"x-api-key": "vk-live"})
        ).status_code == 401
    await app.state.gateway.aclose()


async def test_a_model_outside_allowed_models_is_403(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(two_region_config(bedrock_emulator, allowed_models=["anthropic.claude-*"]))
    assert (await post(gateway, message("claude-haiku-4-5"))).status_code == 200
    denied = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_error"


async def test_allowed_regions_keep_a_key_in_its_regions_and_refuse_the_rest_before_bedrock(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    # The primary is in us-east-1, outside the key's list: requests go to the EU fallback only.
    gateway = serve_gateway(two_region_config(bedrock_emulator, allowed_regions=["eu-*"]))
    ok = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert ok.status_code == 200, ok.text
    assert bedrock_emulator.log.entries[-1].region == "eu-west-1"
    before = len(bedrock_emulator.log.entries)
    pinned = await post(gateway, message("bedrock/us-east-1/amazon.nova-lite-v1:0"))
    assert pinned.status_code == 403
    assert pinned.json()["error"]["type"] == "permission_error"
    assert "allowed_regions" in pinned.json()["error"]["message"]
    everywhere = await post(
        gateway,
        {"model": "global.anthropic.claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]},
        path="/v1/chat/completions",
    )
    assert everywhere.status_code == 403
    assert "global" in everywhere.json()["error"]["message"]
    assert len(bedrock_emulator.log.entries) == before  # refused before Bedrock was called


async def test_allowed_regions_skip_a_fallback_outside_them_when_the_primary_is_throttled(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = two_region_config(bedrock_emulator, allowed_regions=["eu-west-1"])
    cfg["virtual_keys"][0]["providers"] = ["fallback", "primary"]  # EU first, US as the fallback
    gateway = serve_gateway(cfg)
    bedrock_emulator.faults.add(Fault.throttling(region="eu-west-1"))
    r = await post(gateway, message("amazon.nova-lite-v1:0"))
    assert r.status_code == 429, r.text
    assert {entry.region for entry in bedrock_emulator.log.entries} == {"eu-west-1"}


@pytest.mark.parametrize(
    "smuggled",
    [
        "anthropic.claude-opus-4-1-20250805-v1:0:claude-haiku-4-5",
        "us.anthropic.claude-opus-4-1-20250805-v1:0:claude-haiku-4-5",
        "bedrock/us-east-1/anthropic.claude-opus-4-1-20250805-v1:0:claude-haiku-4-5",
        "opus-as-haiku",
    ],
)
async def test_allowed_models_match_the_parsed_model_not_the_raw_string(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator, smuggled: str
) -> None:
    gateway = serve_gateway(
        two_region_config(
            bedrock_emulator,
            allowed_models=["*claude-haiku-4-5*", "fast"],
            model_aliases={
                "opus-as-haiku": "anthropic.claude-opus-4-1-20250805-v1:0",
                "fast": "anthropic.claude-opus-4-1-20250805-v1:0",
            },
        )
    )
    assert (await post(gateway, message("claude-haiku-4-5"))).status_code == 200
    assert (await post(gateway, message("fast"))).status_code == 200  # the alias name is the identity
    calls = len(bedrock_emulator.log.entries)

    denied = await post(gateway, message(smuggled))

    assert denied.status_code in (403, 404), denied.text
    assert len(bedrock_emulator.log.entries) == calls  # nothing reached Bedrock


async def test_a_key_cannot_use_another_keys_aliases(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = two_region_config(bedrock_emulator, model_aliases={"secret-model": "bedrock/amazon.nova-lite-v1:0"})
    cfg["virtual_keys"].append({"id": "other", "key": "vk-other", "providers": ["primary"]})
    gateway = serve_gateway(cfg)
    assert (await post(gateway, message("secret-model"))).status_code == 200
    other = await post(gateway, message("secret-model"), key="vk-other")
    assert other.status_code == 404
    assert "secret-model" in other.json()["error"]["message"]


async def test_a_host_store_is_injected_per_request_through_a_factory(
    bedrock_emulator: BedrockEmulator,
) -> None:
    prov = ProviderConfig.model_validate(provider(bedrock_emulator, "p", "us-west-2"))
    seen: list[str] = []

    class TenantStore:
        def __init__(self, tenant: str) -> None:
            self.tenant = tenant

        async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
            if digest == hashlib.sha256(f"vk-{self.tenant}".encode()).hexdigest():
                return VirtualKeyConfig(id=self.tenant, key_sha256=digest, providers=["p"])
            return None

        async def get_provider(self, provider_id: str) -> ProviderConfig | None:
            return prov

    async def per_request(request: Any) -> TenantStore:
        tenant = request.headers.get("x-tenant", "none")
        seen.append(tenant)
        return TenantStore(tenant)

    records: list[bedrock_mw.UsageRecord] = []

    async def usage(record: bedrock_mw.UsageRecord) -> None:
        records.append(record)

    app = bedrock_mw.create_gateway({}, credential_store=per_request, usage_hook=usage)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        ok = await http.post(
            "/v1/messages",
            json=message("amazon.nova-lite-v1:0"),
            headers={"x-api-key": "vk-acme", "x-tenant": "acme"},
        )
        wrong = await http.post(
            "/v1/messages",
            json=message("amazon.nova-lite-v1:0"),
            headers={"x-api-key": "vk-acme", "x-tenant": "globex"},
        )
    assert ok.status_code == 200 and wrong.status_code == 401
    assert seen == ["acme", "globex"]
    assert records[0].key_id == "acme" and records[0].region == "us-west-2"
    await app.state.gateway.aclose()


async def test_a_host_user_maps_to_a_key_without_presenting_one(bedrock_emulator: BedrockEmulator) -> None:
    cfg = {"providers": [provider(bedrock_emulator, "p", "us-east-1")]}

    async def from_session(request: Any) -> VirtualKeyConfig | None:
        user = request.headers.get("x-host-user")
        return VirtualKeyConfig(id=f"user-{user}", providers=["p"]) if user else None

    app = bedrock_mw.create_gateway(cfg, key_resolver=from_session)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        ok = await http.post(
            "/v1/messages", json=message("amazon.nova-lite-v1:0"), headers={"x-host-user": "ann"}
        )
        anonymous = await http.post("/v1/messages", json=message("amazon.nova-lite-v1:0"))
    assert ok.status_code == 200, ok.text
    assert anonymous.status_code == 401
    await app.state.gateway.aclose()


@TRANSPORTS
@pytest.mark.parametrize("base_mode", ["access_keys", "default_chain"])
async def test_assume_role_signs_bedrock_calls_with_the_roles_temporary_credentials(
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    base_mode: str,
    transport: str,
) -> None:
    role = {
        "role_arn": "arn:aws:iam::210987654321:role/bedrock-invoker",
        "external_id": "tenant-42",
        "session_name": "gateway",
        "sts_endpoint_url": bedrock_emulator.endpoint_url,
    }
    assumed = provider(bedrock_emulator, "p", "us-east-1", transport=transport)
    if base_mode == "default_chain":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", EMULATOR_ACCESS_KEY_ID)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EMULATOR_SECRET_ACCESS_KEY)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        assumed["auth"] = {"mode": "default_chain"}
    assumed["auth"] = {**assumed["auth"], "assume_role": role}
    gateway = serve_gateway(
        {"providers": [assumed], "virtual_keys": [{"id": "k", "key": "vk-test", "providers": ["p"]}]}
    )
    for _ in range(2):
        r = await post(gateway, message("amazon.nova-lite-v1:0"))
        assert r.status_code == 200, r.text
    (call,) = bedrock_emulator.state.assumed_roles  # assumed once, then reused until near expiry
    assert (call.role_arn, call.external_id, call.session_name) == (role["role_arn"], "tenant-42", "gateway")
    assert call.caller_access_key_id == EMULATOR_ACCESS_KEY_ID
    entries = bedrock_emulator.log.entries
    assert {e.access_key_id for e in entries} == {call.issued_access_key_id}
    assert all(e.session_token_present for e in entries)


@TRANSPORTS
async def test_rotated_provider_credentials_rebuild_the_pooled_client(
    bedrock_emulator: BedrockEmulator, transport: str
) -> None:
    current = {"secret": "wrong-secret-before-rotation"}

    class RotatingStore:
        async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
            if digest == hashlib.sha256(b"vk-test").hexdigest():
                return VirtualKeyConfig(id="k", key_sha256=digest, providers=["p"])
            return None

        async def get_provider(self, provider_id: str) -> ProviderConfig | None:
            cfg = provider(bedrock_emulator, "p", "us-east-1", transport=transport)
            cfg["auth"]["secret_access_key"] = current["secret"]
            return ProviderConfig.model_validate(cfg)

    app = bedrock_mw.create_gateway({}, credential_store=RotatingStore())
    pool = app.state.gateway.dispatcher.pool
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        before = await http.post(
            "/v1/messages", json=message("amazon.nova-lite-v1:0"), headers={"x-api-key": "vk-test"}
        )
        assert before.status_code == 502
        assert "InvalidSignatureException" in before.json()["error"]["message"]
        assert "wrong-secret" not in before.text
        current["secret"] = EMULATOR_SECRET_ACCESS_KEY
        after = await http.post(
            "/v1/messages", json=message("amazon.nova-lite-v1:0"), headers={"x-api-key": "vk-test"}
        )
        assert after.status_code == 200, after.text
        again = await http.post(
            "/v1/messages", json=message("amazon.nova-lite-v1:0"), headers={"x-api-key": "vk-test"}
        )
        assert again.status_code == 200
    assert len(pool) == 1  # the old client was closed and replaced, not kept beside the new one
    await app.state.gateway.aclose()
    assert len(pool) == 0


async def test_an_application_profile_arn_with_a_configured_model_counts_tokens_on_that_model(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/t3amh4iku9xy"
    cfg = two_region_config(bedrock_emulator)
    cfg["arn_models"] = {arn: "anthropic.claude-3-5-haiku-20241022-v1:0"}
    gateway = serve_gateway(cfg)
    body = message(
        arn, system=[{"type": "text", "text": "cached " * 50, "cache_control": {"type": "ephemeral"}}]
    )
    sent = await post(gateway, body)
    assert sent.status_code == 200, sent.text
    assert bedrock_emulator.log.entries[-1].model_id == arn
    # The family is known, so the cache point was kept (not dropped as for an unknown model).
    assert "x-bedrock-mw-dropped-cache-control" not in sent.headers
    assert sent.json()["usage"]["cache_creation_input_tokens"] > 0
    counted = await post(
        gateway, {k: v for k, v in body.items() if k != "max_tokens"}, path="/v1/messages/count_tokens"
    )
    assert counted.status_code == 200, counted.text
    assert bedrock_emulator.log.entries[-1].model_id == "anthropic.claude-3-5-haiku-20241022-v1:0"

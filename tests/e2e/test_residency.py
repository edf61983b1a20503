"""Per-key allowed_regions, provider accounts, and listings that agree with the request path.

Every test drives the gateway over a real socket (the Anthropic and OpenAI SDKs, httpx on the
``/bedrock`` routes) against the emulator, and reads the emulator's request log to tell a request
the gateway refused from one that reached Bedrock.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import anthropic
import httpx
import openai
import pytest

from bedrock_mw.testing import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCOUNT_ID,
    EMULATOR_SECRET_ACCESS_KEY,
    BedrockEmulator,
)
from bedrock_mw.testing.control_plane import application_profile_arn

from .conftest import GatewayFactory, SDKClients

pytestmark = pytest.mark.anyio

HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
OTHER_ACCOUNT = "210987654321"


def _provider(emu: BedrockEmulator, pid: str, region: str) -> dict[str, Any]:
    return {
        "id": pid,
        "auth": {
            "mode": "access_keys",
            "access_key_id": EMULATOR_ACCESS_KEY_ID,
            "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
        },
        "region": region,
        "endpoint_url": emu.endpoint_url,
        "account_id": EMULATOR_ACCOUNT_ID,
    }


def _config(emu: BedrockEmulator, keys: dict[str, dict[str, Any]], **top: Any) -> dict[str, Any]:
    """Providers in eu-west-1 (primary) and us-east-1 (fallback); one key per entry, secret = name."""
    return {
        "providers": [_provider(emu, "eu", "eu-west-1"), _provider(emu, "us", "us-east-1")],
        "virtual_keys": [
            {"id": name, "key": name, "providers": ["eu", "us"], **fields} for name, fields in keys.items()
        ],
        **top,
    }


async def _reaches_bedrock(emu: BedrockEmulator, call: Any) -> tuple[bool, Any]:
    before = len(emu.log.entries)
    result = await call
    return len(emu.log.entries) > before, result


def _user(text: str = "hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_every_route_refuses_a_model_outside_allowed_regions_with_a_403_in_its_dialect(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(_config(bedrock_emulator, {"vk-eu": {"allowed_regions": ["eu-*"]}}))
    claude, oai = sdk.anthropic(gateway, "vk-eu"), sdk.openai(gateway, "vk-eu")
    us_profile = f"us.{HAIKU}"
    us_embed_arn = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"

    refusals: list[Exception] = []
    for call in (
        lambda: claude.messages.create(model=us_profile, max_tokens=8, messages=_user()),  # type: ignore[arg-type]
        lambda: claude.messages.count_tokens(model=us_profile, messages=_user()),  # type: ignore[arg-type]
        lambda: oai.chat.completions.create(model=us_profile, messages=_user()),  # type: ignore[arg-type]
        lambda: oai.responses.create(model=f"global.{HAIKU}", input="hi"),
        lambda: oai.embeddings.create(model=us_embed_arn, input="hi"),
    ):
        with pytest.raises((anthropic.PermissionDeniedError, openai.PermissionDeniedError)) as caught:
            await call()
        refusals.append(caught.value)
    assert all("allowed_regions" in str(err) for err in refusals), refusals

    async with httpx.AsyncClient(base_url=gateway.url, headers={"authorization": "Bearer vk-eu"}) as http:
        arn = f"arn:aws:bedrock:us-east-1:{EMULATOR_ACCOUNT_ID}:inference-profile/{us_profile}"
        for path in (f"/bedrock/model/{quote(arn, safe='')}/converse", f"/bedrock/model/{us_profile}/invoke"):
            body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
            passthrough = await http.post(path, json=body)
            assert passthrough.status_code == 403, passthrough.text
            assert passthrough.headers["x-amzn-errortype"].startswith("AccessDeniedException")
            assert "allowed_regions" in passthrough.json()["message"]

    assert bedrock_emulator.log.entries == []  # all refused before Bedrock
    ok = await claude.messages.create(model=f"eu.{HAIKU}", max_tokens=8, messages=_user())  # type: ignore[arg-type]
    assert ok.content and bedrock_emulator.log.entries[-1].region == "eu-west-1"


async def test_a_geography_profile_needs_the_whole_geography_in_allowed_regions(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(
        _config(
            bedrock_emulator,
            {"vk-dublin": {"allowed_regions": ["eu-west-1"]}, "vk-eu": {"allowed_regions": ["eu-*"]}},
        )
    )
    dublin = sdk.anthropic(gateway, "vk-dublin")
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        await dublin.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=_user())  # type: ignore[arg-type]
    assert "'eu.' inference profile" in caught.value.message
    assert bedrock_emulator.log.entries == []
    # A model Bedrock serves in-region on demand stays in eu-west-1.
    reached, _ = await _reaches_bedrock(
        bedrock_emulator,
        dublin.messages.create(model="amazon.nova-pro-v1:0", max_tokens=8, messages=_user()),  # type: ignore[arg-type]
    )
    assert reached and {e.region for e in bedrock_emulator.log.entries} == {"eu-west-1"}
    # The whole geography admits its profile.
    ok = await sdk.anthropic(gateway, "vk-eu").messages.create(
        model="claude-haiku-4-5",
        max_tokens=8,
        messages=_user(),  # type: ignore[arg-type]
    )
    assert ok.content and bedrock_emulator.log.entries[-1].model_id == f"eu.{HAIKU}"


async def test_an_arn_of_another_region_or_account_is_refused_and_the_providers_own_is_served(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(_config(bedrock_emulator, {"vk-eu": {"allowed_regions": ["eu-*"]}, "vk-any": {}}))
    eu_key, any_key = sdk.openai(gateway, "vk-eu"), sdk.openai(gateway, "vk-any")
    own_app = application_profile_arn("eu-west-1", EMULATOR_ACCOUNT_ID)
    us_app = application_profile_arn("us-east-1", EMULATOR_ACCOUNT_ID)
    foreign_app = application_profile_arn("eu-west-1", OTHER_ACCOUNT)

    with pytest.raises(openai.PermissionDeniedError) as in_us:
        await eu_key.chat.completions.create(model=us_app, messages=_user())  # type: ignore[arg-type]
    assert "us-east-1" in in_us.value.message
    for client in (eu_key, any_key):  # the account boundary holds with or without allowed_regions
        with pytest.raises(openai.PermissionDeniedError) as foreign:
            await client.chat.completions.create(model=foreign_app, messages=_user())  # type: ignore[arg-type]
        assert OTHER_ACCOUNT in foreign.value.message and EMULATOR_ACCOUNT_ID in foreign.value.message
    assert bedrock_emulator.log.entries == []

    # The account's own profile in an allowed region; GetInferenceProfile says its source is eu-west-1.
    answer = await eu_key.chat.completions.create(model=own_app, messages=_user("own"))  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Echo: own"
    assert (bedrock_emulator.log.entries[-1].region, bedrock_emulator.log.entries[-1].model_id) == (
        "eu-west-1",
        own_app,
    )


async def test_an_application_profile_whose_regions_cannot_be_read_is_refused_to_a_residency_key(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = _config(
        bedrock_emulator,
        {"vk-eu": {"allowed_regions": ["eu-*"]}, "vk-any": {}},
        model_discovery={"enabled": False},
    )
    gateway = serve_gateway(cfg)
    own_app = application_profile_arn("eu-west-1", EMULATOR_ACCOUNT_ID)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        await sdk.anthropic(gateway, "vk-eu").messages.create(model=own_app, max_tokens=8, messages=_user())  # type: ignore[arg-type]
    assert "GetInferenceProfile" in caught.value.message
    assert bedrock_emulator.log.entries == []
    reached, _ = await _reaches_bedrock(
        bedrock_emulator,
        sdk.anthropic(gateway, "vk-any").messages.create(model=own_app, max_tokens=8, messages=_user()),  # type: ignore[arg-type]
    )
    assert reached


# -- listings agree with the request path ----------------------------------------------------------
LISTING_KEYS: dict[str, dict[str, Any]] = {
    "vk-all": {},
    "vk-all-us": {"default_region": "us-east-1"},
    "vk-eu": {"allowed_regions": ["eu-*"]},
    "vk-dublin": {"allowed_regions": ["eu-west-1"]},
    "vk-us": {"allowed_regions": ["us-*"]},
    "vk-nowhere": {"allowed_regions": ["sa-*"]},
    "vk-haiku": {"allowed_models": ["*claude-haiku-4-5*"]},
    "vk-mixed": {
        "allowed_models": ["anthropic.claude-sonnet-*", "claude-opus-*", "eu.*"],
        "allowed_regions": ["eu-*", "us-east-1"],
    },
    "vk-aliased": {
        "allowed_models": ["fast", "claude-opus-5-5"],
        "model_aliases": {
            "fast": "amazon.nova-pro-v1:0",
            "us-fast": "bedrock/us-east-1/amazon.nova-pro-v1:0",
        },
        "allowed_regions": ["eu-*"],
    },
}


async def _model_reaches_bedrock(emu: BedrockEmulator, http: httpx.AsyncClient, key: str, model: str) -> bool:
    body = {"model": model, "max_tokens": 1, "messages": _user()}
    reached, response = await _reaches_bedrock(
        emu, http.post("/v1/messages", json=body, headers={"x-api-key": key})
    )
    assert reached or response.status_code in (403, 404), (key, model, response.text)
    return bool(reached)


async def _profile_reaches_bedrock(
    emu: BedrockEmulator, http: httpx.AsyncClient, key: str, model: str
) -> bool:
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}], "inferenceConfig": {"maxTokens": 1}}
    call = http.post(
        f"/bedrock/model/{quote(model, safe='')}/converse",
        json=body,
        headers={"authorization": f"Bearer {key}"},
    )
    reached, response = await _reaches_bedrock(emu, call)
    assert reached or response.status_code in (403, 404), (key, model, response.text)
    return bool(reached)


async def _listed_models(http: httpx.AsyncClient, key: str) -> list[str]:
    response = await http.get("/v1/models", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["data"]]


async def _listed_profiles(http: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    response = await http.get("/bedrock/inference-profiles", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    summaries: list[dict[str, Any]] = response.json()["inferenceProfileSummaries"]
    response = await http.get(
        "/bedrock/inference-profiles",
        params={"type": "APPLICATION"},
        headers={"authorization": f"Bearer {key}"},
    )
    applications: list[dict[str, Any]] = response.json()["inferenceProfileSummaries"]
    return summaries + applications


async def test_v1_models_lists_exactly_the_names_each_key_can_call(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(_config(bedrock_emulator, LISTING_KEYS))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        # Everything the account offers under a name (catalogue and control plane), plus every alias.
        universe = set(await _listed_models(http, "vk-all")) | {"fast", "us-fast"}
        assert {"claude-haiku-4-5", "claude-opus-5-5", "claude-sonnet-5"} <= universe
        refused_somewhere = 0
        for key in LISTING_KEYS:
            listed = set(await _listed_models(http, key))
            assert listed <= universe
            for name in sorted(universe):
                callable_ = await _model_reaches_bedrock(bedrock_emulator, http, key, name)
                assert callable_ is (name in listed), (key, name, callable_)
                refused_somewhere += not callable_
        assert refused_somewhere > 0  # the keys' lists do restrict something


async def test_list_inference_profiles_lists_exactly_the_profiles_each_key_can_call_by_id_and_arn(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(_config(bedrock_emulator, LISTING_KEYS))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        # ListInferenceProfiles answers for one region, as Bedrock's does: the region a key's requests
        # are served from (vk-us's from its fallback, the first its allowed_regions admit). Over what an
        # unrestricted key sees from that region, a key lists exactly the profiles it can call.
        views = {
            region: {s["inferenceProfileArn"]: s for s in await _listed_profiles(http, unrestricted)}
            for region, unrestricted in (("eu-west-1", "vk-all"), ("us-east-1", "vk-all-us"))
        }
        for view in views.values():
            assert {s["type"] for s in view.values()} == {"SYSTEM_DEFINED", "APPLICATION"}
        for key in LISTING_KEYS:
            region = "us-east-1" if key in ("vk-us", "vk-all-us") else "eu-west-1"
            universe = views[region]
            listed = {s["inferenceProfileArn"] for s in await _listed_profiles(http, key)}
            assert listed <= set(universe)
            assert all(f":{region}:" in arn for arn in listed)
            # vk-nowhere reaches no region; vk-aliased allows names only, and profiles are ids.
            assert bool(listed) is (key not in ("vk-nowhere", "vk-aliased")), key
            for arn, summary in sorted(universe.items()):
                ids = [arn] if summary["type"] == "APPLICATION" else [arn, summary["inferenceProfileId"]]
                callable_ = [
                    await _profile_reaches_bedrock(bedrock_emulator, http, key, model) for model in ids
                ]
                assert all(callable_) is (arn in listed), (key, arn, callable_)

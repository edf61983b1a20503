"""Model discovery: reading account listings, matching names, caching with a TTL, falling back on failure."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bedrock_mw.config import GatewayConfig, ProviderConfig, VirtualKeyConfig
from bedrock_mw.dispatch import AccountListing, UpstreamError
from bedrock_mw.routing.discovery import AccountModels, ModelDiscovery, api_names_of
from bedrock_mw.routing.model_ids import Catalogue, convention_id, is_claude_name, resolve_model
from bedrock_mw.stores import StaticAliasStore

pytestmark = pytest.mark.anyio

PROVIDER = ProviderConfig.model_validate(
    {"id": "p", "region": "us-east-1", "auth": {"mode": "api_key", "api_key": "k"}}
)
KEY = VirtualKeyConfig(id="k", key="vk", providers=["p"])
APP_ARN = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc123"


def listing() -> AccountListing:
    def fm(model_id: str, status: str = "ACTIVE") -> dict[str, Any]:
        return {"modelId": model_id, "modelLifecycle": {"status": status}}

    def sp(profile_id: str) -> dict[str, Any]:
        return {"inferenceProfileId": profile_id}

    return AccountListing(
        foundation_models=[
            fm("anthropic.claude-sonnet-5-20261015-v1:0"),
            fm("anthropic.claude-sonnet-5-20260601-v1:0"),
            fm("anthropic.claude-opus-5-5"),
            fm("anthropic.claude-3-opus-20240229-v1:0", status="LEGACY"),
            fm("amazon.nova-pro-v1:0"),
        ],
        system_profiles=[sp("us.anthropic.claude-opus-5-5"), sp("global.anthropic.claude-haiku-5-5")],
        application_profiles=[
            {
                "inferenceProfileArn": APP_ARN,
                "models": [
                    {"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-5-5"}
                ],
            }
        ],
    )


def test_a_listing_becomes_offered_ids_profile_geographies_and_app_profiles() -> None:
    account = AccountModels.from_listing(listing())
    assert "anthropic.claude-3-opus-20240229-v1:0" not in account.base_ids  # not ACTIVE
    assert "anthropic.claude-haiku-5-5" in account.base_ids  # offered through a profile only
    assert account.profile_geos["anthropic.claude-opus-5-5"] == {"us"}
    assert account.app_profiles == {APP_ARN: "anthropic.claude-opus-5-5"}


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("claude-sonnet-5", "anthropic.claude-sonnet-5-20261015-v1:0"),  # the newest dated version
        ("claude-sonnet-5-20260601", "anthropic.claude-sonnet-5-20260601-v1:0"),
        ("claude-opus-5-5", "anthropic.claude-opus-5-5"),
        ("claude-opus-5", None),  # "claude-opus-5-5" is another model, not a version of it
        ("claude-haiku-5-5", "anthropic.claude-haiku-5-5"),
        ("claude-mythos-5", None),
    ],
)
def test_a_claude_name_matches_what_the_account_offers(name: str, base: str | None) -> None:
    assert AccountModels.from_listing(listing()).model_for_name(name) == base


def test_offered_claude_models_get_their_anthropic_names() -> None:
    assert api_names_of("anthropic.claude-sonnet-5-20261015-v1:0") == [
        "claude-sonnet-5-20261015",
        "claude-sonnet-5",
    ]
    assert api_names_of("anthropic.claude-opus-5-5") == ["claude-opus-5-5"]
    assert api_names_of("amazon.nova-pro-v1:0") == []
    names = AccountModels.from_listing(listing()).names()
    assert names.index("claude-sonnet-5") < names.index("claude-sonnet-5-20260601")


@pytest.mark.parametrize(
    ("name", "claude"), [("claude-opus-5-5", True), ("claude-x", True), ("gpt-4o", False), ("claude", False)]
)
def test_claude_names_and_the_id_convention(name: str, claude: bool) -> None:
    assert is_claude_name(name) is claude
    if claude:
        assert convention_id(name) == f"anthropic.{name}"


class Finder:
    def __init__(self, names: dict[str, str], arns: dict[str, str]) -> None:
        self.names, self.arns = names, arns
        self.asked: list[tuple[str, str | None]] = []

    async def model_for_name(self, name: str, region: str | None) -> str | None:
        self.asked.append((name, region))
        return self.names.get(name)

    async def model_behind(self, arn: str, region: str) -> str | None:
        return self.arns.get(arn)

    async def regions_behind(self, arn: str, region: str) -> frozenset[str] | None:
        return None


async def test_resolution_order_is_catalogue_then_account_then_convention() -> None:
    finder = Finder(
        {"claude-sonnet-5": "anthropic.claude-sonnet-5-20261015-v1:0"}, {APP_ARN: "anthropic.claude-opus-5-5"}
    )
    catalogue, aliases = Catalogue(), StaticAliasStore()
    known = await resolve_model("claude-haiku-4-5", KEY, aliases, catalogue, finder)
    offered = await resolve_model("claude-sonnet-5", KEY, aliases, catalogue, finder)
    guessed = await resolve_model("bedrock/eu-west-1/claude-opus-9", KEY, aliases, catalogue, finder)
    app = await resolve_model(APP_ARN, KEY, aliases, catalogue, finder)
    assert known.base_model_id == "anthropic.claude-haiku-4-5-20251001-v1:0"
    assert (offered.base_model_id, offered.requested) == (
        "anthropic.claude-sonnet-5-20261015-v1:0",
        "claude-sonnet-5",
    )
    assert (guessed.base_model_id, guessed.region) == ("anthropic.claude-opus-9", "eu-west-1")
    assert finder.asked == [("claude-sonnet-5", None), ("claude-opus-9", "eu-west-1")]
    assert app.base_model_id == "anthropic.claude-opus-5-5" and app.family.name == "anthropic-claude"


async def test_arn_models_overrides_what_the_account_says() -> None:
    finder = Finder({}, {APP_ARN: "anthropic.claude-opus-5-5"})
    catalogue = Catalogue(arn_models={APP_ARN: "anthropic.claude-haiku-4-5-20251001-v1:0"})
    ref = await resolve_model(APP_ARN, KEY, StaticAliasStore(), catalogue, finder)
    assert ref.base_model_id == "anthropic.claude-haiku-4-5-20251001-v1:0"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_listings_are_cached_for_the_ttl_then_refreshed_in_the_background() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def list_models(provider: ProviderConfig, region: str) -> AccountListing:
        calls.append(region)
        if len(calls) > 1:
            await release.wait()
        return listing()

    clock = Clock()
    discovery = ModelDiscovery(ttl_s=60, list_models=list_models, clock=clock)
    first = await discovery.account(PROVIDER, "us-east-1")
    again = await discovery.account(PROVIDER, "us-east-1")
    assert first is again is not None and calls == ["us-east-1"]
    clock.now = 61
    stale = await discovery.account(PROVIDER, "us-east-1")  # served at once while the refresh waits
    await asyncio.sleep(0)
    assert stale is first and len(calls) == 2
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    fresh = await discovery.account(PROVIDER, "us-east-1")
    assert fresh is not None and fresh is not first
    await discovery.aclose()


async def test_a_failed_listing_falls_back_and_logs_a_hint_once(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def denied(provider: ProviderConfig, region: str) -> AccountListing:
        nonlocal calls
        calls += 1
        raise UpstreamError("AccessDeniedException", "not allowed", 403, "ListInferenceProfiles")

    discovery = ModelDiscovery(list_models=denied)
    with caplog.at_level(logging.WARNING, logger="bedrock_mw"):
        assert await discovery.account(PROVIDER, "us-east-1") is None
        assert await discovery.account(PROVIDER, "us-east-1") is None
    assert calls == 1
    (hint,) = [r.getMessage() for r in caplog.records]
    assert "AccessDeniedException" in hint and "bedrock:ListInferenceProfiles" in hint


async def test_a_slow_first_listing_is_not_waited_for_beyond_wait_s() -> None:
    gate = asyncio.Event()

    async def slow(provider: ProviderConfig, region: str) -> AccountListing:
        await gate.wait()
        return listing()

    discovery = ModelDiscovery(wait_s=0, list_models=slow)
    assert await discovery.account(PROVIDER, "us-east-1") is None
    gate.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await discovery.account(PROVIDER, "us-east-1") is not None
    await discovery.aclose()


async def test_discovery_off_never_calls_the_control_plane() -> None:
    async def boom(provider: ProviderConfig, region: str) -> AccountListing:
        raise AssertionError("called")

    discovery = ModelDiscovery(enabled=False, list_models=boom)
    assert await discovery.account(PROVIDER, "us-east-1") is None
    assert await discovery.model_behind(PROVIDER, "us-east-1", APP_ARN) is None


def test_the_config_turns_discovery_off() -> None:
    config = GatewayConfig.model_validate({"model_discovery": {"enabled": False, "ttl_s": 60}})
    assert config.model_discovery.enabled is False

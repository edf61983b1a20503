"""What each provider's account offers, read from Bedrock's control plane, so any Claude name resolves.

Claude Code asks for its own default model (``claude-opus-5-5``) before any gateway release knows it.
Resolution tries the catalogue first; a ``claude-...`` name it lacks is looked up in what the account
offers (``ListFoundationModels`` and ``ListInferenceProfiles``), and an application-profile ARN with no
``arn_models`` entry in ``GetInferenceProfile``'s answer. Listings are cached per provider and region
for ``ttl_s``; a stale entry is served while one background task refreshes it. Only a first-ever
lookup waits, and at most ``wait_s``. A failure (no permission, no network) is cached for a shorter
time, logged once with a hint, and resolution falls back to the catalogue and the id convention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import ProviderConfig
from ..dispatch import AccountListing, UpstreamError, get_inference_profile, list_account_models
from .model_ids import GEOS, convention_id, is_claude_name

if TYPE_CHECKING:
    from mypy_boto3_bedrock.type_defs import FoundationModelSummaryTypeDef, GetInferenceProfileResponseTypeDef

__all__ = ["AccountModels", "ModelDiscovery", "api_names_of", "convention_id", "is_claude_name"]

log = logging.getLogger("bedrock_mw")
T = TypeVar("T")

_SUFFIX = r"(?:-\d{8})?(?:-v\d+(?::\d+)?)?"
_DATED_OR_VERSIONED = re.compile(r"(?:-\d{8})?(?:-v\d+(?::\d+)?)?$")
_VERSION_ONLY = re.compile(r"-v\d+(?::\d+)?$")
FAILURE_TTL_S = 300.0
_HINT = (
    "model discovery for provider %r in %s failed (%s); names the catalogue lacks resolve by the id "
    "convention. Grant bedrock:ListFoundationModels, bedrock:ListInferenceProfiles and "
    "bedrock:GetInferenceProfile, or configure model_catalogue / arn_models"
)


def api_names_of(base_id: str) -> list[str]:
    """Anthropic names for a Claude base id: ``anthropic.claude-x-5-20261015-v1:0`` → dated, then short."""
    if not base_id.startswith("anthropic.claude-"):
        return []
    bare = base_id.removeprefix("anthropic.")
    dated = _VERSION_ONLY.sub("", bare)
    short = _DATED_OR_VERSIONED.sub("", bare)
    return list(dict.fromkeys((dated, short)))


def _active(model: FoundationModelSummaryTypeDef) -> bool:
    lifecycle: Mapping[str, object] = model.get("modelLifecycle") or {}
    return lifecycle.get("status", "ACTIVE") == "ACTIVE"


def _model_of(arn: str) -> str | None:
    resource = arn.rpartition("/")[2] if arn.startswith("arn:") else arn
    return resource or None


def _regions_of(profile: Mapping[str, Any]) -> frozenset[str] | None:
    """The regions a profile sends requests to: those of its models' ARNs (one ARN per region)."""
    regions = set()
    for model in profile.get("models") or []:
        parts = str(model.get("modelArn") or "").split(":")
        if len(parts) < 6 or parts[0] != "arn" or not parts[3]:
            return None  # a model the gateway cannot place: the profile's reach is unknown
        regions.add(parts[3])
    return frozenset(regions) or None


@dataclass(frozen=True, slots=True)
class AccountModels:
    """What one account offers in one region: foundation models, their profile geographies, app profiles."""

    base_ids: frozenset[str] = frozenset()
    profile_geos: Mapping[str, frozenset[str]] = field(default_factory=dict)
    app_profiles: Mapping[str, str] = field(default_factory=dict)
    # Application profile ARN -> the regions it sends requests to (its models' regions).
    app_regions: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_listing(cls, listing: AccountListing) -> AccountModels:
        """Read botocore's parsed listings (inactive models and malformed entries are skipped)."""
        base_ids = {
            str(m["modelId"])
            for m in listing.foundation_models
            if isinstance(m.get("modelId"), str) and _active(m)
        }
        geos: dict[str, set[str]] = {}
        for profile in listing.system_profiles:
            geo, _, base = str(profile.get("inferenceProfileId") or "").partition(".")
            if geo in GEOS and base:
                geos.setdefault(base, set()).add(geo)
                base_ids.add(base)
        apps: dict[str, str] = {}
        app_regions: dict[str, frozenset[str]] = {}
        for profile in listing.application_profiles:
            models = [_model_of(str(m.get("modelArn") or "")) for m in profile.get("models") or []]
            arn = profile.get("inferenceProfileArn")
            if isinstance(arn, str) and models and models[0]:
                apps[arn] = models[0]
                regions = _regions_of(profile)
                if regions is not None:
                    app_regions[arn] = regions
        return cls(frozenset(base_ids), {k: frozenset(v) for k, v in geos.items()}, apps, app_regions)

    def model_for_name(self, name: str) -> str | None:
        """The base id an Anthropic-style name means here (the newest, when dated versions differ)."""
        pattern = re.compile(r"^anthropic\." + re.escape(name.replace(".", "-")) + _SUFFIX + "$")
        matches = sorted(base for base in self.base_ids if pattern.match(base))
        return matches[-1] if matches else None

    def names(self) -> list[str]:
        """Anthropic names of every Claude model offered, newest ids first."""
        out: dict[str, None] = {}
        for base in sorted(self.base_ids, reverse=True):
            for name in api_names_of(base):
                out.setdefault(name, None)
        return list(out)


@dataclass(slots=True)
class _Entry:
    expires: float
    value: Any


class ModelDiscovery:
    """Cached control-plane listings per (provider, region); refreshed off the request path."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        ttl_s: float = 3600.0,
        wait_s: float = 3.0,
        list_models: Callable[[ProviderConfig, str], Awaitable[AccountListing]] = list_account_models,
        get_profile: Callable[
            [ProviderConfig, str, str], Awaitable[GetInferenceProfileResponseTypeDef]
        ] = get_inference_profile,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self._ttl_s = ttl_s
        self._wait_s = wait_s
        self._list_models = list_models
        self._get_profile = get_profile
        self._clock = clock
        self._entries: dict[tuple[str, ...], _Entry] = {}
        self._tasks: dict[tuple[str, ...], asyncio.Task[Any]] = {}

    async def account(self, provider: ProviderConfig, region: str) -> AccountModels | None:
        """The account's offer in ``region``, or ``None`` when unknown (discovery off, failed, too slow)."""
        if not self.enabled:
            return None
        value: AccountModels | None = await self._cached(
            ("account", provider.id, region), lambda: self._load_account(provider, region)
        )
        return value

    async def model_behind(self, provider: ProviderConfig, region: str, arn: str) -> str | None:
        """The base model an application-profile ARN serves, from the listing or GetInferenceProfile."""
        account = await self.account(provider, region)
        if account is not None and arn in account.app_profiles:
            return account.app_profiles[arn]
        target = await self._profile(provider, region, arn)
        return target[0] if target is not None else None

    async def regions_behind(self, provider: ProviderConfig, region: str, arn: str) -> frozenset[str] | None:
        """The regions an application-profile ARN sends requests to (listing, else GetInferenceProfile)."""
        account = await self.account(provider, region)
        if account is not None and arn in account.app_regions:
            return account.app_regions[arn]
        target = await self._profile(provider, region, arn)
        return target[1] if target is not None else None

    async def _profile(
        self, provider: ProviderConfig, region: str, arn: str
    ) -> tuple[str | None, frozenset[str] | None] | None:
        if not self.enabled:
            return None
        value: tuple[str | None, frozenset[str] | None] | None = await self._cached(
            ("profile", provider.id, region, arn), lambda: self._load_profile(provider, region, arn)
        )
        return value

    async def _load_account(self, provider: ProviderConfig, region: str) -> AccountModels | None:
        try:
            return AccountModels.from_listing(await self._list_models(provider, region))
        except UpstreamError as err:
            log.warning(_HINT, provider.id, region, err.code)
            return None

    async def _load_profile(
        self, provider: ProviderConfig, region: str, arn: str
    ) -> tuple[str | None, frozenset[str] | None] | None:
        try:
            profile = await self._get_profile(provider, region, arn)
        except UpstreamError as err:
            log.warning(_HINT, provider.id, region, err.code)
            return None
        models = [_model_of(str(m.get("modelArn") or "")) for m in profile.get("models") or []]
        return (models[0] if models else None), _regions_of(profile)

    async def _cached(self, key: tuple[str, ...], load: Callable[[], Awaitable[T | None]]) -> T | None:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry.expires > now:
            cached: T | None = entry.value
            return cached
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(self._refresh(key, load))
            self._tasks[key] = task
        if entry is not None:
            stale: T | None = entry.value  # served while the refresh runs in the background
            return stale
        try:
            fresh: T | None = await asyncio.wait_for(asyncio.shield(task), self._wait_s)
            return fresh
        except TimeoutError:
            return None

    async def _refresh(self, key: tuple[str, ...], load: Callable[[], Awaitable[T | None]]) -> T | None:
        try:
            value = await load()
            ttl = self._ttl_s if value is not None else min(self._ttl_s, FAILURE_TTL_S)
            self._entries[key] = _Entry(self._clock() + ttl, value)
            return value
        finally:
            self._tasks.pop(key, None)

    def invalidate(self) -> None:
        """Forget every listing (the next lookup fetches again)."""
        self._entries.clear()

    async def aclose(self) -> None:
        """Cancel refreshes still running (the app's shutdown)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


def offered_names(accounts: Iterable[AccountModels]) -> list[str]:
    """Every Anthropic name offered by any of ``accounts``, in order."""
    out: dict[str, None] = {}
    for account in accounts:
        for name in account.names():
            out.setdefault(name, None)
    return list(out)

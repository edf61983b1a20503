"""The fallback plan: which provider, region and model id each attempt uses, and when to fall over.

Pure: :func:`plan_route` takes a resolved :class:`ModelRef`, the key and its providers (in the key's
order, already fetched) and returns the attempts to make in order, with a note for each provider
left out. The rules are in docs/routing.md; in short:

* region: the region in the model id or ARN, for every attempt; else, for the first provider, the
  key's ``default_region`` or that provider's ``region``; for each fallback, its own ``region``;
* a provider's ``inference_profile_arn`` serves requests for the profile's model;
* a model Bedrock only serves through inference profiles is sent as the profile of the attempt's
  region's geography (``global.`` where that geography has none);
* a geo profile landing in another geography is rewritten to that geography's profile, or the
  attempt is skipped when the model is not offered there;
* an attempt outside the key's ``allowed_regions`` (wherever its id lets Bedrock run it) or sending
  an ARN of another account than its provider's is skipped (:mod:`.residency`); a 403 when that
  leaves none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..config import ProviderConfig, VirtualKeyConfig
from ..errors import ErrorKind, GatewayError
from .catalogue import known_model
from .model_ids import OPAQUE_ARN_KINDS, ModelRef, geo_serves, parse_model_id, region_geographies
from .residency import foreign_account, outside_regions, reach_of

__all__ = ["Attempt", "RoutePlan", "is_retryable", "plan_route", "profile_id_for"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to make: this provider's credentials, in this region, for this model id."""

    provider: ProviderConfig
    region: str
    model_id: str


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """The attempts for a request in order, and notes on providers left out and why."""

    model: ModelRef
    attempts: tuple[Attempt, ...]
    skipped: tuple[str, ...]


def _offers(base_model_id: str, geo: str) -> bool:
    # A model missing from the catalogue table is assumed offered everywhere: Bedrock then decides.
    known = known_model(base_model_id)
    return known is None or geo in known.profile_geos


def _geo_profile(base_model_id: str, region: str) -> str | None:
    """The geography (not ``global``) whose profile of the model ``region`` can call, if any."""
    for geo in region_geographies(region):
        if _offers(base_model_id, geo):
            return geo
    return None


def profile_id_for(base_model_id: str, region: str) -> str:
    """The inference-profile id to call ``base_model_id`` with from ``region``.

    The region's geography profile the model is offered in (``us.`` for us-* and ca-*, ``eu.``,
    ``apac.`` or, for models offered only there, ``jp.``/``au.``, ``us-gov.``); else ``global.``.
    A model the catalogue does not know is assumed offered in the region's general geography.
    """
    geo = _geo_profile(base_model_id, region)
    if geo is None:
        geos = region_geographies(region)
        serves_global = geo_serves("global", region) and _offers(base_model_id, "global")
        geo = "global" if serves_global or not geos else geos[0]
    return f"{geo}.{base_model_id}"


@lru_cache(maxsize=256)
def _provider_profile(arn: str) -> ModelRef | None:
    try:
        ref = parse_model_id(arn)
    except GatewayError:
        return None
    # An application profile's ARN does not say which model it serves, so it cannot be matched.
    return ref if ref.kind == "inference-profile-arn" else None


def _profile_attempt(ref: ModelRef, provider: ProviderConfig) -> Attempt | None:
    """The attempt through the provider's own cross-region profile, when it serves this model."""
    if provider.inference_profile_arn is None or ref.kind not in ("foundation", "inference-profile"):
        return None
    profile = _provider_profile(provider.inference_profile_arn)
    if profile is None or profile.base_model_id != ref.base_model_id or profile.region is None:
        return None
    if ref.region is not None and ref.region != profile.region:
        return None
    if ref.geo is not None and ref.geo != profile.geo:
        return None
    return Attempt(provider, profile.region, provider.inference_profile_arn)


def _model_id_at(ref: ModelRef, region: str, fallback: bool) -> tuple[str | None, str]:
    """The id to send from ``region``, or ``(None, why)`` when the model is not offered there."""
    base = ref.base_model_id
    if ref.kind == "inference-profile-arn" and (fallback or "::" in ref.model_id):
        # The ARN names the first account's copy of a system profile; the profile id is the same
        # profile in whichever account the fallback provider belongs to. An ARN with no account
        # (what the gateway's own ListInferenceProfiles lists) means the same: the provider's copy.
        return f"{ref.geo}.{base}", ""
    if ref.kind in ("foundation-arn", "inference-profile-arn") or ref.kind in OPAQUE_ARN_KINDS:
        return ref.model_id, ""
    if ref.kind == "inference-profile":
        assert ref.geo is not None  # parse_model_id sets geo for every profile id
        if geo_serves(ref.geo, region):
            return ref.model_id, ""
        geo = _geo_profile(base, region)
        if geo is None:
            return None, f"{ref.model_id} has no inference profile in the geography of {region}"
        return f"{geo}.{base}", ""
    if not ref.family.needs_inference_profile:
        return ref.model_id, ""
    geo = _geo_profile(base, region)
    if geo is not None:
        return f"{geo}.{base}", ""
    if geo_serves("global", region) and _offers(base, "global"):
        return f"global.{base}", ""
    return None, f"{base} needs an inference profile and has none that {region} can call"


def _sent(ref: ModelRef, attempt: Attempt) -> ModelRef | None:
    """The parsed identity of the id ``attempt`` sends (``ref`` itself unless routing rewrote it)."""
    return ref if attempt.model_id == ref.model_id else _parsed(attempt.model_id)


@lru_cache(maxsize=1024)
def _parsed(model_id: str) -> ModelRef | None:
    try:
        return parse_model_id(model_id)
    except GatewayError:
        return None


def _refused(key: VirtualKeyConfig, ref: ModelRef, attempt: Attempt) -> tuple[str, str] | None:
    """Why ``attempt`` may not be made (``("regions" | "account", why)``), or ``None`` when it may.

    Data residency (the key's ``allowed_regions``: the region called and wherever the id sent lets
    Bedrock run it) and the account boundary (an ARN of another account than the provider's, when
    the config says which account that is). The rules are in :mod:`.residency`.
    """
    sent = _sent(ref, attempt)
    if sent is not None:
        why = foreign_account(sent, attempt.provider)
        if why is not None:
            return "account", why
    if key.allowed_regions is None:
        return None
    if sent is None:
        return "regions", f"{attempt.model_id} could not be placed in a region"
    why = outside_regions(key.allowed_regions, reach_of(sent, attempt.region))
    return None if why is None else ("regions", why)


def _refusal(key: VirtualKeyConfig, ref: ModelRef, refused: list[tuple[str, str]]) -> GatewayError:
    reasons = {kind for kind, _ in refused}
    notes = "; ".join(note for _, note in refused)
    if "regions" in reasons:
        head = (
            f"virtual key {key.id!r} may only reach Bedrock in {', '.join(key.allowed_regions or [])} "
            f"(allowed_regions) and model {ref.requested!r} would leave them"
        )
    else:
        head = f"model {ref.requested!r} names another AWS account than the key's providers call Bedrock as"
    return GatewayError(ErrorKind.PERMISSION, f"{head}: {notes}", param="model")


def plan_route(ref: ModelRef, key: VirtualKeyConfig, providers: Sequence[ProviderConfig]) -> RoutePlan:
    """The attempts to make for ``ref`` with ``key``'s providers (in the key's order).

    ``attempts`` is empty when no provider can serve the model (every one is in ``skipped``, or
    there are none); the caller turns that into its error.
    """
    if ref.geo is not None and ref.region is not None and not geo_serves(ref.geo, ref.region):
        raise GatewayError(
            ErrorKind.INVALID_REQUEST,
            f"model {ref.requested!r} is a '{ref.geo}.' inference profile, which does not serve region "
            f"'{ref.region}'; use {profile_id_for(ref.base_model_id, ref.region)!r} there, "
            f"or a region in '{ref.geo}'",
            param="model",
        )
    attempts: list[Attempt] = []
    skipped: list[str] = []
    refused: list[tuple[str, str]] = []
    geo_mismatch: str | None = None

    def add(attempt: Attempt) -> None:
        why = _refused(key, ref, attempt)
        if why is None:
            attempts.append(attempt)
            return
        note = f"provider {attempt.provider.id!r} ({attempt.region}): {why[1]}"
        skipped.append(note)
        refused.append((why[0], note))

    for index, provider in enumerate(providers):
        through_profile = _profile_attempt(ref, provider)
        if through_profile is not None:
            add(through_profile)
            continue
        region = ref.region or (key.default_region if index == 0 else None) or provider.region
        if index == 0 and ref.geo is not None and ref.region is None and not geo_serves(ref.geo, region):
            # The caller chose a geography (often for data residency): the primary is not moved out
            # of it; fallbacks may still be, as they exist to reach other regions.
            skipped.append(
                f"provider {provider.id!r} ({region}): a '{ref.geo}.' profile is not served from {region}"
            )
            geo_mismatch = region
            continue
        model_id, why = _model_id_at(ref, region, fallback=index > 0)
        if model_id is None:
            skipped.append(f"provider {provider.id!r} ({region}): {why}")
            continue
        add(Attempt(provider, region, model_id))
    if not attempts and refused:
        raise _refusal(key, ref, refused)
    if not attempts and geo_mismatch is not None and ref.geo is not None:
        raise GatewayError(
            ErrorKind.INVALID_REQUEST,
            f"model {ref.requested!r} is a '{ref.geo}.' inference profile, but this key's requests go "
            f"to {geo_mismatch!r}; use {profile_id_for(ref.base_model_id, geo_mismatch)!r} there, or pin "
            f"a region in the profile's geography with 'bedrock/<region>/{ref.model_id}' "
            "(or the key's default_region)",
            param="model",
        )
    return RoutePlan(ref, tuple(attempts), tuple(skipped))


# Error codes decide before the status: Bedrock reports some quota errors as 400.
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceQuotaExceededException",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalServerException",
        "InternalFailure",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "ModelTimeout",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "IncompleteSignature",
        "ResourceNotFoundException",
        "ConnectTimeoutError",
        "ConnectionError",
        "EndpointConnectionError",
        "ReadTimeoutError",
        "Timeout",
        "CredentialsError",
    }
)
_FINAL_CODES = frozenset(
    {
        "ValidationException",
        "ModelErrorException",
        "ModelStreamErrorException",
        "ConflictException",
    }
)
_RETRYABLE_STATUSES = frozenset({0, 401, 403, 404, 408, 429})


def is_retryable(status: int, error_code: str | None) -> bool:
    """Whether a failure *before the first byte* should fall over to the next attempt.

    Yes for throttling, 5xx, model-not-ready/timeouts, connection failures (``status`` 0) and for
    this provider's credentials or access being refused (401/403, another account may work) or the
    model being absent there (404); no for a request Bedrock judged invalid (400 ValidationException,
    413, 422, 424 ModelErrorException): every provider would refuse it the same way.
    """
    if error_code:
        code = error_code.rpartition("#")[2].partition(":")[0]
        if code in _RETRYABLE_CODES:
            return True
        if code in _FINAL_CODES:
            return False
    return status in _RETRYABLE_STATUSES or status >= 500

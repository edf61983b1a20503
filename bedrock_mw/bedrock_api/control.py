"""The one control-plane call Bedrock-native clients make first: ``ListInferenceProfiles``.

Claude Code in Bedrock mode lists inference profiles to learn which Claude models it can call. The
gateway answers from what the key may use: of the system-defined profiles the key's primary region
can call for the models the primary provider's account offers (control-plane discovery; the built-in
catalogue when discovery is off or fails), and of the account's application profiles and those the
config names in ``arn_models``, those the request path would serve with this key (the same decision,
:func:`routing.access.callable_plan`, on both the profile id and its ARN), in the control plane's
response shape (botocore's ``bedrock`` model). The system profiles' ARNs carry no account (the
gateway does not know which account serves a request until it routes it); sent back as a model id,
such an ARN is routed as its profile id in whichever provider serves the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from ..config import VirtualKeyConfig
from ..errors import invalid
from ..gateway import Gateway, RequestContext
from ..http import json_response
from ..routing.access import callable_plan, listing_origin
from ..routing.catalogue import KNOWN_MODELS
from ..routing.discovery import AccountModels, api_names_of
from ..routing.model_ids import geo_serves
from ..stores import resolve_alias_store
from .auth import authenticate_bedrock_caller

_CREATED = "2024-01-01T00:00:00Z"
_GEO_NAMES = {
    "us": "US",
    "eu": "EU",
    "apac": "APAC",
    "jp": "JP",
    "au": "AU",
    "ca": "CA",
    "us-gov": "US-GOV",
    "global": "Global",
}
_MAX_RESULTS = 1000


def profile_summary(model_id: str, name: str, geo: str, region: str) -> dict[str, Any]:
    """One ``InferenceProfileSummary`` for the ``geo.`` profile of ``model_id`` as seen from ``region``."""
    profile_id = f"{geo}.{model_id}"
    return {
        "inferenceProfileName": f"{_GEO_NAMES.get(geo, geo.upper())} {name}",
        "description": f"Routes requests to {name} through the gateway",
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "inferenceProfileArn": f"arn:aws:bedrock:{region}::inference-profile/{profile_id}",
        "models": [{"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}"}],
        "inferenceProfileId": profile_id,
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }


def list_profiles(region: str) -> list[dict[str, Any]]:
    """From the built-in catalogue: the system profiles ``region`` can call, newest first."""
    offer = [(m.bedrock_id, list(m.api_names), m.profile_geos) for m in KNOWN_MODELS]
    return _system_summaries(region, offer)


def account_profiles(region: str, account: AccountModels) -> list[dict[str, Any]]:
    """From what the account offers (control-plane discovery): the system profiles ``region`` can call."""
    offer = [
        (base, api_names_of(base), account.profile_geos.get(base, frozenset()))
        for base in sorted(account.base_ids, reverse=True)
    ]
    return _system_summaries(region, offer)


def _system_summaries(
    region: str, offer: list[tuple[str, list[str], frozenset[str]]]
) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = []
    for model_id, names, geos in offer:
        for geo in sorted(geos):
            if geo_serves(geo, region):
                summaries.append(profile_summary(model_id, names[0] if names else model_id, geo, region))
    return summaries


def _page_bounds(ctx: RequestContext, total: int) -> tuple[int, int]:
    params = ctx.request.query_params
    raw_max, raw_token = params.get("maxResults"), params.get("nextToken")
    size = _MAX_RESULTS
    if raw_max is not None:
        if not raw_max.isdigit() or not 1 <= int(raw_max) <= _MAX_RESULTS:
            raise invalid(f"maxResults must be an integer from 1 to {_MAX_RESULTS}", "maxResults")
        size = int(raw_max)
    start = 0
    if raw_token is not None:
        if not raw_token.isdigit() or int(raw_token) > total:
            raise invalid("nextToken is not one this gateway gave out", "nextToken")
        start = int(raw_token)
    return start, size


def application_profiles(arn_models: Mapping[str, str]) -> list[dict[str, Any]]:
    """The application inference profiles among ``arn_models`` (ARN → model), as summaries."""
    summaries: list[dict[str, Any]] = []
    for arn, model in arn_models.items():
        head, _, profile_id = arn.partition(":application-inference-profile/")
        if not profile_id:
            continue
        region = head.split(":")[3]
        summaries.append(
            {
                "inferenceProfileName": profile_id,
                "description": f"Application inference profile for {model}",
                "createdAt": _CREATED,
                "updatedAt": _CREATED,
                "inferenceProfileArn": arn,
                "models": [{"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model}"}],
                "inferenceProfileId": profile_id,
                "status": "ACTIVE",
                "type": "APPLICATION",
            }
        )
    return summaries


async def _callable_profiles(
    gw: Gateway, ctx: RequestContext, key: VirtualKeyConfig, wanted: str | None
) -> list[dict[str, Any]]:
    """The profiles the account offers (or the catalogue lists) in the key's region that it can call."""
    providers = await gw.providers_of(ctx)
    origin = listing_origin(key, providers)
    if origin is None:
        return []
    provider, region = origin
    # What that account offers, when discovery can say; else the built-in catalogue.
    account = await gw.discovery.account(provider, region)
    offered: list[dict[str, Any]] = []
    if wanted != "APPLICATION":
        offered += account_profiles(region, account) if account else list_profiles(region)
    if wanted != "SYSTEM_DEFINED":
        offered += application_profiles({**(account.app_profiles if account else {}), **gw.config.arn_models})
    aliases = await resolve_alias_store(gw.alias_source, ctx.request)
    finder = gw.finder(key, providers)

    async def callable_id(model: str) -> bool:
        return await callable_plan(model, key, aliases, gw.catalogue, finder, providers) is not None

    kept: list[dict[str, Any]] = []
    for summary in offered:
        ids = {summary["inferenceProfileArn"]}
        if summary["type"] == "SYSTEM_DEFINED":
            ids.add(summary["inferenceProfileId"])  # an application profile is called by its ARN
        if all([await callable_id(model) for model in sorted(ids)]):
            kept.append(summary)
    return kept


async def list_inference_profiles(gw: Gateway, ctx: RequestContext) -> Response:
    """``GET /inference-profiles`` (``ListInferenceProfiles``), paged as the control plane pages."""
    key = await authenticate_bedrock_caller(gw, ctx)
    wanted = ctx.request.query_params.get("type")
    if wanted not in (None, "SYSTEM_DEFINED", "APPLICATION"):
        raise invalid("type must be SYSTEM_DEFINED or APPLICATION", "type")
    summaries = await _callable_profiles(gw, ctx, key, wanted)
    start, size = _page_bounds(ctx, len(summaries))
    page: dict[str, Any] = {"inferenceProfileSummaries": summaries[start : start + size]}
    if start + size < len(summaries):
        page["nextToken"] = str(start + size)
    await gw.record(ctx, status=200)
    return json_response(page, headers=ctx.response_headers())

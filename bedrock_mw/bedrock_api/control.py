"""The one control-plane call Bedrock-native clients make first: ``ListInferenceProfiles``.

Claude Code in Bedrock mode lists inference profiles to learn which Claude models it can call. The
gateway answers from what the key may use: every known model its ``allowed_models`` admits, as the
system-defined profiles the key's primary region can call (its geography's and ``global.``), in
the control plane's response shape (botocore's ``bedrock`` model), plus the application profiles the
config names in ``arn_models``. The system profiles' ARNs carry no account (the gateway does not
know which account serves a request until it routes it); sent back as a model id, such an ARN is
routed as its profile id in whichever provider serves the call.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from starlette.responses import Response

from ..config import VirtualKeyConfig
from ..errors import invalid
from ..gateway import Gateway, RequestContext
from ..http import json_response
from ..routing.catalogue import KNOWN_MODELS, KnownModel
from ..routing.model_ids import geo_serves
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


def _allowed(key: VirtualKeyConfig, candidates: tuple[str, ...]) -> bool:
    patterns = key.allowed_models
    if patterns is None:
        return True
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in candidates)


async def _home_region(gw: Gateway, ctx: RequestContext, key: VirtualKeyConfig) -> str | None:
    if key.default_region is not None:
        return key.default_region
    assert ctx.credentials is not None
    for provider_id in key.providers:
        provider = await ctx.credentials.get_provider(provider_id)
        if provider is not None:
            return provider.region
    return None


def profile_summary(model: KnownModel, geo: str, region: str) -> dict[str, Any]:
    """One ``InferenceProfileSummary`` for the ``geo.`` profile of ``model`` as seen from ``region``."""
    profile_id = f"{geo}.{model.bedrock_id}"
    name = model.api_names[0] if model.api_names else model.bedrock_id
    return {
        "inferenceProfileName": f"{_GEO_NAMES.get(geo, geo.upper())} {name}",
        "description": f"Routes requests to {name} through the gateway",
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "inferenceProfileArn": f"arn:aws:bedrock:{region}::inference-profile/{profile_id}",
        "models": [{"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model.bedrock_id}"}],
        "inferenceProfileId": profile_id,
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }


def list_profiles(key: VirtualKeyConfig, region: str) -> list[dict[str, Any]]:
    """The system-defined profiles ``key`` may call from ``region``, newest model first."""
    summaries: list[dict[str, Any]] = []
    for model in KNOWN_MODELS:
        for geo in sorted(model.profile_geos):
            if not geo_serves(geo, region):
                continue
            profile_id = f"{geo}.{model.bedrock_id}"
            if _allowed(key, (profile_id, model.bedrock_id, *model.api_names)):
                summaries.append(profile_summary(model, geo, region))
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


def application_profiles(key: VirtualKeyConfig, arn_models: dict[str, str]) -> list[dict[str, Any]]:
    """The application inference profiles the config names (``arn_models``) that ``key`` may use."""
    summaries: list[dict[str, Any]] = []
    for arn, model in arn_models.items():
        head, _, profile_id = arn.partition(":application-inference-profile/")
        if not profile_id or not _allowed(key, (arn, model)):
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


async def list_inference_profiles(gw: Gateway, ctx: RequestContext) -> Response:
    """``GET /inference-profiles`` (``ListInferenceProfiles``), paged as the control plane pages."""
    key = await authenticate_bedrock_caller(gw, ctx)
    region = await _home_region(gw, ctx, key)
    wanted = ctx.request.query_params.get("type")
    if wanted not in (None, "SYSTEM_DEFINED", "APPLICATION"):
        raise invalid("type must be SYSTEM_DEFINED or APPLICATION", "type")
    summaries = list_profiles(key, region) if region and wanted != "APPLICATION" else []
    if wanted != "SYSTEM_DEFINED":
        summaries += application_profiles(key, gw.config.arn_models)
    start, size = _page_bounds(ctx, len(summaries))
    page: dict[str, Any] = {"inferenceProfileSummaries": summaries[start : start + size]}
    if start + size < len(summaries):
        page["nextToken"] = str(start + size)
    await gw.record(ctx, status=200)
    return json_response(page, headers=ctx.response_headers())

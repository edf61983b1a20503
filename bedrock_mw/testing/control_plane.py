"""Bedrock control-plane model listings: ListFoundationModels, ListInferenceProfiles, GetInferenceProfile.

REST paths and shapes as in botocore's ``bedrock`` service model (2023-04-20): ``GET /foundation-models``
(``byProvider``, ``byOutputModality``, ``byInferenceType``), ``GET /inference-profiles`` (``type``,
``maxResults``, ``nextToken``) and ``GET /inference-profiles/{inferenceProfileIdentifier}``. Calls are
signed like runtime calls (SigV4 service ``bedrock``, or a Bedrock API key). Answers come from the
table below, for the caller's region and account: a system-defined profile exists for each geography
that contains the region (and ``global``); one application profile per region stands for the model
the runtime serves behind opaque ARNs. Kept apart from the runtime so the two can change separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from starlette.types import Receive, Scope, Send

from .auth import authenticate
from .errors import BedrockError, validation_error
from .models import OPAQUE_ARN_MODEL, geo_contains
from .sigv4 import SignedRequest
from .state import EmulatorState

PATHS = ("/foundation-models", "/inference-profiles")
CREATED = "2026-01-01T00:00:00Z"
APPLICATION_PROFILE_ID = "emuapp0profile1"


_PROVIDERS = {"anthropic": "Anthropic", "amazon": "Amazon", "meta": "Meta"}


@dataclass(frozen=True)
class OfferedModel:
    """One foundation model the emulated account can use, and the profile geographies it has."""

    model_id: str
    name: str
    geo_names: str
    profile_only: bool = True
    output: str = "TEXT"

    @property
    def geos(self) -> tuple[str, ...]:
        return tuple(self.geo_names.split())

    @property
    def provider(self) -> str:
        return _PROVIDERS[self.model_id.partition(".")[0]]


# Includes models newer than any gateway catalogue: a dated id a name cannot be guessed into, and one
# with the new undated convention.
OFFERED: tuple[OfferedModel, ...] = (
    OfferedModel("anthropic.claude-sonnet-5-20261015-v1:0", "Claude Sonnet 5", "us eu global"),
    OfferedModel("anthropic.claude-opus-5-5", "Claude Opus 5.5", "us eu jp global"),
    OfferedModel("anthropic.claude-opus-4-7", "Claude Opus 4.7", "us eu jp au global"),
    OfferedModel("anthropic.claude-sonnet-4-6", "Claude Sonnet 4.6", "us eu jp au global"),
    OfferedModel("anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5", "us eu global"),
    OfferedModel("anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", "us eu global"),
    OfferedModel("anthropic.claude-3-5-haiku-20241022-v1:0", "Claude 3.5 Haiku", "us", profile_only=False),
    OfferedModel(
        "anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", "us eu apac", profile_only=False
    ),
    OfferedModel("amazon.nova-pro-v1:0", "Nova Pro", "us eu apac", profile_only=False),
    OfferedModel("amazon.nova-micro-v1:0", "Nova Micro", "us eu apac", profile_only=False),
    OfferedModel("amazon.titan-embed-text-v2:0", "Titan Text Embeddings V2", "", False, "EMBEDDING"),
    OfferedModel("meta.llama3-1-8b-instruct-v1:0", "Llama 3.1 8B Instruct", "us", profile_only=False),
)


def serves(scope: Scope) -> bool:
    """Whether a request is for the control plane's model listings."""
    path: str = scope["path"]
    return scope["method"] == "GET" and path.startswith(PATHS)


def _foundation_arn(region: str, model_id: str) -> str:
    return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


def _foundation_model(region: str, model: OfferedModel) -> dict[str, Any]:
    return {
        "modelArn": _foundation_arn(region, model.model_id),
        "modelId": model.model_id,
        "modelName": model.name,
        "providerName": model.provider,
        "inputModalities": ["TEXT"],
        "outputModalities": [model.output],
        "responseStreamingSupported": model.output == "TEXT",
        "customizationsSupported": [],
        "inferenceTypesSupported": ["INFERENCE_PROFILE"] if model.profile_only else ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
    }


def _system_profiles(region: str, account: str) -> list[dict[str, Any]]:
    profiles = []
    for model in OFFERED:
        for geo in model.geos:
            if not geo_contains(geo, region):
                continue
            profile_id = f"{geo}.{model.model_id}"
            profiles.append(
                {
                    "inferenceProfileName": f"{geo.upper()} {model.name}",
                    "description": f"Routes requests to {model.name} in the {geo} geography.",
                    "createdAt": CREATED,
                    "updatedAt": CREATED,
                    "inferenceProfileArn": f"arn:aws:bedrock:{region}:{account}:"
                    f"inference-profile/{profile_id}",
                    "models": [{"modelArn": _foundation_arn(region, model.model_id)}],
                    "inferenceProfileId": profile_id,
                    "status": "ACTIVE",
                    "type": "SYSTEM_DEFINED",
                }
            )
    return profiles


def application_profile_arn(region: str, account: str) -> str:
    """The one application inference profile the emulated account has in ``region``."""
    return f"arn:aws:bedrock:{region}:{account}:application-inference-profile/{APPLICATION_PROFILE_ID}"


def _application_profiles(region: str, account: str) -> list[dict[str, Any]]:
    return [
        {
            "inferenceProfileName": "team-app",
            "createdAt": CREATED,
            "updatedAt": CREATED,
            "inferenceProfileArn": application_profile_arn(region, account),
            "models": [{"modelArn": _foundation_arn(region, OPAQUE_ARN_MODEL)}],
            "inferenceProfileId": APPLICATION_PROFILE_ID,
            "status": "ACTIVE",
            "type": "APPLICATION",
        }
    ]


def _query(scope: Scope) -> dict[str, str]:
    parsed = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def list_foundation_models(region: str, query: dict[str, str]) -> dict[str, Any]:
    """ListFoundationModels with its provider, modality and inference-type filters."""
    provider = query.get("byProvider", "").lower()
    modality = query.get("byOutputModality")
    inference = query.get("byInferenceType")
    if inference is not None and inference not in ("ON_DEMAND", "PROVISIONED"):
        raise validation_error(
            f"1 validation error detected: Value '{inference}' at 'byInferenceType' "
            "failed to satisfy constraint"
        )
    models = [
        _foundation_model(region, m)
        for m in OFFERED
        if (not provider or m.provider.lower() == provider)
        and (modality is None or m.output == modality)
        and (inference is None or (inference == "ON_DEMAND" and not m.profile_only))
    ]
    return {"modelSummaries": models}


def list_inference_profiles(region: str, account: str, query: dict[str, str]) -> dict[str, Any]:
    """ListInferenceProfiles (system-defined by default), paginated by ``maxResults``/``nextToken``."""
    kind = query.get("type", "SYSTEM_DEFINED")
    if kind not in ("SYSTEM_DEFINED", "APPLICATION"):
        raise validation_error(
            f"1 validation error detected: Value '{kind}' at 'typeEquals' failed to satisfy constraint"
        )
    profiles = (
        _system_profiles(region, account)
        if kind == "SYSTEM_DEFINED"
        else _application_profiles(region, account)
    )
    try:
        start = int(query.get("nextToken") or 0)
        size = int(query.get("maxResults") or 1000)
    except ValueError:
        raise validation_error("Invalid pagination token or page size.") from None
    if not 1 <= size <= 1000 or start < 0:
        raise validation_error("maxResults must be between 1 and 1000.")
    page: dict[str, Any] = {"inferenceProfileSummaries": profiles[start : start + size]}
    if start + size < len(profiles):
        page["nextToken"] = str(start + size)
    return page


def get_inference_profile(region: str, account: str, identifier: str) -> dict[str, Any]:
    """GetInferenceProfile by id or ARN, system-defined or application."""
    for profile in _system_profiles(region, account) + _application_profiles(region, account):
        if identifier in (profile["inferenceProfileId"], profile["inferenceProfileArn"]):
            return profile
    raise BedrockError("ResourceNotFoundException", f"Inference profile {identifier} not found.", status=404)


def _answer(state: EmulatorState, scope: Scope, headers: list[tuple[str, str]]) -> dict[str, Any]:
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").partition("?")[0]
    signed = SignedRequest("GET", raw_path, scope["query_string"].decode("latin-1"), headers, b"")
    now = datetime.now(UTC) if state.settings.check_clock_skew else None
    caller = authenticate(signed, state.keyring, now, state.settings.default_region)
    path, query = scope["path"], _query(scope)
    state.counters["control_plane_requests"] += 1
    if path == "/foundation-models":
        return list_foundation_models(caller.region, query)
    if path == "/inference-profiles":
        return list_inference_profiles(caller.region, caller.account_id, query)
    identifier = unquote(raw_path.removeprefix("/inference-profiles/"))
    if path.startswith("/inference-profiles/") and identifier:
        return get_inference_profile(caller.region, caller.account_id, identifier)
    raise BedrockError("UnknownOperationException", "Unknown operation", status=404)


async def handle_control_plane(state: EmulatorState, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one control-plane listing call (errors in Bedrock's shape)."""
    while (await receive()).get("more_body", False):
        pass
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    request_id = "cp-" + str(state.counters["control_plane_requests"] + 1)
    try:
        payload = orjson.dumps(_answer(state, scope, headers))
    except BedrockError as error:
        status, raw_headers, body = error.render(request_id)
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-amzn-requestid", request_id.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})

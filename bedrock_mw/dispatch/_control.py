"""Bedrock control-plane reads: what models and inference profiles a provider's account offers.

Rare calls (once per provider and region per discovery TTL), so each opens an aiobotocore ``bedrock``
client with the provider's own credentials and closes it after; failures become UpstreamError in the
one mapping place, like every other Bedrock call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ..config import ProviderConfig
from ._errors import Destination, _upstream_errors
from ._sessions import _client_config, _session_for

if TYPE_CHECKING:
    from mypy_boto3_bedrock.literals import InferenceProfileTypeType
    from mypy_boto3_bedrock.type_defs import (
        FoundationModelSummaryTypeDef,
        GetInferenceProfileResponseTypeDef,
        InferenceProfileSummaryTypeDef,
        ListFoundationModelsResponseTypeDef,
        ListInferenceProfilesRequestTypeDef,
        ListInferenceProfilesResponseTypeDef,
    )

_PAGES = 20  # a bound on pagination: a few hundred profiles at most in any account


@dataclass(slots=True)
class AccountListing:
    """The raw listings of one account in one region, as botocore parsed them."""

    foundation_models: list[FoundationModelSummaryTypeDef] = field(default_factory=list)
    system_profiles: list[InferenceProfileSummaryTypeDef] = field(default_factory=list)
    application_profiles: list[InferenceProfileSummaryTypeDef] = field(default_factory=list)


def _control_client(provider: ProviderConfig, region: str) -> Any:  # aiobotocore's client: no stubs
    session, kwargs = _session_for(provider, region)
    return session.create_client(
        "bedrock",
        region_name=region,
        endpoint_url=provider.endpoint_url,
        config=_client_config(provider),
        **kwargs,
    )


async def _profiles(client: Any, kind: InferenceProfileTypeType) -> list[InferenceProfileSummaryTypeDef]:
    out: list[InferenceProfileSummaryTypeDef] = []
    token: str | None = None
    for _ in range(_PAGES):
        params: ListInferenceProfilesRequestTypeDef = {"typeEquals": kind, "maxResults": 1000}
        if token:
            params["nextToken"] = token
        page: ListInferenceProfilesResponseTypeDef = await client.list_inference_profiles(**params)
        out.extend(page.get("inferenceProfileSummaries") or [])
        token = page.get("nextToken")
        if not token:
            break
    return out


async def list_account_models(provider: ProviderConfig, region: str) -> AccountListing:
    """ListFoundationModels and ListInferenceProfiles (system-defined and application) for one region."""
    target = Destination(provider, region)
    listing = AccountListing()
    with _upstream_errors("ListInferenceProfiles", target), anyio.fail_after(provider.timeouts.total_s):
        async with _control_client(provider, region) as client:
            models: ListFoundationModelsResponseTypeDef = await client.list_foundation_models()
            listing.foundation_models = list(models.get("modelSummaries") or [])
            listing.system_profiles = await _profiles(client, "SYSTEM_DEFINED")
            listing.application_profiles = await _profiles(client, "APPLICATION")
    return listing


async def get_inference_profile(
    provider: ProviderConfig, region: str, identifier: str
) -> GetInferenceProfileResponseTypeDef:
    """GetInferenceProfile (an application profile ARN, for the model behind it)."""
    target = Destination(provider, region, identifier)
    with _upstream_errors("GetInferenceProfile", target), anyio.fail_after(provider.timeouts.total_s):
        async with _control_client(provider, region) as client:
            response: GetInferenceProfileResponseTypeDef = await client.get_inference_profile(
                inferenceProfileIdentifier=identifier
            )
    return response

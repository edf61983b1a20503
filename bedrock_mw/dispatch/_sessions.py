"""aiobotocore sessions and client settings for each auth mode (keys, default chain, API key, role)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentialResolver, AioRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.tokens import FrozenAuthToken

from ..config import AccessKeysAuth, ApiKeyAuth, AssumeRole, DefaultChainAuth, ProviderConfig

if TYPE_CHECKING:
    from mypy_boto3_sts.type_defs import AssumeRoleRequestTypeDef, CredentialsTypeDef


class ClientCredentials(TypedDict, total=False):
    """The credential arguments of ``create_client`` (static keys; none for the other auth modes)."""

    aws_access_key_id: str
    aws_secret_access_key: str
    aws_session_token: str


class CredentialMetadata(TypedDict):
    """What botocore's refreshable credentials are created from and refreshed with."""

    access_key: str
    secret_key: str
    token: str
    expiry_time: str


def _credential_fingerprint(provider: ProviderConfig) -> str:
    """A digest that changes whenever the provider's credentials, transport or connection settings change."""
    auth = provider.auth
    parts: list[str] = [
        auth.mode,
        provider.transport,
        provider.http_client,
        provider.endpoint_url or "",
        provider.ca_bundle or "",
        str(provider.timeouts),
        str(provider.max_connections),
    ]
    if isinstance(auth, AccessKeysAuth):
        parts += [
            auth.access_key_id,
            auth.secret_access_key.get_secret_value(),
            auth.session_token.get_secret_value() if auth.session_token else "",
        ]
    elif isinstance(auth, ApiKeyAuth):
        parts.append(auth.api_key.get_secret_value())
    else:
        parts.append(auth.profile or "")
    role = getattr(auth, "assume_role", None)
    if role is not None:
        parts.append(role.model_dump_json())
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


class _StaticTokenProvider:
    """Gives botocore this provider's Bedrock API key, without touching process environment."""

    METHOD = "bedrock-mw"

    def __init__(self, token: str) -> None:
        self._token = FrozenAuthToken(token)

    def load_token(self, **kwargs: Any) -> FrozenAuthToken:
        return self._token


class _AssumeRoleProvider:
    """A credential provider that assumes a role with a base session's credentials, refreshed by botocore."""

    METHOD = "assume-role"
    CANONICAL_NAME = "bedrock-mw-assume-role"

    def __init__(
        self, base: AioSession, role: AssumeRole, region: str, base_kwargs: ClientCredentials
    ) -> None:
        self._base = base
        self._role = role
        self._region = role.sts_region or region
        self._base_kwargs = base_kwargs

    async def _fetch(self) -> CredentialMetadata:
        role = self._role
        params: AssumeRoleRequestTypeDef = {
            "RoleArn": role.role_arn,
            "RoleSessionName": role.session_name,
            "DurationSeconds": role.duration_s,
        }
        if role.external_id is not None:
            params["ExternalId"] = role.external_id.get_secret_value()
        async with self._base.create_client(
            "sts", region_name=self._region, endpoint_url=role.sts_endpoint_url, **self._base_kwargs
        ) as sts:
            creds: CredentialsTypeDef = (await sts.assume_role(**params))["Credentials"]
        expiry: datetime | str = creds["Expiration"]
        if isinstance(expiry, datetime):
            expiry = expiry.isoformat()
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": expiry,
        }

    async def load(self) -> AioRefreshableCredentials:
        return AioRefreshableCredentials.create_from_metadata(
            metadata=await self._fetch(), refresh_using=self._fetch, method=self.METHOD
        )


def _base_session(provider: ProviderConfig) -> tuple[AioSession, ClientCredentials]:
    """A session for the provider's own credentials, and the client kwargs that carry them."""
    auth = provider.auth
    if isinstance(auth, DefaultChainAuth):
        # botocore's default chain: env, shared config/profile, container, IRSA web identity, IMDS.
        # aiobotocore resolves and refreshes it asynchronously, so the event loop never blocks on it.
        return AioSession(profile=auth.profile), {}
    session = AioSession()
    if isinstance(auth, AccessKeysAuth):
        kwargs: ClientCredentials = {
            "aws_access_key_id": auth.access_key_id,
            "aws_secret_access_key": auth.secret_access_key.get_secret_value(),
        }
        if auth.session_token is not None:
            kwargs["aws_session_token"] = auth.session_token.get_secret_value()
        return session, kwargs
    return session, {}


def _session_for(provider: ProviderConfig, region: str) -> tuple[AioSession, ClientCredentials]:
    auth = provider.auth
    if isinstance(auth, ApiKeyAuth):
        # A Bedrock API key goes through botocore's own bearer-token path, scoped to this session's
        # token provider: two providers can hold two keys, which a process-wide env var cannot.
        session = AioSession()
        session.register_component("token_provider", _StaticTokenProvider(auth.api_key.get_secret_value()))
        # No SigV4 credentials at all: the default chain must not be searched (IMDS would stall).
        session.register_component("credential_provider", AioCredentialResolver([]))
        return session, {}
    session, kwargs = _base_session(provider)
    role = getattr(auth, "assume_role", None)
    if role is None:
        return session, kwargs
    assumed = AioSession()
    assumed.register_component(
        "credential_provider", AioCredentialResolver([_AssumeRoleProvider(session, role, region, kwargs)])
    )
    return assumed, {}


def _client_config(provider: ProviderConfig) -> AioConfig:
    t = provider.timeouts
    bearer = isinstance(provider.auth, ApiKeyAuth)
    return AioConfig(
        auth_scheme_preference="httpBearerAuth" if bearer else "sigv4",
        connect_timeout=t.connect_s,
        # A non-streamed answer sends nothing until it is complete, so the socket may stay silent
        # for the whole call; the dispatcher's own deadlines enforce first byte, idle and total.
        read_timeout=t.total_s,
        # The routing plan retries across providers; botocore's own retries would hide throttling.
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=provider.max_connections,
        # Requests are validated at the edge and built by our translators.
        parameter_validation=False,
        tcp_keepalive=True,
        user_agent_extra="bedrock-mw",
        # botocore's JSON model files load in a thread, not on the event loop.
        warm_up_loader_caches=True,
    )

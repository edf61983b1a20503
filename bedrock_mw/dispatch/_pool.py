"""One transport per (provider, region): created on first use, reused, rebuilt when credentials change."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, TypedDict

import anyio
from aiobotocore.session import AioSession
from botocore.credentials import Credentials
from botocore.exceptions import NoCredentialsError

from ..config import ApiKeyAuth, ProviderConfig
from ._botocore import AiobotocoreTransport
from ._errors import Destination, _upstream_errors
from ._http import CaBundle, HttpClientName, load_ca_bundle
from ._runtime import LeanTransport
from ._sessions import ClientCredentials, _client_config, _credential_fingerprint, _session_for
from ._transport import BedrockTransport
from ._wire import Wire

_SERVICE = "bedrock-runtime"
_WIRES: dict[tuple[str, str], Wire] = {}


def wire_for(service_model: Any) -> Wire:
    """The operations read from this service model (once per process and model version)."""
    slot = (service_model.service_name, service_model.api_version)
    wire = _WIRES.get(slot)
    if wire is None:
        wire = _WIRES[slot] = Wire.from_model(service_model)
    return wire


class _PoolSettings(TypedDict):
    max_connections: int
    connect_timeout_s: float
    http_client_name: HttpClientName
    ca_bundle: CaBundle | None


class _StaticCredentials(Credentials):  # type: ignore[misc]
    """Fixed keys, with the awaitable ``get_frozen_credentials`` of aiobotocore's credentials."""

    async def get_frozen_credentials(self) -> Any:
        return super().get_frozen_credentials()


@dataclass(eq=False, slots=True)
class _Pooled:
    provider: ProviderConfig
    fingerprint: str
    transport: BedrockTransport
    lean: LeanTransport | None  # the raw path's client: the transport itself when it is the lean one


async def _open(provider: ProviderConfig, region: str, *, lean: bool) -> BedrockTransport:
    """A transport for this provider and region: the lean client, or aiobotocore's when configured."""
    session, kwargs = _session_for(provider, region)
    if not lean and provider.ca_bundle:
        # botocore reads the bundle itself; read it first so that a bad one is named as the lean
        # client names it, not as botocore's "unhandled exception" without the path.
        await anyio.to_thread.run_sync(load_ca_bundle, provider.ca_bundle)
    stack = contextlib.AsyncExitStack()
    try:
        client = await stack.enter_async_context(
            session.create_client(
                _SERVICE,
                region_name=region,
                endpoint_url=provider.endpoint_url,
                config=_client_config(provider),
                # None leaves botocore's own choice: AWS_CA_BUNDLE, the profile's ca_bundle, certifi's.
                verify=provider.ca_bundle,
                **kwargs,
            )
        )
    except BaseException:
        await stack.aclose()
        raise
    if not lean:
        return AiobotocoreTransport(client, stack)
    # botocore resolved the endpoint and loaded the service model (off the event loop); its client
    # never opened a connection and closes now: the lean client holds the one pool.
    endpoint, model = client.meta.endpoint_url, client.meta.service_model
    await stack.aclose()
    return await _lean(provider, region, endpoint, wire_for(model), session, kwargs)


async def _lean(
    provider: ProviderConfig,
    region: str,
    endpoint: str,
    wire: Wire,
    session: AioSession,
    kwargs: ClientCredentials,
) -> LeanTransport:
    auth = provider.auth
    # The provider's own bundle, else the one botocore would use (AWS_CA_BUNDLE, the profile's).
    path = provider.ca_bundle or session.get_config_variable("ca_bundle")
    common: _PoolSettings = {
        "max_connections": provider.max_connections,
        "connect_timeout_s": provider.timeouts.connect_s,
        "http_client_name": provider.http_client,
        "ca_bundle": await anyio.to_thread.run_sync(load_ca_bundle, path) if path else None,
    }
    if isinstance(auth, ApiKeyAuth):
        return LeanTransport(wire, endpoint, region, token=auth.api_key.get_secret_value(), **common)
    if kwargs:
        credentials: Any = _StaticCredentials(
            kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"], kwargs.get("aws_session_token")
        )
    else:
        credentials = await session.get_credentials()  # the session's own, cached: no second lookup
        if credentials is None:
            raise NoCredentialsError()
    return LeanTransport(wire, endpoint, region, credentials=credentials, **common)


class ClientPool:
    """One Bedrock transport per (provider, region), created lazily, reused, rebuilt on rotation."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Pooled] = {}
        self._lock = anyio.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    async def transport(self, provider: ProviderConfig, region: str) -> BedrockTransport:
        """The transport for this provider and region; rebuilt when its credentials changed."""
        entry = self._entries.get((provider.id, region))
        # Provider configs are frozen: the same object cannot have changed credentials.
        if entry is not None and entry.provider is provider:
            return entry.transport
        return (await self._entry(provider, region)).transport

    async def lean(self, provider: ProviderConfig, region: str) -> LeanTransport:
        """The lean client for raw calls: the provider's transport, or one beside aiobotocore's."""
        entry = self._entries.get((provider.id, region))
        if entry is None or entry.provider is not provider:
            entry = await self._entry(provider, region)
        if entry.lean is None:
            async with self._lock:
                if entry.lean is None:
                    opened = await _open(provider, region, lean=True)
                    assert isinstance(opened, LeanTransport)
                    entry.lean = opened
        return entry.lean

    async def _entry(self, provider: ProviderConfig, region: str) -> _Pooled:
        slot = (provider.id, region)
        entry = self._entries.get(slot)
        if entry is not None and entry.provider is provider:
            return entry
        fingerprint = _credential_fingerprint(provider)
        if entry is not None and entry.fingerprint == fingerprint:
            entry.provider = provider
            return entry
        async with self._lock:
            entry = self._entries.get(slot)
            if entry is not None and entry.fingerprint == fingerprint:
                return entry
            if entry is not None:
                # Credentials were rotated: later calls use the new transport, the old one closes.
                del self._entries[slot]
                await _close(entry)
            lean = provider.transport == "lean"
            transport = await _open(provider, region, lean=lean)
            raw = transport if isinstance(transport, LeanTransport) else None
            entry = self._entries[slot] = _Pooled(provider, fingerprint, transport, raw)
            return entry

    async def aclose(self) -> None:
        """Close every transport (the app's shutdown)."""
        async with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            await _close(entry)

    async def check_credentials(self, provider: ProviderConfig) -> None:
        """Resolve the provider's credentials now (for readiness); raises UpstreamError on failure."""
        target = Destination(provider, provider.region)
        with _upstream_errors("ResolveCredentials", target):
            if isinstance(provider.auth, ApiKeyAuth):
                return
            session, kwargs = _session_for(provider, provider.region)
            if kwargs:
                return
            creds = await session.get_credentials()
            if creds is None:
                raise NoCredentialsError()
            await creds.get_frozen_credentials()


async def _close(entry: _Pooled) -> None:
    with contextlib.suppress(Exception):
        await entry.transport.aclose()
    if entry.lean is not None and entry.lean is not entry.transport:
        with contextlib.suppress(Exception):
            await entry.lean.aclose()

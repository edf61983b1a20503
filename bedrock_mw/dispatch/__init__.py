"""The dispatcher: the only package that imports aiobotocore.

It owns one Bedrock Runtime client per (provider, region, endpoint, credentials), created on first
use and reused, and turns every botocore failure into an :class:`UpstreamError` in exactly one place
(:func:`_upstream_errors`), so no foreign exception type reaches the app. Converse and ConverseStream,
the hot calls, go through a lean client (``_runtime``, ``_wire``) built on botocore's own wire
pieces; aiobotocore resolves endpoints and credentials and makes every other call.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from aiobotocore.session import AioSession
from botocore.credentials import Credentials
from botocore.exceptions import NoCredentialsError

from ..config import ApiKeyAuth, ProviderConfig
from ._errors import Destination, Target, UpstreamError, _upstream_errors
from ._runtime import RuntimeClient
from ._sessions import _client_config, _credential_fingerprint, _session_for
from ._stream import BedrockStream, _deadline

__all__ = [
    "BedrockStream",
    "ClientPool",
    "Destination",
    "Dispatcher",
    "InvokeResult",
    "Target",
    "UpstreamError",
    "request_id_of",
]

_SERVICE = "bedrock-runtime"


@dataclass(eq=False, slots=True)
class _Pooled:
    provider: ProviderConfig
    fingerprint: str
    client: Any
    runtime: RuntimeClient
    stack: contextlib.AsyncExitStack


async def _runtime_client(
    provider: ProviderConfig, region: str, client: Any, session: AioSession, kwargs: dict[str, Any]
) -> RuntimeClient:
    """The lean Converse client beside an aiobotocore client: same endpoint, same credentials."""
    auth = provider.auth
    common: dict[str, Any] = {
        "max_connections": provider.max_connections,
        "connect_timeout_s": provider.timeouts.connect_s,
    }
    endpoint = client.meta.endpoint_url
    if isinstance(auth, ApiKeyAuth):
        return RuntimeClient(endpoint, region, token=auth.api_key.get_secret_value(), **common)
    if kwargs:
        credentials: Any = _StaticCredentials(
            kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"], kwargs.get("aws_session_token")
        )
    else:
        credentials = await session.get_credentials()  # the session's own, cached: no second lookup
        if credentials is None:
            raise NoCredentialsError()
    return RuntimeClient(endpoint, region, credentials=credentials, **common)


class _StaticCredentials(Credentials):  # type: ignore[misc]
    """Fixed keys, with the awaitable ``get_frozen_credentials`` of aiobotocore's credentials."""

    async def get_frozen_credentials(self) -> Any:
        return super().get_frozen_credentials()


class ClientPool:
    """One aiobotocore client per (provider, region, endpoint, credentials), created lazily, reused."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], _Pooled] = {}
        self._lock = anyio.Lock()
        self._closed = False

    def __len__(self) -> int:
        return len(self._clients)

    async def client(self, provider: ProviderConfig, region: str) -> Any:
        """The aiobotocore client for this provider and region; rebuilt when its credentials changed."""
        return (await self._entry(provider, region)).client

    async def runtime(self, provider: ProviderConfig, region: str) -> RuntimeClient:
        """The lean Converse client for this provider and region (same lifetime as :meth:`client`)."""
        entry = self._clients.get((provider.id, region))
        # Provider configs are frozen: the same object cannot have changed credentials.
        if entry is not None and entry.provider is provider:
            return entry.runtime
        return (await self._entry(provider, region)).runtime

    async def _entry(self, provider: ProviderConfig, region: str) -> _Pooled:
        slot = (provider.id, region)
        entry = self._clients.get(slot)
        if entry is not None and entry.provider is provider:
            return entry
        fingerprint = _credential_fingerprint(provider)
        if entry is not None and entry.fingerprint == fingerprint:
            entry.provider = provider
            return entry
        async with self._lock:
            entry = self._clients.get(slot)
            if entry is not None and entry.fingerprint == fingerprint:
                return entry
            if entry is not None:
                # Credentials were rotated: later calls use the new client, the old one closes.
                del self._clients[slot]
                await entry.stack.aclose()
            session, kwargs = _session_for(provider, region)
            stack = contextlib.AsyncExitStack()
            try:
                client = await stack.enter_async_context(
                    session.create_client(
                        _SERVICE,
                        region_name=region,
                        endpoint_url=provider.endpoint_url,
                        config=_client_config(provider),
                        **kwargs,
                    )
                )
                runtime = await _runtime_client(provider, region, client, session, kwargs)
                stack.push_async_callback(runtime.aclose)
            except BaseException:
                await stack.aclose()
                raise
            entry = self._clients[slot] = _Pooled(provider, fingerprint, client, runtime, stack)
            return entry

    async def aclose(self) -> None:
        """Close every client (the app's shutdown)."""
        async with self._lock:
            entries = list(self._clients.values())
            self._clients.clear()
        for entry in entries:
            with contextlib.suppress(Exception):
                await entry.stack.aclose()

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


@dataclass(slots=True)
class InvokeResult:
    """An InvokeModel answer: the decoded JSON body and the token counts Bedrock put in headers."""

    body: dict[str, Any]
    input_tokens: int | None
    output_tokens: int | None
    request_id: str | None


def _header_int(headers: dict[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def request_id_of(result: object) -> str | None:
    """The AWS request id of a successful call's result, whatever the operation returned."""
    if isinstance(result, dict):
        rid = (result.get("ResponseMetadata") or {}).get("RequestId")
        return str(rid) if rid else None
    rid = getattr(result, "request_id", None)
    return str(rid) if rid else None


class Dispatcher:
    """Makes Bedrock Runtime calls for one target at a time; the routing plan loops over targets."""

    def __init__(self, pool: ClientPool | None = None) -> None:
        self.pool = pool if pool is not None else ClientPool()

    async def converse(self, target: Target, request: dict[str, Any]) -> dict[str, Any]:
        """Converse; returns botocore's parsed response."""
        t = target.provider.timeouts
        with _upstream_errors("Converse", target):
            runtime = await self.pool.runtime(target.provider, target.region)
            async with _deadline(t.total_s):
                return await runtime.converse(target.model_id, request)

    async def converse_stream(self, target: Target, request: dict[str, Any]) -> BedrockStream:
        """ConverseStream; returns the open stream once Bedrock accepted the call."""
        t = target.provider.timeouts
        deadline = anyio.current_time() + t.total_s
        with _upstream_errors("ConverseStream", target):
            runtime = await self.pool.runtime(target.provider, target.region)
            async with _deadline(t.first_byte_s):
                events = await runtime.converse_stream(target.model_id, request)
        stream = BedrockStream(events, target, "ConverseStream", t.idle_s, deadline)
        stream.request_id = events.request_id
        return stream

    async def invoke_model(self, target: Target, body: dict[str, Any]) -> InvokeResult:
        """InvokeModel with a native JSON body."""
        t = target.provider.timeouts
        with _upstream_errors("InvokeModel", target):
            client = await self.pool.client(target.provider, target.region)
            with anyio.fail_after(t.total_s):
                response = await client.invoke_model(
                    modelId=target.model_id,
                    body=orjson.dumps(body),
                    contentType="application/json",
                    accept="application/json",
                )
                async with response["body"] as payload:
                    raw = await payload.read()
        meta = response.get("ResponseMetadata", {})
        headers = {k.lower(): v for k, v in (meta.get("HTTPHeaders") or {}).items()}
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                "InvalidResponse",
                "Bedrock returned a body that is not JSON",
                502,
                "InvokeModel",
                target.provider.id,
                target.region,
                target.model_id,
                meta.get("RequestId"),
            ) from None
        return InvokeResult(
            body=decoded if isinstance(decoded, dict) else {"value": decoded},
            input_tokens=_header_int(headers, "x-amzn-bedrock-input-token-count"),
            output_tokens=_header_int(headers, "x-amzn-bedrock-output-token-count"),
            request_id=meta.get("RequestId"),
        )

    async def invoke_model_stream(self, target: Target, body: dict[str, Any]) -> BedrockStream:
        """InvokeModelWithResponseStream; events are ``{"chunk": {"bytes": b"..."}}``."""
        t = target.provider.timeouts
        deadline = anyio.current_time() + t.total_s
        with _upstream_errors("InvokeModelWithResponseStream", target):
            client = await self.pool.client(target.provider, target.region)
            with anyio.fail_after(t.first_byte_s):
                response = await client.invoke_model_with_response_stream(
                    modelId=target.model_id,
                    body=orjson.dumps(body),
                    contentType="application/json",
                    accept="application/json",
                )
        stream = BedrockStream(response["body"], target, "InvokeModelWithResponseStream", t.idle_s, deadline)
        stream.request_id = response.get("ResponseMetadata", {}).get("RequestId")
        return stream

    async def count_tokens(self, target: Target, input_: dict[str, Any]) -> int:
        """CountTokens; ``target.model_id`` must be a base model id."""
        t = target.provider.timeouts
        with _upstream_errors("CountTokens", target):
            client = await self.pool.client(target.provider, target.region)
            with anyio.fail_after(t.total_s):
                response = await client.count_tokens(modelId=target.model_id, input=input_)
        return int(response["inputTokens"])

    async def aclose(self) -> None:
        """Close every pooled client."""
        await self.pool.aclose()

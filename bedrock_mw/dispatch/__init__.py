"""The dispatcher: the only package that imports aiobotocore.

It owns one Bedrock Runtime client per (provider, region, endpoint, credentials), created on first
use and reused, and turns every botocore failure into an :class:`UpstreamError` in exactly one place
(:func:`_upstream_errors`), so no foreign exception type reaches the app. Converse and ConverseStream,
the hot calls, go through a lean client (``_runtime``, ``_wire``) built on botocore's own wire
pieces; aiobotocore resolves endpoints and credentials and makes every other call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import anyio
import orjson
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentialResolver, AioRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.credentials import Credentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    TokenRetrievalError,
)
from botocore.tokens import FrozenAuthToken

from ..config import AccessKeysAuth, ApiKeyAuth, AssumeRole, DefaultChainAuth, ProviderConfig
from ._runtime import RuntimeClient

log = logging.getLogger("bedrock_mw.dispatch")

_SERVICE = "bedrock-runtime"


@dataclass(eq=False)
class UpstreamError(Exception):
    """A failed Bedrock call, described without secrets.

    ``code`` is Bedrock's error type (``ThrottlingException``...) or one of the gateway's own for
    failures that never reached Bedrock: ``ConnectionError``, ``Timeout``, ``CredentialsError``.
    """

    code: str
    message: str
    status: int
    operation: str = ""
    provider_id: str = ""
    region: str = ""
    model_id: str = ""
    request_id: str | None = None
    retry_after: float | None = None
    mid_stream: bool = False

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")


class Target(Protocol):
    """Where one attempt goes: a provider, the region to call and the model id to send.

    ``routing.Attempt`` is one; the dispatcher needs nothing else from the routing plan.
    """

    @property
    def provider(self) -> ProviderConfig: ...
    @property
    def region(self) -> str: ...
    @property
    def model_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Destination:
    """A concrete :class:`Target`, for calls made outside a routing plan (warm-up, CountTokens)."""

    provider: ProviderConfig
    region: str
    model_id: str = ""


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


@contextlib.contextmanager
def _upstream_errors(operation: str, target: Target, *, mid_stream: bool = False) -> Iterator[None]:
    """Map botocore's (and timeout) exceptions to :class:`UpstreamError`; the one place that does."""
    where = {
        "operation": operation,
        "provider_id": target.provider.id,
        "region": target.region,
        "model_id": target.model_id,
        "mid_stream": mid_stream,
    }
    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        headers = {k.lower(): v for k, v in (meta.get("HTTPHeaders") or {}).items()}
        status = int(meta.get("HTTPStatusCode") or _STREAM_STATUS.get(str(err.get("Code")), 500))
        code = str(err.get("Code") or "UnknownError")
        raise UpstreamError(
            # Exception events inside a stream are camelCase; name them as Bedrock does elsewhere.
            code=code[:1].upper() + code[1:],
            message=str(err.get("Message") or exc),
            status=status,
            request_id=meta.get("RequestId") or headers.get("x-amzn-requestid"),
            retry_after=_retry_after(headers),
            **where,  # type: ignore[arg-type]
        ) from None
    except (
        NoCredentialsError,
        PartialCredentialsError,
        CredentialRetrievalError,
        TokenRetrievalError,
    ) as exc:
        raise UpstreamError("CredentialsError", _safe(exc), 401, **where) from None  # type: ignore[arg-type]
    except (ConnectTimeoutError, EndpointConnectionError, aiohttp.ConnectionTimeoutError) as exc:
        # (aiohttp's connect timeout is also a TimeoutError: it is a connection failure, not a slow answer.)
        raise UpstreamError("ConnectionError", _safe(exc), 502, **where) from None  # type: ignore[arg-type]
    except (ReadTimeoutError, TimeoutError) as exc:
        raise UpstreamError("Timeout", _safe(exc) or "no answer in time", 504, **where) from None  # type: ignore[arg-type]
    except BotoCoreError as exc:
        raise UpstreamError("ConnectionError", _safe(exc), 502, **where) from None  # type: ignore[arg-type]
    except (OSError, aiohttp.ClientError) as exc:
        # aiohttp's connection errors (OSErrors, or its own for a dropped connection) carry host
        # and port, never credentials.
        raise UpstreamError("ConnectionError", f"{type(exc).__name__}: {exc}", 502, **where) from None  # type: ignore[arg-type]


# Exception events inside a stream carry no HTTP status of their own: use the one Bedrock gives the
# same error outside a stream.
_STREAM_STATUS = {
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "validationException": 400,
    "modelTimeoutException": 408,
}


def _safe(exc: BaseException) -> str:
    # botocore's messages name endpoints and providers, never key material; keep them short anyway.
    return str(exc)[:500]


def _credential_fingerprint(provider: ProviderConfig) -> str:
    """A digest that changes whenever the provider's credentials or connection settings change."""
    auth = provider.auth
    parts: list[str] = [
        auth.mode,
        provider.endpoint_url or "",
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

    def __init__(self, base: AioSession, role: AssumeRole, region: str, base_kwargs: dict[str, Any]) -> None:
        self._base = base
        self._role = role
        self._region = role.sts_region or region
        self._base_kwargs = base_kwargs

    async def _fetch(self) -> dict[str, Any]:
        role = self._role
        params: dict[str, Any] = {
            "RoleArn": role.role_arn,
            "RoleSessionName": role.session_name,
            "DurationSeconds": role.duration_s,
        }
        if role.external_id is not None:
            params["ExternalId"] = role.external_id.get_secret_value()
        async with self._base.create_client(
            "sts", region_name=self._region, endpoint_url=role.sts_endpoint_url, **self._base_kwargs
        ) as sts:
            creds = (await sts.assume_role(**params))["Credentials"]
        expiry = creds["Expiration"]
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


def _base_session(provider: ProviderConfig) -> tuple[AioSession, dict[str, Any]]:
    """A session for the provider's own credentials, and the client kwargs that carry them."""
    auth = provider.auth
    if isinstance(auth, DefaultChainAuth):
        # botocore's default chain: env, shared config/profile, container, IRSA web identity, IMDS.
        # aiobotocore resolves and refreshes it asynchronously, so the event loop never blocks on it.
        return AioSession(profile=auth.profile), {}
    session = AioSession()
    if isinstance(auth, AccessKeysAuth):
        kwargs: dict[str, Any] = {
            "aws_access_key_id": auth.access_key_id,
            "aws_secret_access_key": auth.secret_access_key.get_secret_value(),
        }
        if auth.session_token is not None:
            kwargs["aws_session_token"] = auth.session_token.get_secret_value()
        return session, kwargs
    return session, {}


def _session_for(provider: ProviderConfig, region: str) -> tuple[AioSession, dict[str, Any]]:
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


def _deadline(seconds: float) -> contextlib.AbstractAsyncContextManager[Any]:
    """A timeout for one call: asyncio's own where it runs (a fraction of anyio's cost), else anyio's."""
    if _on_asyncio():
        return asyncio.timeout(seconds)
    return _anyio_deadline(seconds)


@contextlib.asynccontextmanager
async def _anyio_deadline(seconds: float) -> AsyncIterator[None]:
    with anyio.fail_after(seconds):
        yield


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # another backend (trio): the portable path
        return False
    return True


class _IdleWatchdog:
    """Bounds each wait for an upstream event by the idle timeout and the total deadline.

    One timer per stream, re-armed only when it fires, instead of a cancel scope per event: a
    stream of a thousand events sets two attributes per event, not a thousand timers.
    """

    def __init__(self, idle_s: float, deadline: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._idle_s = idle_s
        self._deadline = deadline
        self._handle: asyncio.TimerHandle | None = None
        self._wait_started = 0.0
        self._waiting = False
        self.fired = False

    def begin(self) -> None:
        """A wait for the next event starts now (TimeoutError if the deadline already passed)."""
        now = self._loop.time()
        if now >= self._deadline:
            raise TimeoutError()
        self._wait_started = now
        self._waiting = True
        if self._handle is None:
            self._handle = self._loop.call_at(min(now + self._idle_s, self._deadline), self._check)

    def end(self) -> None:
        self._waiting = False

    def _check(self) -> None:
        self._handle = None
        if not self._waiting or self._task is None:
            return  # the next begin() re-arms
        due = min(self._wait_started + self._idle_s, self._deadline)
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self.fired = True
        self._task.cancel()

    def expired(self) -> bool:
        """Whether a cancellation just caught was this watchdog's own (and nobody else's)."""
        if not self.fired or self._task is None:
            return False
        self.fired = False
        return self._task.uncancel() == 0

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class BedrockStream:
    """An open Bedrock event stream: iterate events with per-event idle timeouts; always close it."""

    def __init__(self, raw: Any, target: Target, operation: str, idle_s: float, deadline: float) -> None:
        self._raw = raw
        self._events = raw.__aiter__()
        self._target = target
        self._operation = operation
        self._idle_s = idle_s
        self._deadline = deadline
        self.request_id: str | None = None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate_asyncio() if _on_asyncio() else self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            timeout = min(self._idle_s, max(0.0, self._deadline - anyio.current_time()))
            with _upstream_errors(self._operation, self._target, mid_stream=True):
                with anyio.fail_after(timeout):
                    try:
                        event = await self._events.__anext__()
                    except StopAsyncIteration:
                        return
            yield event

    async def _iterate_asyncio(self) -> AsyncIterator[dict[str, Any]]:
        # The same contract as _iterate, at a fraction of its cost per event (see _IdleWatchdog).
        watchdog = _IdleWatchdog(self._idle_s, self._deadline)
        next_event = self._events.__anext__
        try:
            while True:
                try:
                    watchdog.begin()
                    try:
                        event = await next_event()
                    finally:
                        watchdog.end()
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not watchdog.expired():
                        raise
                    with _upstream_errors(self._operation, self._target, mid_stream=True):
                        raise TimeoutError() from None
                except Exception:
                    with _upstream_errors(self._operation, self._target, mid_stream=True):
                        raise
                yield event
        finally:
            watchdog.stop()

    async def first(self, within_s: float) -> dict[str, Any] | None:
        """Wait for the first event (bounded by the first-byte timeout); None if the stream is empty."""
        with _upstream_errors(self._operation, self._target):
            async with _deadline(within_s):
                try:
                    event: dict[str, Any] = await self._events.__anext__()
                except StopAsyncIteration:
                    return None
        return event

    def close(self) -> None:
        """Release the upstream connection at once (the caller left, or the stream ended)."""
        with contextlib.suppress(Exception):
            self._raw.close()


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

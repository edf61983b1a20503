"""The lean client's HTTP on aiohttp (the plain install's): one ``ClientSession`` per pool.

Set up as ``_http`` describes: ``TCPConnector(limit=max_connections)`` with 12 s keep-alive, a
connect timeout only, no ``Accept-Encoding`` and no decompression, ``trust_env`` off (no proxy from
the environment), redirects not followed, TLS from ``ssl.create_default_context()`` (the system's
roots, and the provider's ``ca_bundle`` loaded into it), and the URL handed to yarl as already
encoded so the signed path is sent byte for byte (yarl would otherwise unquote ``%3A`` in a model id).

A request sent on a pooled connection that the server closes before any byte of its answer (it had
closed the idle connection as the request went out) is sent once more; aiohttp itself resends only
idempotent methods. Whether the connection had carried a request before is known from the connector
(:class:`_Connector`), and that no byte came back from aiohttp's ``ServerDisconnectedError``, which
carries the partly parsed answer once there was one.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from yarl import URL

from ._http import KEEPALIVE_S, HttpSettings


class AiohttpAnswer:
    """An aiohttp response as an :class:`~._http.HttpAnswer`."""

    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in resp.headers.items()}

    async def read(self) -> bytes:
        return await self._resp.read()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._resp.content.iter_any()

    def close(self) -> None:
        self._resp.close()


class _Attempt:
    """One request: whether the pool gave it a connection that had carried a request before."""

    __slots__ = ("reused",)

    def __init__(self) -> None:
        self.reused = False


# The request being sent by this task, for the connector to mark (it runs inside ``session.post``).
_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("bedrock_mw_aiohttp_attempt", default=None)


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, telling the request it connects whether its connection has served before.

    (aiohttp's ``on_connection_reuseconn`` trace signal says the same, but any trace config makes
    aiohttp send a dozen signals per request: about a tenth more client CPU per call.)
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._served: weakref.WeakSet[ResponseHandler] = weakref.WeakSet()

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's own signature)
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        protocol = connection.protocol
        if protocol is not None:
            attempt = _ATTEMPT.get()
            if attempt is not None:
                attempt.reused = protocol in self._served
            self._served.add(protocol)
        return connection


def _closed_unanswered(exc: aiohttp.ClientError) -> bool:
    """The server closed the connection before any byte of its answer arrived.

    Once the first byte was parsed, aiohttp puts the partly read answer in the error in place of its
    default text.
    """
    return isinstance(exc, aiohttp.ServerDisconnectedError) and isinstance(exc.message, str)


class AiohttpClient:
    """One aiohttp session and connection pool."""

    name = "aiohttp"

    def __init__(self, settings: HttpSettings) -> None:
        bundle = settings.ca_bundle
        connector = _Connector(
            limit=settings.max_connections,
            keepalive_timeout=KEEPALIVE_S,
            ssl=bundle.ssl_context if bundle is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_s),
            skip_auto_headers=("Accept-Encoding",),
            auto_decompress=False,
            trust_env=False,
        )

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        target = URL(url, encoded=True)
        attempt = _Attempt()
        token = _ATTEMPT.set(attempt)
        try:
            return await self._session.post(target, data=body, headers=headers, allow_redirects=False)
        except aiohttp.ClientError as exc:
            if not (attempt.reused and _closed_unanswered(exc)):
                raise
        finally:
            _ATTEMPT.reset(token)
        # Closed with no byte of an answer, as a server closes an idle connection just as a request goes
        # out on it: once more, on another connection (a new one unless another idle one is pooled),
        # and not again.
        return await self._session.post(target, data=body, headers=headers, allow_redirects=False)

    async def fetch(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        async with await self._post(url, body, headers) as resp:
            raw = await resp.read()
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw

    async def open(self, url: str, body: bytes, headers: Mapping[str, str]) -> AiohttpAnswer:
        return AiohttpAnswer(await self._post(url, body, headers))

    async def aclose(self) -> None:
        await self._session.close()

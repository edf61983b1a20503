"""The lean client's HTTP on pyreqwest (Rust's reqwest and hyper; the ``fast`` extra).

Measured alone (``python -m bench.clients``) it costs about half of aiohttp's CPU per call, which
is what it is here for. Set up to behave as ``_aiohttp`` does (see ``_http``): at most
``max_connections`` requests in flight and as many idle connections kept for 12 s, a connect
timeout only, no decompression (so no ``Accept-Encoding``), redirects not followed, no proxy (reqwest
would read ``HTTP(S)_PROXY`` from the environment; aiohttp does not), no ``Referer``, TLS verified by
rustls against the platform's roots (on Linux the system store, as OpenSSL's default context) and
the provider's ``ca_bundle``, added one certificate at a time (reqwest reads one per call).
reqwest's URL parser keeps percent-escapes as they are, so the signed path is sent byte for byte.

Streamed answers are read with no read-ahead limit of pyreqwest's own (its buffer would hold chunks
until 64 KiB gathered, and hold back the status until the first chunk): each chunk is handed over as
it arrives. ``close()`` is synchronous, as the lean client's callers need; pyreqwest's close is a
coroutine, so it is started as a task that runs on the loop's next turn and cancels the body's
reader, which drops the connection.

Cancellation: a ``CancelledError`` thrown into a pyreqwest coroutine is handed to its Rust future,
which stops on a later turn of the Tokio thread and then raises a ``CancelledError`` of its own. Both
halves are wrong here: anyio's cancel scopes (Starlette's, the gateway's) recognise their own
cancellation by the exception the task was cancelled with, and take any other for someone else's;
and a cancelled request must be over at once. Every pyreqwest await therefore goes through
:func:`_awaiting`, which on cancellation throws it in (pyreqwest aborts its Rust task there and
then), closes the coroutine if it is still not done, and raises the cancellation it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import AsyncIterator, Awaitable, Generator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.request import StreamRequest
from pyreqwest.response import Response

from ._http import KEEPALIVE_S, HttpSettings

T = TypeVar("T")


@types.coroutine
def _awaiting(awaitable: Awaitable[T]) -> Generator[Any, Any, T]:
    """``await awaitable``; cancelled, it stops pyreqwest's work now and raises the cancellation."""
    inner = awaitable.__await__()
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            step = inner.send(sent) if thrown is None else inner.throw(thrown)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        sent = thrown = None
        try:
            sent = yield step
        except asyncio.CancelledError as cancelled:
            # Thrown in, the cancellation reaches pyreqwest's cancel handle, which aborts the request
            # or read it runs on the Tokio thread (it answers with a CancelledError of its own, or,
            # if it has not finished yet, the coroutine is closed); either way this one is raised.
            with contextlib.suppress(BaseException):
                inner.throw(cancelled)
                inner.close()
            raise cancelled from None
        except BaseException as exc:
            thrown = exc


# Closing tasks, held until done (the loop keeps only weak references to tasks).
_CLOSING: set[asyncio.Task[None]] = set()


def _closed(task: asyncio.Task[None]) -> None:
    _CLOSING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a failure to close a dropped stream is of no further use


class ReqwestAnswer:
    """A streamed pyreqwest response as an :class:`~._http.HttpAnswer`."""

    __slots__ = ("_request", "_response", "headers", "status")

    def __init__(self, request: StreamRequest, response: Response) -> None:
        self._request: StreamRequest | None = request
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = dict(response.headers.items())

    async def read(self) -> bytes:
        body = (await _awaiting(self._response.bytes())).to_bytes()
        self._request = None  # all read: the connection went back to the pool
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self._response.body_reader
        while (chunk := await _awaiting(reader.read_chunk())) is not None:
            yield chunk.to_bytes()
        self._request = None

    def close(self) -> None:
        request, self._request = self._request, None
        if request is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (interpreter shutdown): dropping the objects is all there is
            return
        task = loop.create_task(request.__aexit__(None, None, None))
        _CLOSING.add(task)
        task.add_done_callback(_closed)


class ReqwestClient:
    """One pyreqwest client and connection pool."""

    name = "pyreqwest"

    def __init__(self, settings: HttpSettings) -> None:
        builder = ClientBuilder()
        if settings.ca_bundle is not None:
            for certificate in settings.ca_bundle.certificates:
                builder = builder.add_root_certificate_pem(certificate)
        self._client: Client = (
            builder.max_connections(settings.max_connections)
            .pool_max_idle_per_host(settings.max_connections)
            .pool_idle_timeout(timedelta(seconds=KEEPALIVE_S))
            .connect_timeout(timedelta(seconds=settings.connect_timeout_s))
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .follow_redirects(False)
            .referer(False)
            .no_proxy()
            .build()
        )

    async def fetch(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        resp = await _awaiting(self._client.post(url).headers(headers).body_bytes(body).build().send())
        return resp.status, dict(resp.headers.items()), (await _awaiting(resp.bytes())).to_bytes()

    async def open(self, url: str, body: bytes, headers: Mapping[str, str]) -> ReqwestAnswer:
        request = (
            self._client.post(url)
            .headers(headers)
            .body_bytes(body)
            .streamed_read_buffer_limit(0)
            .build_streamed()
        )
        return ReqwestAnswer(request, await _awaiting(request.__aenter__()))

    async def aclose(self) -> None:
        await self._client.close()

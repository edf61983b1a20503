"""HTTP plumbing shared by the routes: bounded body reads, JSON and SSE responses, disconnects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import Dialect, ErrorKind, GatewayError, error_body

T = TypeVar("T")


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body parsed as JSON; 413 past ``max_bytes`` (checked before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise GatewayError(
            ErrorKind.REQUEST_TOO_LARGE, f"request body exceeds the limit of {max_bytes} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise GatewayError(
                ErrorKind.REQUEST_TOO_LARGE, f"request body exceeds the limit of {max_bytes} bytes"
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise GatewayError(ErrorKind.INVALID_REQUEST, "request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(ErrorKind.INVALID_REQUEST, f"request body is not valid JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.INVALID_REQUEST, "request body must be a JSON object")
    return body


# Header values can carry caller-chosen text (names of dropped parameters and betas): anything but
# printable ASCII is percent-encoded, so no value can split a header or fail latin-1 encoding.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F))


def safe_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers with every value made safe to send (see ``_HEADER_SAFE``)."""
    if not headers:
        return {}
    return {
        name: value if value.isascii() and value.isprintable() else quote(value, safe=_HEADER_SAFE)
        for name, value in headers.items()
    }


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(payload), status, safe_headers(headers), media_type="application/json")


def error_response(err: GatewayError, dialect: Dialect, headers: Mapping[str, str] | None = None) -> Response:
    """An error in the caller's dialect, with its status and headers (``retry-after``, request ids)."""
    merged = dict(headers or {})
    merged.update(err.response_headers())
    return Response(
        error_body(err, dialect), err.status_for(dialect), safe_headers(merged), media_type="application/json"
    )


# How much transcoded SSE a stream may hold while its client reads slowly; past it, upstream waits.
_SSE_HIGH_WATER = 64 * 1024


class _Outbox:
    """SSE bytes between the task that transcodes and the task that sends, taken out all at once.

    Bedrock's events arrive in bursts (one socket read often carries dozens), and one write per
    event costs a system call each; the sender takes whatever the transcoder produced since its
    last write, so a burst leaves in one write while a lone event still leaves at once.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._closed = False
        self._filled = anyio.Event()
        self._drained = anyio.Event()

    async def put(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        self._filled.set()
        if self._size >= _SSE_HIGH_WATER:
            self._drained = anyio.Event()
            await self._drained.wait()

    def close(self) -> None:
        self._closed = True
        self._filled.set()

    async def take(self) -> bytes | None:
        """Everything put since the last take; None once closed and empty."""
        while not self._chunks:
            if self._closed:
                return None
            await self._filled.wait()
            self._filled = anyio.Event()
        chunks, self._chunks, self._size = self._chunks, [], 0
        self._drained.set()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class SSEResponse(Response):
    """Streams SSE bytes as they are transcoded, and stops when the client leaves.

    ``body`` yields bytes; one task iterates it while another sends, so the events of one upstream
    burst go out in one write. When the client disconnects, the task iterating ``body`` is
    cancelled, so the generator's ``finally`` (which closes the upstream Bedrock stream) runs at once.
    """

    def __init__(self, body: AsyncIterator[bytes], headers: Mapping[str, str]) -> None:
        self.body_iterator = body
        self.status_code = 200
        self.background = None
        merged = {"cache-control": "no-cache", "x-accel-buffering": "no", **headers}
        self.init_headers(safe_headers(merged))
        self.raw_headers.append((b"content-type", b"text/event-stream; charset=utf-8"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with _single_errors():
            await self._run(receive, send)

    async def _run(self, receive: Receive, send: Send) -> None:
        # The first chunk (the stream's first event, already at hand) leaves from this task, before
        # any task is started: time to first byte pays for no task hop.
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        first = await anext(self.body_iterator, b"")
        await send(start)
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        outbox = _Outbox()
        async with anyio.create_task_group() as tg:

            async def transcode() -> None:
                async for chunk in self.body_iterator:
                    if chunk:
                        await outbox.put(chunk)
                outbox.close()

            async def pump() -> None:
                while (chunk := await outbox.take()) is not None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(transcode)
            tg.start_soon(pump)
            tg.start_soon(watch)


async def unless_disconnected(receive: Receive, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; if the client disconnects first, cancel it (and whatever upstream call it made)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # another backend (trio): the portable path
        task = None
    if task is not None:
        return await _unless_disconnected_asyncio(task, receive, work)
    result: list[T] = []
    with _single_errors():
        await _race(receive, work, result)
    if not result:
        raise ClientDisconnected()
    return result[0]


async def _unless_disconnected_asyncio(
    task: asyncio.Task[Any], receive: Receive, work: Callable[[], Awaitable[T]]
) -> T:
    # The same contract as the task-group race, at a third of its cost per request: ``work`` runs
    # in the caller's own task and only the watcher is a new one; it cancels the caller's task.
    disconnected = False

    async def watch() -> None:
        nonlocal disconnected
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work()
    except asyncio.CancelledError:
        if disconnected and task.uncancel() == 0:
            raise ClientDisconnected() from None
        raise
    finally:
        watcher.cancel()


async def _race(receive: Receive, work: Callable[[], Awaitable[T]], result: list[T]) -> None:
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            result.append(await work())
            tg.cancel_scope.cancel()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(run)
        tg.start_soon(watch)


@contextlib.contextmanager
def _single_errors() -> Iterator[None]:
    # A task group wraps a failure in an ExceptionGroup; the routes want the error itself.
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


class ClientDisconnected(Exception):
    """The caller went away before the answer was ready."""

"""Server-sent events: bytes sent as they are transcoded, stopping when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..excgroups import collapse_excgroups
from .disconnects import ClientDisconnected
from .responses import safe_headers

SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"

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
    burst go out in one write. However the response ends (the client leaves, stops reading, or a
    task fails), ``body`` is ``aclose()``d before this returns; a client that left before the
    last byte raises :class:`ClientDisconnected`, so the request's scope records a 499.
    """

    def __init__(
        self,
        body: AsyncIterator[bytes],
        headers: Mapping[str, str],
        *,
        media_type: str = SSE_MEDIA_TYPE,
        stall_timeout_s: float = 60.0,
    ) -> None:
        self.body_iterator = body
        # A client that stops reading holds the upstream stream open; past this, it is let go.
        self.stall_timeout_s = stall_timeout_s
        self.status_code = 200
        self.background = None
        merged = {"cache-control": "no-cache", "x-accel-buffering": "no", **headers}
        self.init_headers(safe_headers(merged))
        # The pass-through relays Bedrock's event stream with the same flushing and disconnects.
        self.raw_headers.append((b"content-type", media_type.encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with collapse_excgroups():
                completed = await self._run(receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
        if not completed:
            raise ClientDisconnected()

    async def _run(self, receive: Receive, send: Send) -> bool:
        """Send the stream; False when the client disconnected (or stopped reading) before its end."""
        # The first chunk (the stream's first event, already at hand) leaves from this task, before
        # any task is started: time to first byte pays for no task hop.
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        first = await anext(self.body_iterator, b"")
        await send(start)
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        outbox = _Outbox()
        completed = False
        stall_s = self.stall_timeout_s
        async with anyio.create_task_group() as tg:

            async def transcode() -> None:
                async for chunk in self.body_iterator:
                    if chunk:
                        await outbox.put(chunk)
                outbox.close()

            async def pump() -> None:
                while (chunk := await outbox.take()) is not None:
                    try:
                        async with asyncio.timeout(stall_s):
                            await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    except TimeoutError:
                        tg.cancel_scope.cancel()  # the client stopped reading: treat it as gone
                        return
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                nonlocal completed
                completed = True
                tg.cancel_scope.cancel()

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(transcode)
            tg.start_soon(pump)
            tg.start_soon(watch)
        return completed

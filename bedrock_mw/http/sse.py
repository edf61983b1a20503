"""Server-sent events: bytes sent as they are transcoded, stopping when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .disconnects import ClientDisconnected
from .responses import safe_headers

SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"


class _StallWatch:
    """Cancels a scope whose ``send`` has waited longer than ``stall_s`` (a client that stopped reading).

    One timer per stream, re-armed only when it fires, instead of a timeout context per write: a
    stream of a thousand writes sets two attributes per write, not a thousand timers.
    """

    def __init__(self, scope: anyio.CancelScope, stall_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._scope = scope
        self._stall_s = stall_s
        self._handle: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._sending = False

    def begin(self) -> None:
        self._since = self._loop.time()
        self._sending = True
        if self._handle is None:
            self._handle = self._loop.call_at(self._since + self._stall_s, self._check)

    def end(self) -> None:
        self._sending = False

    def _check(self) -> None:
        self._handle = None
        if not self._sending:
            return  # the next begin() re-arms
        due = self._since + self._stall_s
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self._scope.cancel()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class SSEResponse(Response):
    """Streams SSE bytes as they are transcoded, and stops when the client leaves.

    ``body`` yields bytes (from a relay, what one upstream read completed), each sent as soon as
    it is produced, from the task that produces it. However the response ends (the client leaves,
    stops reading, or the body fails), ``body`` is ``aclose()``d before this returns; a client that
    left before the last byte raises :class:`ClientDisconnected`, so the request's scope records
    a 499.
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
        # The first chunk (the stream's first event, already at hand) leaves before anything else.
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        first = await anext(self.body_iterator, b"")
        await send(start)
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        # This task transcodes and sends, each chunk as soon as it is produced (the body yields what
        # one upstream read completed); one watcher task cancels it when the client leaves, and one
        # timer when a write waits on a client that stopped reading. Both cancel through a cancel
        # scope, which the request's shielded settling (lease, usage record) is safe from.
        completed = False
        with anyio.CancelScope() as scope:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                scope.cancel()

            stall = _StallWatch(scope, self.stall_timeout_s)
            watcher = asyncio.ensure_future(watch())
            try:
                async for chunk in self.body_iterator:
                    if chunk:
                        stall.begin()
                        try:
                            await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        finally:
                            stall.end()
                        # Neither step has to suspend: a read of data already buffered returns at
                        # once, and so does uvicorn's send once the client is gone (it drops the
                        # bytes). One pass of the loop per chunk lets the watcher's cancellation in
                        # (without it, a client that left was relayed the rest of a buffered stream
                        # and recorded 200) and keeps a long burst from holding other requests up.
                        await asyncio.sleep(0)
                stall.begin()
                try:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                finally:
                    stall.end()
                completed = True
            finally:
                stall.stop()
                watcher.cancel()
        return completed  # False: the client left, or stopped reading, and is treated as gone

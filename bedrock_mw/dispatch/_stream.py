"""An open Bedrock event stream with first-event, idle and total deadlines.

asyncio only: aiohttp, under both transports, runs on nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Generic, TypeVar

from ._errors import Target, _upstream_errors
from ._transport import EventStream

Event = TypeVar("Event")


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


class UpstreamStream(Generic[Event]):
    """An open Bedrock stream: iterate its events (or raw frames) with idle and total deadlines.

    Always close it. ``headers`` are the answer's (lower-cased names) where the transport has them.
    """

    def __init__(
        self,
        raw: EventStream[Event],
        target: Target,
        operation: str,
        idle_s: float,
        deadline: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._raw = raw
        self._events = raw.__aiter__()
        self._target = target
        self._operation = operation
        self._idle_s = idle_s
        self._deadline = deadline
        self.request_id: str | None = raw.request_id
        self.headers: Mapping[str, str] = headers or {}

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        batches = self._batches()
        try:
            async for batch in batches:
                for event in batch:
                    yield event
        finally:
            await batches.aclose()  # its watchdog's timer stops with it

    def batches(self) -> AsyncIterator[list[Event]]:
        """The events as they arrive, a list per read of the socket (never empty), same deadlines.

        A relay takes them this way so that what one read completed costs one step of each layer
        above, not one per event; each list holds only events already received, so none waits.
        """
        return self._batches()

    async def _batches(self) -> AsyncGenerator[list[Event], None]:
        # Bounded by idle and total deadlines at a fraction of a timer per read (see _IdleWatchdog).
        watchdog = _IdleWatchdog(self._idle_s, self._deadline)
        next_batch = getattr(self._events, "next_batch", None)
        if next_batch is None:  # a transport that reads event by event: a batch of one each
            next_event = self._events.__anext__

            async def next_batch() -> list[Event]:
                return [await next_event()]

        try:
            while True:
                try:
                    watchdog.begin()
                    try:
                        batch: list[Event] = await next_batch()
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
                yield batch
        finally:
            watchdog.stop()

    async def first(self, within_s: float) -> Event | None:
        """Wait for the first event (bounded by the first-byte timeout); None if the stream is empty."""
        with _upstream_errors(self._operation, self._target):
            async with asyncio.timeout(within_s):
                try:
                    event = await self._events.__anext__()
                except StopAsyncIteration:
                    return None
        return event

    def close(self) -> None:
        """Release the upstream connection at once (the caller left, or the stream ended)."""
        with contextlib.suppress(Exception):
            self._raw.close()


BedrockStream = UpstreamStream
"""A stream of decoded events, as the transcoders take them: ``BedrockStream[ConverseStreamOutputTypeDef]``
(ConverseStream) or ``BedrockStream[ResponseStreamTypeDef]`` (InvokeModelWithResponseStream)."""

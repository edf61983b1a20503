"""Limits counted in this process's memory: sliding 60-second windows per virtual key."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from ..config import KeyLimits, VirtualKeyConfig
from ..errors import GatewayError
from .base import CONCURRENCY_RETRY_S, NOOP_LEASE, WINDOW_S, Lease, has_limits, rate_limited

__all__ = ["InProcessLimiter"]


def _tokens_fit(used: int, needed: int, limit: int) -> bool:
    # A spent budget refuses even estimate-less requests; ``needed`` is already capped at ``limit``.
    return used < limit and used + needed <= limit


def _token_retry_after(
    buckets: list[tuple[int, int]], used: int, needed: int, limit: int, now: float
) -> float:
    """Seconds until the oldest one-second token buckets age out far enough for ``needed`` to fit."""
    remaining = used
    for second, tokens in buckets:  # oldest first
        remaining -= tokens
        if _tokens_fit(remaining, needed, limit):
            return second + WINDOW_S - now
    return WINDOW_S


class _KeyWindow:
    """One key's counters: in-flight leases, admission times, and per-second token buckets."""

    __slots__ = ("in_flight", "requests", "tokens", "tokens_total")

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests: deque[float] = deque()  # admission times, oldest first
        self.tokens: deque[list[int]] = deque()  # [whole second, tokens], oldest first
        self.tokens_total = 0  # the sum over ``tokens``, kept as they come and go (not summed per request)

    def expire(self, now: float) -> None:
        cutoff = now - WINDOW_S
        while self.requests and self.requests[0] <= cutoff:
            self.requests.popleft()
        oldest_second = math.floor(now) - WINDOW_S
        while self.tokens and self.tokens[0][0] <= oldest_second:
            self.tokens_total -= self.tokens.popleft()[1]

    @property
    def idle(self) -> bool:
        return self.in_flight == 0 and not self.requests and not self.tokens

    def record_tokens(self, now: float, used: int) -> None:
        self.tokens_total += used
        second = math.floor(now)
        if self.tokens and self.tokens[-1][0] == second:
            self.tokens[-1][1] += used
        else:
            self.tokens.append([second, used])


class _InProcessLease:
    __slots__ = ("_key_id", "_limiter", "_record_tokens", "_released", "_window")

    def __init__(
        self, limiter: InProcessLimiter, key_id: str, window: _KeyWindow, record_tokens: bool
    ) -> None:
        self._limiter = limiter
        self._key_id = key_id
        self._window = window
        self._record_tokens = record_tokens
        self._released = False

    async def release(self, *, used_tokens: int = 0) -> None:
        if self._released:
            return
        self._released = True
        self._limiter._release(self._key_id, self._window, used_tokens if self._record_tokens else 0)


class InProcessLimiter:
    """Limits counted in this process's memory: right for one worker, or as a per-worker cap.

    Every operation runs without awaiting, so it is atomic on the event loop (it is not
    thread-safe). Keys with nothing in flight and nothing in their window are dropped, so memory
    grows with the keys active in the last minute, not with every key ever seen.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _KeyWindow] = {}
        self._last_sweep = clock()

    async def acquire(self, key: VirtualKeyConfig, *, estimated_tokens: int = 0) -> Lease:
        """A lease for one request, or a ``RATE_LIMIT`` :class:`GatewayError` with ``retry_after``."""
        limits = key.limits
        if not has_limits(limits):
            return NOOP_LEASE
        now = self._clock()
        self._sweep(now)
        window = self._windows.get(key.id)
        if window is None:
            window = self._windows[key.id] = _KeyWindow()
        window.expire(now)
        refusal = self._refusal(key.id, limits, window, now, estimated_tokens)
        if refusal is not None:
            if window.idle:
                del self._windows[key.id]
            raise refusal
        window.in_flight += 1
        if limits.requests_per_minute is not None:
            window.requests.append(now)
        return _InProcessLease(self, key.id, window, limits.tokens_per_minute is not None)

    async def aclose(self) -> None:
        """Forget every counter."""
        self._windows.clear()

    def _refusal(
        self, key_id: str, limits: KeyLimits, window: _KeyWindow, now: float, estimated_tokens: int
    ) -> GatewayError | None:
        # Every limit is checked; the one that frees last is reported, since the caller needs all.
        refusals: list[GatewayError] = []
        if limits.max_concurrent is not None and window.in_flight >= limits.max_concurrent:
            refusals.append(
                rate_limited(
                    key_id, "max_concurrent", limits.max_concurrent, window.in_flight, CONCURRENCY_RETRY_S
                )
            )
        rpm = limits.requests_per_minute
        if rpm is not None and len(window.requests) >= rpm:
            frees_at = window.requests[len(window.requests) - rpm] + WINDOW_S
            refusals.append(
                rate_limited(key_id, "requests_per_minute", rpm, len(window.requests), frees_at - now)
            )
        tpm = limits.tokens_per_minute
        if tpm is not None:
            used = window.tokens_total
            needed = min(max(estimated_tokens, 0), tpm)
            if not _tokens_fit(used, needed, tpm):
                buckets = [(second, tokens) for second, tokens in window.tokens]
                wait = _token_retry_after(buckets, used, needed, tpm, now)
                refusals.append(rate_limited(key_id, "tokens_per_minute", tpm, used, wait))
        if not refusals:
            return None
        return max(refusals, key=lambda err: err.retry_after or 0.0)

    def _release(self, key_id: str, window: _KeyWindow, used_tokens: int) -> None:
        now = self._clock()
        window.in_flight -= 1
        if used_tokens > 0:
            window.record_tokens(now, used_tokens)
        window.expire(now)
        if window.idle and self._windows.get(key_id) is window:
            del self._windows[key_id]

    def _sweep(self, now: float) -> None:
        # Amortised: at most once a window, drop keys whose counters have all aged out.
        if now - self._last_sweep < WINDOW_S:
            return
        self._last_sweep = now
        for key_id, window in list(self._windows.items()):
            window.expire(now)
            if window.idle:
                del self._windows[key_id]

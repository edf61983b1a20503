"""Per-virtual-key limits: concurrency, requests per minute and tokens per minute.

A request takes a :class:`Lease` from the :class:`Limiter` before it is dispatched and releases it
when it is recorded, reporting the tokens it used. Both windows slide over the last 60 seconds:
requests are logged with their admission time (exact), tokens are summed in one-second buckets.
This module holds the protocols, the in-process limiter and the factory; the shared one is in
:mod:`bedrock_mw.limits_redis`. ``docs/limits.md`` has the full semantics.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Literal, Protocol

from .config import ConfigError, KeyLimits, LimitsConfig, VirtualKeyConfig
from .errors import ErrorKind, GatewayError

__all__ = [
    "NOOP_LEASE",
    "WINDOW_S",
    "InProcessLimiter",
    "Lease",
    "Limiter",
    "create_limiter",
    "has_limits",
    "rate_limited",
]

WINDOW_S: Final = 60.0
# When a concurrency slot frees is unknowable; one second is a polite retry interval.
CONCURRENCY_RETRY_S: Final = 1.0

LimitName = Literal["max_concurrent", "requests_per_minute", "tokens_per_minute"]


class Lease(Protocol):
    """A granted admission; release it exactly once the request is done (extra calls are no-ops)."""

    async def release(self, *, used_tokens: int = 0) -> None:
        """Free the concurrency slot and record ``used_tokens`` against tokens-per-minute."""
        ...


class Limiter(Protocol):
    """Admits or refuses a request for a virtual key against its :class:`KeyLimits`."""

    async def acquire(self, key: VirtualKeyConfig, *, estimated_tokens: int = 0) -> Lease:
        """A lease for one request, or a ``RATE_LIMIT`` :class:`GatewayError` with ``retry_after``."""
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...


class _NoopLease:
    """The lease for keys without limits: nothing to free, nothing to record."""

    __slots__ = ()

    async def release(self, *, used_tokens: int = 0) -> None:
        return None


NOOP_LEASE: Final[Lease] = _NoopLease()


def has_limits(limits: KeyLimits) -> bool:
    """Whether any limit is set; keys without one take :data:`NOOP_LEASE` and cost nothing."""
    return (
        limits.max_concurrent is not None
        or limits.requests_per_minute is not None
        or limits.tokens_per_minute is not None
    )


def rate_limited(key_id: str, limit: LimitName, value: int, current: int, retry_after: float) -> GatewayError:
    """The 429 for ``key_id`` over ``limit``, saying its value and when it frees."""
    wait = max(retry_after, 0.0)
    if limit == "max_concurrent":
        detail = (
            f"has {current} requests in flight, its max_concurrent limit of {value}; "
            "a slot frees when one of them finishes"
        )
    elif limit == "requests_per_minute":
        detail = (
            f"made {current} requests in the last minute, its requests_per_minute limit of {value}; "
            f"the next one is allowed in {wait:.1f}s"
        )
    else:
        detail = (
            f"used {current} tokens in the last minute against its tokens_per_minute limit of {value}; "
            f"enough frees in {wait:.1f}s"
        )
    return GatewayError(
        ErrorKind.RATE_LIMIT, f"virtual key {key_id!r} {detail}", retry_after=max(wait, 0.001)
    )


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

    __slots__ = ("in_flight", "requests", "tokens")

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests: deque[float] = deque()  # admission times, oldest first
        self.tokens: deque[list[int]] = deque()  # [whole second, tokens], oldest first

    def expire(self, now: float) -> None:
        cutoff = now - WINDOW_S
        while self.requests and self.requests[0] <= cutoff:
            self.requests.popleft()
        oldest_second = math.floor(now) - WINDOW_S
        while self.tokens and self.tokens[0][0] <= oldest_second:
            self.tokens.popleft()

    @property
    def idle(self) -> bool:
        return self.in_flight == 0 and not self.requests and not self.tokens

    def record_tokens(self, now: float, used: int) -> None:
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
            used = sum(tokens for _, tokens in window.tokens)
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


def create_limiter(config: LimitsConfig) -> Limiter:
    """A :class:`RedisLimiter` when ``redis_url`` is set (shared by every worker), else in-process."""
    if config.redis_url is None:
        return InProcessLimiter()
    try:
        from .limits_redis import RedisLimiter
    except ImportError:
        raise ConfigError(
            "limits.redis_url is set but the redis client is not installed: pip install 'bedrock-mw[redis]'"
        ) from None
    return RedisLimiter(config.redis_url.get_secret_value(), config.redis_prefix)

"""Per-virtual-key limits: concurrency, requests per minute and tokens per minute.

A request takes a :class:`Lease` from the :class:`Limiter` before it is dispatched and releases it
when it is recorded, reporting the tokens it used. Both windows slide over the last 60 seconds:
requests are logged with their admission time (exact), tokens are summed in one-second buckets.
This module holds the protocols and what both limiters share; the in-process limiter is in
:mod:`.memory`, the shared one in :mod:`.redis_limiter`. ``docs/limits.md`` has the full semantics.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

from ..config import KeyLimits, VirtualKeyConfig
from ..errors import ErrorKind, GatewayError

__all__ = [
    "NOOP_LEASE",
    "WINDOW_S",
    "Lease",
    "Limiter",
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

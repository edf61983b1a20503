"""The emulated prompt cache, scoped per (account/credential, region, model) like Bedrock's.

On a request with cachePoints, the longest prefix already cached (and not expired) is *read*; the
tokens from there up to the last cachePoint are *written*. Reading refreshes the entry's TTL.
Unlike Anthropic there is no minimum cacheable length, so tests can use short prompts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .tokens import InputPlan

CacheScope = tuple[str, str, str]


@dataclass(frozen=True)
class CacheUsage:
    """Input tokens served from / written to the cache by one request."""

    read: int = 0
    write: int = 0


class PromptCache:
    """Digest-keyed prefix cache with per-entry TTL."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[tuple[CacheScope, str], float] = {}
        self._lock = threading.Lock()

    def apply(self, scope: CacheScope, plan: InputPlan) -> CacheUsage:
        """Look up and update the cache for one request's boundaries."""
        boundaries = plan.boundaries
        if not boundaries:
            return CacheUsage()
        now = self._clock()
        with self._lock:
            hit = -1
            for index in range(len(boundaries) - 1, -1, -1):
                expiry = self._expiry.get((scope, boundaries[index].digest))
                if expiry is not None and expiry > now:
                    hit = index
                    break
            read = boundaries[hit].tokens if hit >= 0 else 0
            for boundary in boundaries[max(hit, 0) :]:
                self._expiry[(scope, boundary.digest)] = now + boundary.ttl_s
        write = boundaries[-1].tokens - read if hit < len(boundaries) - 1 else 0
        return CacheUsage(read=read, write=write)

    def clear(self) -> None:
        """Forget every cached prefix."""
        with self._lock:
            self._expiry.clear()

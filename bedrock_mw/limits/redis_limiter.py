"""Per-virtual-key limits shared by every worker and host, kept in Redis.

Each check-and-admit is one Lua script, so it is atomic, and it reads Redis's own clock
(``TIME``) so hosts with skewed clocks agree. Per key there are three Redis keys, all with a TTL
and all in one cluster slot:

- ``<prefix>:limits:{<key id>}:inflight`` sorted set of lease ids scored by expiry (now + lease TTL):
  a worker that dies mid-request loses its leases when they expire, not forever;
- ``...:requests`` sorted set of lease ids scored by admission time: an exact 60 s sliding window;
- ``...:tokens`` hash of whole second -> tokens used, summed over the last 60 s.

If Redis cannot be reached the limiter fails open by default (admits, logs a warning) so a Redis
outage does not take the gateway down; ``fail_open=False`` refuses with a 503 instead.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Final
from urllib.parse import quote

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..config import VirtualKeyConfig
from ..errors import ErrorKind, GatewayError
from .base import NOOP_LEASE, Lease, LimitName, has_limits, rate_limited

__all__ = ["RedisLimiter", "redis_keys"]

log = logging.getLogger(__name__)

_LIMIT_NAMES: Final[dict[int, LimitName]] = {
    1: "max_concurrent",
    2: "requests_per_minute",
    3: "tokens_per_minute",
}
_WARN_EVERY_S: Final = 30.0

# KEYS: inflight zset, requests zset, tokens hash.
# ARGV: lease id, lease TTL ms, max_concurrent, requests_per_minute, tokens_per_minute (0 = no
# limit), estimated tokens. Returns {0} when admitted, else {limit code, limit, retry ms, current},
# the refusal that frees last (the caller needs every limit to free).
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_id, ttl = ARGV[1], tonumber(ARGV[2])
local max_conc, rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local estimated = tonumber(ARGV[6])
local refusal = nil
local function refuse(code, limit, retry, current)
  if refusal == nil or retry > refusal[3] then refusal = {code, limit, retry, current} end
end
if max_conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local n = redis.call('ZCARD', KEYS[1])
  if n >= max_conc then refuse(1, max_conc, 1000, n) end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
  local n = redis.call('ZCARD', KEYS[2])
  if n >= rpm then
    local frees = redis.call('ZRANGE', KEYS[2], n - rpm, n - rpm, 'WITHSCORES')
    refuse(2, rpm, tonumber(frees[2]) + 60000 - now, n)
  end
end
if tpm > 0 then
  local second = math.floor(now / 1000)
  local flat = redis.call('HGETALL', KEYS[3])
  local buckets, used = {}, 0
  for i = 1, #flat, 2 do
    local s, tokens = tonumber(flat[i]), tonumber(flat[i + 1])
    if s <= second - 60 then
      redis.call('HDEL', KEYS[3], flat[i])
    else
      used = used + tokens
      table.insert(buckets, {s, tokens})
    end
  end
  local needed = math.min(estimated, tpm)
  if used >= tpm or used + needed > tpm then
    table.sort(buckets, function(a, b) return a[1] < b[1] end)
    local remaining, retry = used, 60000
    for _, bucket in ipairs(buckets) do
      remaining = remaining - bucket[2]
      if remaining < tpm and remaining + needed <= tpm then
        retry = (bucket[1] + 60) * 1000 - now
        break
      end
    end
    refuse(3, tpm, retry, used)
  end
end
if refusal ~= nil then return refusal end
if max_conc > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, lease_id)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
if rpm > 0 then
  redis.call('ZADD', KEYS[2], now, lease_id)
  redis.call('PEXPIRE', KEYS[2], 60000)
end
return {0}
"""

# KEYS: inflight zset, tokens hash. ARGV: lease id, tokens used (0 = none to record).
_RELEASE: Final = """
redis.call('ZREM', KEYS[1], ARGV[1])
local used = tonumber(ARGV[2])
if used > 0 then
  local t = redis.call('TIME')
  redis.call('HINCRBY', KEYS[2], t[1], used)
  redis.call('EXPIRE', KEYS[2], 61)
end
return 0
"""


def redis_keys(prefix: str, key_id: str) -> tuple[str, str, str]:
    """The in-flight, requests and tokens keys for ``key_id``; one hash tag keeps them in one slot."""
    tag = quote(key_id, safe="")  # no braces or separators from the id can leak into the key
    base = f"{prefix}:limits:{{{tag}}}"
    return f"{base}:inflight", f"{base}:requests", f"{base}:tokens"


class _RedisLease:
    __slots__ = ("_keys", "_lease_id", "_limiter", "_record_tokens", "_released", "_track_inflight")

    def __init__(
        self,
        limiter: RedisLimiter,
        keys: tuple[str, str, str],
        lease_id: str,
        *,
        track_inflight: bool,
        record_tokens: bool,
    ) -> None:
        self._limiter = limiter
        self._keys = keys
        self._lease_id = lease_id
        self._track_inflight = track_inflight
        self._record_tokens = record_tokens
        self._released = False

    async def release(self, *, used_tokens: int = 0) -> None:
        if self._released:
            return
        self._released = True
        tokens = max(used_tokens, 0) if self._record_tokens else 0
        if not self._track_inflight and tokens == 0:
            return
        await self._limiter._release(self._keys, self._lease_id, tokens)


class RedisLimiter:
    """Limits shared through Redis by every worker and host using the same ``prefix``."""

    def __init__(
        self,
        url: str,
        prefix: str = "bedrock-mw",
        *,
        lease_ttl_s: float = 900.0,
        client: Redis | None = None,
        fail_open: bool = True,
        timeout_s: float = 1.0,
    ) -> None:
        # from_url connects lazily: constructing the limiter does no I/O.
        self._owns_client = client is None
        self._client: Redis = (
            client
            if client is not None
            else Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        )
        self._prefix = prefix
        self._lease_ttl_ms = max(1, round(lease_ttl_s * 1000))
        self._fail_open = fail_open
        self._acquire_script = self._client.register_script(_ACQUIRE)
        self._release_script = self._client.register_script(_RELEASE)
        self._last_warning = -_WARN_EVERY_S
        self._suppressed = 0

    async def acquire(self, key: VirtualKeyConfig, *, estimated_tokens: int = 0) -> Lease:
        """A lease for one request, or a ``RATE_LIMIT`` :class:`GatewayError` with ``retry_after``."""
        limits = key.limits
        if not has_limits(limits):
            return NOOP_LEASE
        keys = redis_keys(self._prefix, key.id)
        lease_id = secrets.token_hex(12)
        args = (
            lease_id,
            self._lease_ttl_ms,
            limits.max_concurrent or 0,
            limits.requests_per_minute or 0,
            limits.tokens_per_minute or 0,
            max(estimated_tokens, 0),
        )
        try:
            # Shielded so a cancelled request cannot leave a lease admitted but never handed out.
            with anyio.CancelScope(shield=True):
                result: Any = await self._acquire_script(keys=list(keys), args=list(args))
        except (RedisError, OSError) as exc:
            return self._unavailable("acquire", key.id, exc)
        code = int(result[0])
        if code != 0:
            limit, retry_ms, current = int(result[1]), int(result[2]), int(result[3])
            raise rate_limited(key.id, _LIMIT_NAMES[code], limit, current, retry_ms / 1000)
        return _RedisLease(
            self,
            keys,
            lease_id,
            track_inflight=limits.max_concurrent is not None,
            record_tokens=limits.tokens_per_minute is not None,
        )

    async def aclose(self) -> None:
        """Close the connection pool, if this limiter created it."""
        if self._owns_client:
            await self._client.aclose()

    async def _release(self, keys: tuple[str, str, str], lease_id: str, used_tokens: int) -> None:
        try:
            # Shielded: release runs in cleanup paths, often while the request is being cancelled.
            with anyio.CancelScope(shield=True):
                await self._release_script(keys=[keys[0], keys[2]], args=[lease_id, used_tokens])
        except (RedisError, OSError) as exc:
            # Never raise from cleanup; the lease's TTL frees the slot later.
            self._warn("release", keys[0], exc)

    def _unavailable(self, operation: str, key_id: str, exc: BaseException) -> Lease:
        self._warn(operation, key_id, exc)
        if self._fail_open:
            return NOOP_LEASE
        raise GatewayError(
            ErrorKind.OVERLOADED,
            "the rate limiter's store is unreachable; try again shortly",
            status=503,
            retry_after=1.0,
        ) from None

    def _warn(self, operation: str, key: str, exc: BaseException) -> None:
        # A Redis outage would otherwise log once per request; say it at most every 30 s.
        now = time.monotonic()
        if now - self._last_warning < _WARN_EVERY_S:
            self._suppressed += 1
            return
        policy = "admitting requests unchecked" if self._fail_open else "refusing requests"
        log.warning(
            "rate limiter: Redis %s failed for %s (%s: %s); %s (%d similar warnings suppressed)",
            operation,
            key,
            type(exc).__name__,
            exc,
            policy,
            self._suppressed,
        )
        self._last_warning = now
        self._suppressed = 0

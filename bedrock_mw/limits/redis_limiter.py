"""Per-virtual-key limits shared by every worker and host, kept in Redis.

Each check-and-admit is one Lua script, so it is atomic, and it reads Redis's own clock
(``TIME``) so hosts with skewed clocks agree. Per key there are four Redis keys, all with a TTL
and all in one cluster slot:

- ``<prefix>:limits:{<key id>}:inflight`` sorted set of lease ids scored by expiry (now + lease TTL,
  30 s by default). One keep-alive task per limiter renews the leases this process holds, in one
  pipelined batch per ``lease_ttl_s / 3``, so a long stream stays counted while a worker that
  dies mid-request loses its leases within the TTL;
- ``...:requests`` sorted set of lease ids scored by admission time: an exact 60 s sliding window;
- ``...:tokens`` hash of whole second -> tokens used, summed over the last 60 s;
- ``...:revoked`` sorted set of lease ids this gateway gave up on, scored by expiry.

A script whose caller gave up (a Redis stall past ``timeout_s``: the request was admitted
uncounted) can still run when Redis resumes and would take a slot nobody releases. The lease id is
made here, before the call, so the limiter remembers it and *revokes* it with its next script for
that key (or the next keep-alive): the revocation removes the lease and leaves a tombstone that
turns the late script into a no-op, so whichever of the two runs first, the slot is free. The
limiter's own client never retries a command for the same reason: a retried copy could run after
the request had already released its lease.

If Redis cannot be reached the limiter fails open by default (admits, logs a warning) so a Redis
outage does not take the gateway down; ``fail_open=False`` refuses with a 503 instead.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any, Final
from urllib.parse import quote

import anyio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
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
# How long a tombstone outlives its revocation: longer than any stall a late script could come
# out of. A script later still takes a slot for one lease TTL (it is never renewed).
_REVOKED_TTL_MS: Final = 15 * 60 * 1000
# Revocations waiting for Redis to answer, at most (one per request admitted during an outage);
# past it new ones are not kept, and any slot such a script takes frees within the lease TTL.
_MAX_REVOCATIONS: Final = 10_000

RedisKeys = tuple[str, str, str, str]

# Both scripts start from Redis's clock and may carry lease ids to revoke (ARGV[first] onwards):
# each is removed from the in-flight and requests sets and tombstoned, so a late acquire of it
# (see _ACQUIRE) does nothing. KEYS: inflight zset, requests zset, tokens hash, revoked zset.
_PRELUDE: Final = f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function revoke(first)
  if first > #ARGV then return end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  for i = first, #ARGV do
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    redis.call('ZADD', KEYS[4], now + {_REVOKED_TTL_MS}, ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[4], {_REVOKED_TTL_MS})
end
"""

# ARGV: lease id, lease TTL ms, max_concurrent, requests_per_minute, tokens_per_minute (0 = no
# limit), estimated tokens, then lease ids to revoke. Returns {0} when admitted, {-1} when this
# lease was revoked before the script ran (its caller gave up), else {limit code, limit, retry ms,
# current}, the refusal that frees last (the caller needs every limit to free).
_ACQUIRE: Final = (
    _PRELUDE
    + """
revoke(7)
local lease_id, ttl = ARGV[1], tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[4], lease_id) then return {-1} end
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
)

# The keep-alive. ARGV: lease TTL ms, n, n lease ids to renew, then lease ids to revoke. Renewing
# only updates leases still there (XX): one released or expired meanwhile is not brought back.
_MAINTAIN: Final = (
    _PRELUDE
    + """
local ttl, n = tonumber(ARGV[1]), tonumber(ARGV[2])
revoke(3 + n)
if n > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  for i = 3, 2 + n do redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i]) end
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return 0
"""
)

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


def redis_keys(prefix: str, key_id: str) -> RedisKeys:
    """The in-flight, requests, tokens and revoked keys for ``key_id``, in one hash-tag slot."""
    tag = quote(key_id, safe="")  # no braces or separators from the id can leak into the key
    base = f"{prefix}:limits:{{{tag}}}"
    return f"{base}:inflight", f"{base}:requests", f"{base}:tokens", f"{base}:revoked"


class _RedisLease:
    __slots__ = ("_keys", "_lease_id", "_limiter", "_record_tokens", "_released", "_track_inflight")

    def __init__(
        self,
        limiter: RedisLimiter,
        keys: RedisKeys,
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
        if self._track_inflight:
            self._limiter._held.forget(self._keys, self._lease_id)
        await self._limiter._release(self._keys, self._lease_id, tokens)


class _LeaseBook:
    """Lease ids per virtual key (their Redis keys): insertion-ordered sets, dropped when empty."""

    __slots__ = ("_ids", "size")

    def __init__(self) -> None:
        self._ids: dict[RedisKeys, dict[str, None]] = {}
        self.size = 0

    def __bool__(self) -> bool:
        return self.size > 0

    def add(self, keys: RedisKeys, lease_id: str) -> None:
        ids = self._ids.setdefault(keys, {})
        if lease_id not in ids:
            ids[lease_id] = None
            self.size += 1

    def forget(self, keys: RedisKeys, lease_id: str) -> None:
        ids = self._ids.get(keys)
        if ids is None or lease_id not in ids:
            return
        del ids[lease_id]
        self.size -= 1
        if not ids:
            del self._ids[keys]

    def take(self, keys: RedisKeys) -> list[str]:
        """Remove and return the ids of ``keys``."""
        ids = self._ids.pop(keys, {})
        self.size -= len(ids)
        return list(ids)

    def take_all(self) -> dict[RedisKeys, list[str]]:
        taken = {keys: list(ids) for keys, ids in self._ids.items()}
        self._ids.clear()
        self.size = 0
        return taken

    def snapshot(self) -> dict[RedisKeys, list[str]]:
        return {keys: list(ids) for keys, ids in self._ids.items()}


def no_retry_client(url: str, timeout_s: float) -> Redis:
    """The Redis client the limiter and the budget ledger own: lazy, bounded waits, no retries.

    ``from_url`` connects lazily, so building one does no I/O. No retries: a retried script could
    run twice, the first copy after its lease or hold was released (see the module doc).
    """
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


class RedisLimiter:
    """Limits shared through Redis by every worker and host using the same ``prefix``."""

    def __init__(
        self,
        url: str,
        prefix: str = "bedrock-mw",
        *,
        lease_ttl_s: float = 30.0,
        client: Redis | None = None,
        fail_open: bool = True,
        timeout_s: float = 1.0,
    ) -> None:
        self._owns_client = client is None
        self._client: Redis = client if client is not None else no_retry_client(url, timeout_s)
        self._prefix = prefix
        self._lease_ttl_ms = max(1, round(lease_ttl_s * 1000))
        self._renew_every_s = lease_ttl_s / 3  # two renewals may fail before a live lease lapses
        self._fail_open = fail_open
        self._acquire_script = self._client.register_script(_ACQUIRE)
        self._release_script = self._client.register_script(_RELEASE)
        self._maintain_script = self._client.register_script(_MAINTAIN)
        self._held = _LeaseBook()  # leases of this process in flight: the keep-alive renews them
        self._revoking = _LeaseBook()  # leases whose acquire failed here: revoked once Redis answers
        self._keeper: asyncio.Task[None] | None = None
        self._last_warning = -_WARN_EVERY_S
        self._suppressed = 0
        self._dropped_revocations = 0

    async def acquire(self, key: VirtualKeyConfig, *, estimated_tokens: int = 0) -> Lease:
        """A lease for one request, or a ``RATE_LIMIT`` :class:`GatewayError` with ``retry_after``."""
        limits = key.limits
        if not has_limits(limits):
            return NOOP_LEASE
        keys = redis_keys(self._prefix, key.id)
        lease_id = secrets.token_hex(12)
        revoke = self._revoking.take(keys)
        args: list[str | int] = [
            lease_id,
            self._lease_ttl_ms,
            limits.max_concurrent or 0,
            limits.requests_per_minute or 0,
            limits.tokens_per_minute or 0,
            max(estimated_tokens, 0),
            *revoke,
        ]
        try:
            # Shielded so a cancelled request cannot leave a lease admitted but never handed out.
            with anyio.CancelScope(shield=True):
                result: Any = await self._acquire_script(keys=list(keys), args=args)
        except (RedisError, OSError) as exc:
            # The script may still run when Redis resumes: revoke this lease (and the carried ones).
            writes = limits.max_concurrent is not None or limits.requests_per_minute is not None
            self._remember_revocations(keys, [*revoke, lease_id] if writes else revoke)
            return self._unavailable("acquire", key.id, exc)
        code = int(result[0])
        if code > 0:
            limit, retry_ms, current = int(result[1]), int(result[2]), int(result[3])
            raise rate_limited(key.id, _LIMIT_NAMES[code], limit, current, retry_ms / 1000)
        if code < 0:  # only a caller that already gave up can be told this; admit it uncounted
            return NOOP_LEASE
        track_inflight = limits.max_concurrent is not None
        if track_inflight:
            self._held.add(keys, lease_id)
            self._keep_alive()
        return _RedisLease(
            self,
            keys,
            lease_id,
            track_inflight=track_inflight,
            record_tokens=limits.tokens_per_minute is not None,
        )

    async def aclose(self) -> None:
        """Stop the keep-alive and close the connection pool, if this limiter created it."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper.get_loop() is asyncio.get_running_loop():
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()

    async def maintain(self) -> None:
        """Renew this process's leases and send pending revocations now (the keep-alive's step)."""
        renew = self._held.snapshot()
        revoke = self._revoking.take_all()
        if not renew and not revoke:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for keys in renew.keys() | revoke.keys():
                    ids = renew.get(keys, [])
                    args: list[str | int] = [self._lease_ttl_ms, len(ids), *ids, *revoke.get(keys, [])]
                    await self._maintain_script(keys=list(keys), args=args, client=pipe)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            for keys, ids in revoke.items():
                self._remember_revocations(keys, ids)
            self._warn("lease renewal", f"{len(renew)} keys", exc)

    def _keep_alive(self) -> None:
        """Start the keep-alive task unless one runs; it stops once nothing is left to maintain."""
        loop = asyncio.get_running_loop()
        keeper = self._keeper
        if keeper is not None and not keeper.done() and keeper.get_loop() is loop:
            return
        self._keeper = loop.create_task(self._keep_renewing(), name="bedrock-mw lease keep-alive")

    async def _keep_renewing(self) -> None:
        try:
            while self._held or self._revoking:
                await asyncio.sleep(self._renew_every_s)
                await self.maintain()
        finally:
            # Reached with no await since the loop's last check: an acquire starts a new task.
            if self._keeper is asyncio.current_task():
                self._keeper = None

    def _remember_revocations(self, keys: RedisKeys, lease_ids: list[str]) -> None:
        room = max(_MAX_REVOCATIONS - self._revoking.size, 0)
        for lease_id in lease_ids[:room]:
            self._revoking.add(keys, lease_id)
        self._dropped_revocations += max(len(lease_ids) - room, 0)  # told in the next warning
        if self._revoking:
            self._keep_alive()

    async def _release(self, keys: RedisKeys, lease_id: str, used_tokens: int) -> None:
        try:
            # Shielded: release runs in cleanup paths, often while the request is being cancelled.
            with anyio.CancelScope(shield=True):
                await self._release_script(keys=[keys[0], keys[2]], args=[lease_id, used_tokens])
        except (RedisError, OSError) as exc:
            # Never raise from cleanup; no longer renewed, the lease lapses within its TTL.
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
            "rate limiter: Redis %s failed for %s (%s: %s); %s (%d similar warnings suppressed, "
            "%d revocations past the cap of pending ones left to lapse)",
            operation,
            key,
            type(exc).__name__,
            exc,
            policy,
            self._suppressed,
            self._dropped_revocations,
        )
        self._last_warning = now
        self._suppressed = 0
        self._dropped_revocations = 0

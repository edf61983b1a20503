"""Dollar budgets shared through Redis by every worker and host, with the in-process ledger's rules.

Each budget is one Redis hash, ``<prefix>:budget:{<kind>:<id>}``, whose fields are periods
(``d<days since epoch>``, ``m<YYYYMM>``, ``t``) holding micro-dollars spent or reserved. Reserving is
one Lua script: it reads Redis's clock (``TIME``), works out each budget's current period from it,
refuses if any is already spent, and otherwise adds the reservation to all of them, atomically.
Settling adds the difference to the same fields the reservation used, so a request that straddles
midnight settles in the period it was admitted in. Budgets of one request may live in different
cluster slots; the scripts name every key they touch in ``KEYS``, so Redis Cluster needs the
budgets a request counts against (a key and its groups) to share a slot: give them a common hash tag
through ``redis_prefix`` if you run a cluster.

A reservation has an id made here, before the call, and the script keeps a record of it
(``<first budget>:hold:<id>``: the amount and the fields it went to) until it is settled. A
reservation script whose caller gave up (a Redis stall past ``timeout_s``: the request was admitted
uncounted) can still run when Redis resumes and would count money nobody settles, for ever with a
``total`` budget. The ledger remembers the ids it gave up on and revokes each once Redis answers
again: the record says what to give back, and the revocation leaves in its place a tombstone that
turns a late script into a no-op, so whichever runs first nothing stays reserved. The ledger's own
client never retries a command: a retried copy could run after its hold was settled.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..errors import ErrorKind, GatewayError
from .budgets import (
    NO_HOLD,
    BudgetHold,
    BudgetScope,
    BudgetStatus,
    SettledOnce,
    budget_exceeded,
    micro_usd,
    status_of,
)
from .redis_limiter import no_retry_client

__all__ = ["RedisBudgets", "budget_key", "hold_key"]

log = logging.getLogger(__name__)
_WARN_EVERY_S: Final = 30.0
# How long a hold's record (and a revocation's tombstone) lives: records are deleted when settled,
# so this only bounds those of a process that died, and outlasts any stall a late script comes out of.
_HOLD_TTL_MS: Final = 15 * 60 * 1000
# A hold's record outlives any request (the providers' total_s is 15 minutes by default): settling
# applies only while it exists.
_RECORD_TTL_MS: Final = 2 * 60 * 60 * 1000
# Revocations wait in memory for Redis to answer, at most this many, retried this often.
_MAX_REVOCATIONS: Final = 10_000
_REVOKE_EVERY_S: Final = 1.0

# Howard Hinnant's civil-from-days, to name the month from Redis's clock inside the script.
_PERIODS: Final = """
local function month_of(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor(
    (doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('m%04d%02d', y, m)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local days = math.floor(tonumber(t[1]) / 86400)
local function field_of(period)
  if period == 'day' then return 'd' .. days end
  if period == 'month' then return month_of(days) end
  return 't'
end
"""

# KEYS: one hash per budget, then the hold's record. ARGV: amount (micro-USD), then per budget its
# period and limit. Returns {0, now, fields...} when reserved, {-1, now} when the hold was revoked
# before the script ran (only its caller, who gave up, could be told), else {index of the spent
# budget, now, used}.
_RESERVE: Final = (
    _PERIODS
    + """
local n, hold = #KEYS - 1, KEYS[#KEYS]
if redis.call('EXISTS', hold) == 1 then return {-1, tostring(now)} end
local amount = tonumber(ARGV[1])
local fields = {}
for i = 1, n do
  local field = field_of(ARGV[2 * i])
  local used = tonumber(redis.call('HGET', KEYS[i], field) or '0')
  if used >= tonumber(ARGV[2 * i + 1]) then return {i, tostring(now), used} end
  fields[i] = field
end
for i = 1, n do redis.call('HINCRBY', KEYS[i], fields[i], amount) end
redis.call('SET', hold, amount .. ' ' .. table.concat(fields, ' '), 'PX', RECORD_TTL_MS)
local reply = {0, tostring(now)}
for i = 1, #fields do reply[#reply + 1] = fields[i] end
return reply
"""
).replace("RECORD_TTL_MS", str(_RECORD_TTL_MS))

# KEYS: the hashes reserved against, then the hold's record. ARGV: delta (micro-USD), then the
# fields reserved in.
_SETTLE: Final = """
-- Only while the hold's record exists, so a settle sent again after a stall (or a stalled copy that
-- runs late) moves the budgets once.
if redis.call('DEL', KEYS[#KEYS]) == 0 then return 0 end
local delta = tonumber(ARGV[1])
if delta == 0 then return 0 end
for i = 1, #KEYS - 1 do
  local left = redis.call('HINCRBY', KEYS[i], ARGV[i + 1], delta)
  if left < 0 then redis.call('HSET', KEYS[i], ARGV[i + 1], 0) end
end
return 0
"""

# KEYS: the hashes of a reservation its caller gave up on, then its record. Gives back what the
# record says was reserved (the script ran) and leaves a tombstone (for a script yet to run).
_REVOKE: Final = """
local hold = KEYS[#KEYS]
local record = redis.call('GET', hold)
if record and record ~= 'revoked' then
  local parts = {}
  for part in string.gmatch(record, '%S+') do parts[#parts + 1] = part end
  local amount = tonumber(parts[1])
  for i = 1, #KEYS - 1 do
    local left = redis.call('HINCRBY', KEYS[i], parts[i + 1], -amount)
    if left < 0 then redis.call('HSET', KEYS[i], parts[i + 1], 0) end
  end
end
redis.call('SET', hold, 'revoked', 'PX', HOLD_TTL_MS)
return 0
""".replace("HOLD_TTL_MS", str(_HOLD_TTL_MS))

# KEYS: one hash per budget. ARGV: per budget its period. Returns {now, used...}.
_STATUS: Final = (
    _PERIODS
    + """
local reply = {tostring(now)}
for i = 1, #KEYS do
  reply[#reply + 1] = tonumber(redis.call('HGET', KEYS[i], field_of(ARGV[i])) or '0')
end
return reply
"""
)


def budget_key(prefix: str, scope: BudgetScope) -> str:
    """The Redis hash holding ``scope``'s spending, one per budget."""
    return f"{prefix}:budget:{{{scope.kind}:{quote(scope.id, safe='')}}}"


def hold_key(first_budget_key: str, hold_id: str) -> str:
    """The record of one reservation, in the slot of the first budget it counts against."""
    return f"{first_budget_key}:hold:{hold_id}"


class _RedisHold(SettledOnce):
    __slots__ = ("_budgets", "_fields", "_keys")

    def __init__(self, budgets: RedisBudgets, keys: list[str], fields: list[str], reserved: int) -> None:
        super().__init__(reserved)
        self._budgets = budgets
        self._keys = keys  # the budgets' hashes, then the hold's record
        self._fields = fields

    async def _apply(self, delta: int) -> None:
        # Called even when nothing moves: settling deletes the hold's record.
        await self._budgets._settle(self._keys, self._fields, delta)


class RedisBudgets:
    """Budgets shared through Redis by every worker and host using the same ``prefix``."""

    def __init__(
        self,
        url: str,
        prefix: str = "bedrock-mw",
        *,
        client: Redis | None = None,
        fail_open: bool = True,
        timeout_s: float = 1.0,
    ) -> None:
        self._owns_client = client is None
        self._client: Redis = client if client is not None else no_retry_client(url, timeout_s)
        self._prefix = prefix
        self._fail_open = fail_open
        self._reserve_script = self._client.register_script(_RESERVE)
        self._settle_script = self._client.register_script(_SETTLE)
        self._revoke_script = self._client.register_script(_REVOKE)
        self._status_script = self._client.register_script(_STATUS)
        self._revoking: list[list[str]] = []  # the keys of each reservation given up on
        self._settling: list[tuple[list[str], list[Any]]] = []  # settles that did not reach Redis
        self._dropped_revocations = 0
        self._reviser: asyncio.Task[None] | None = None
        self._last_warning = -_WARN_EVERY_S

    async def reserve(self, scopes: list[BudgetScope], usd: float) -> BudgetHold:
        """Reserve ``usd`` against every scope, or raise the 429 of the first one already spent."""
        if not scopes:
            return NO_HOLD
        budget_keys = [budget_key(self._prefix, s) for s in scopes]
        keys = [*budget_keys, hold_key(budget_keys[0], secrets.token_hex(12))]
        amount = micro_usd(usd)
        args: list[Any] = [amount]
        for scope in scopes:
            args += [scope.period, micro_usd(scope.usd)]
        try:
            # Shielded so a cancelled request cannot leave a reservation that is never settled.
            with anyio.CancelScope(shield=True):
                result: Any = await self._reserve_script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._revoke_later([keys])  # the script may still run when Redis resumes
            return self._unavailable("reserve", exc)
        code, now = int(result[0]), float(result[1])
        if code > 0:
            raise budget_exceeded(scopes[code - 1], int(result[2]), now)
        if code < 0:  # only a caller that already gave up can be told this; admit it uncounted
            return NO_HOLD
        fields = [f.decode() if isinstance(f, bytes) else str(f) for f in result[2:]]
        return _RedisHold(self, keys, fields, amount)

    async def status(self, scopes: list[BudgetScope]) -> list[BudgetStatus]:
        """What is left of each scope now, by Redis's clock."""
        if not scopes:
            return []
        keys = [budget_key(self._prefix, s) for s in scopes]
        result: Any = await self._status_script(keys=keys, args=[s.period for s in scopes])
        now = float(result[0])
        return [status_of(s, int(used), now) for s, used in zip(scopes, result[1:], strict=True)]

    async def revoke_pending(self) -> None:
        """Revoke now the reservations given up on and send again the settles that failed, in one
        pipelined batch (kept if Redis fails)."""
        pending, self._revoking = self._revoking, []
        settles, self._settling = self._settling, []
        if not pending and not settles:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for keys in pending:
                    await self._revoke_script(keys=keys, client=pipe)
                for keys, args in settles:
                    await self._settle_script(keys=keys, args=args, client=pipe)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._revoke_later(pending, settles)
            self._warn("revocation", exc)

    async def aclose(self) -> None:
        """Stop retrying revocations and close the connection pool, if this ledger created it."""
        reviser, self._reviser = self._reviser, None
        if reviser is not None and reviser.get_loop() is asyncio.get_running_loop():
            reviser.cancel()
            await asyncio.gather(reviser, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()

    def _revoke_later(
        self, pending: Sequence[list[str]], settles: Sequence[tuple[list[str], list[Any]]] = ()
    ) -> None:
        room = max(_MAX_REVOCATIONS - len(self._revoking) - len(self._settling), 0)
        kept, kept_settles = pending[:room], settles[: max(room - len(pending), 0)]
        self._revoking.extend(kept)
        self._settling.extend(kept_settles)
        dropped = len(pending) + len(settles) - len(kept) - len(kept_settles)
        self._dropped_revocations += dropped  # told in the next warning
        loop = asyncio.get_running_loop()
        reviser = self._reviser
        waiting = self._revoking or self._settling
        if waiting and (reviser is None or reviser.done() or reviser.get_loop() is not loop):
            self._reviser = loop.create_task(self._keep_revoking(), name="bedrock-mw budget revocations")

    async def _keep_revoking(self) -> None:
        try:
            while self._revoking or self._settling:
                await asyncio.sleep(_REVOKE_EVERY_S)
                await self.revoke_pending()
        finally:
            # Reached with no await since the loop's last check: a new failure starts a new task.
            if self._reviser is asyncio.current_task():
                self._reviser = None

    async def _settle(self, keys: list[str], fields: list[str], delta: int) -> None:
        args: list[Any] = [delta, *fields]
        try:
            with anyio.CancelScope(shield=True):
                await self._settle_script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            # Never raise from cleanup. Sent again once Redis answers: lost, the whole reservation
            # would stay counted for ever; the script applies once however many copies run.
            self._revoke_later([], [(keys, args)])
            self._warn("settle", exc)

    def _unavailable(self, operation: str, exc: BaseException) -> BudgetHold:
        self._warn(operation, exc)
        if self._fail_open:
            return NO_HOLD
        raise GatewayError(
            ErrorKind.OVERLOADED,
            "the budget store is unreachable; try again shortly",
            status=503,
            retry_after=1.0,
        ) from None

    def _warn(self, operation: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning < _WARN_EVERY_S:
            return
        policy = "admitting requests unchecked" if self._fail_open else "refusing requests"
        log.warning(
            "budgets: Redis %s failed (%s: %s); %s (%d revocations past the cap of pending ones dropped)",
            operation,
            type(exc).__name__,
            exc,
            policy,
            self._dropped_revocations,
        )
        self._last_warning = now
        self._dropped_revocations = 0

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
"""

from __future__ import annotations

import logging
import time
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

__all__ = ["RedisBudgets", "budget_key"]

log = logging.getLogger(__name__)
_WARN_EVERY_S: Final = 30.0

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

# KEYS: one hash per budget. ARGV: amount (micro-USD), then per budget its period and limit.
# Returns {0, now, fields...} when reserved, else {index of the spent budget, now, used}.
_RESERVE: Final = (
    _PERIODS
    + """
local amount = tonumber(ARGV[1])
local fields = {}
for i = 1, #KEYS do
  local field = field_of(ARGV[2 * i])
  local used = tonumber(redis.call('HGET', KEYS[i], field) or '0')
  if used >= tonumber(ARGV[2 * i + 1]) then return {i, tostring(now), used} end
  fields[i] = field
end
for i = 1, #KEYS do redis.call('HINCRBY', KEYS[i], fields[i], amount) end
local reply = {0, tostring(now)}
for i = 1, #fields do reply[#reply + 1] = fields[i] end
return reply
"""
)

# KEYS: the hashes reserved against. ARGV: delta (micro-USD), then the fields reserved in.
_SETTLE: Final = """
local delta = tonumber(ARGV[1])
for i = 1, #KEYS do
  local left = redis.call('HINCRBY', KEYS[i], ARGV[i + 1], delta)
  if left < 0 then redis.call('HSET', KEYS[i], ARGV[i + 1], 0) end
end
return 0
"""

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


class _RedisHold(SettledOnce):
    __slots__ = ("_budgets", "_fields", "_keys")

    def __init__(self, budgets: RedisBudgets, keys: list[str], fields: list[str], reserved: int) -> None:
        super().__init__(reserved)
        self._budgets = budgets
        self._keys = keys
        self._fields = fields

    async def _apply(self, delta: int) -> None:
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
        self._client: Redis = (
            client
            if client is not None
            else Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        )
        self._prefix = prefix
        self._fail_open = fail_open
        self._reserve_script = self._client.register_script(_RESERVE)
        self._settle_script = self._client.register_script(_SETTLE)
        self._status_script = self._client.register_script(_STATUS)
        self._last_warning = -_WARN_EVERY_S

    async def reserve(self, scopes: list[BudgetScope], usd: float) -> BudgetHold:
        """Reserve ``usd`` against every scope, or raise the 429 of the first one already spent."""
        if not scopes:
            return NO_HOLD
        keys = [budget_key(self._prefix, s) for s in scopes]
        amount = micro_usd(usd)
        args: list[Any] = [amount]
        for scope in scopes:
            args += [scope.period, micro_usd(scope.usd)]
        try:
            # Shielded so a cancelled request cannot leave a reservation that is never settled.
            with anyio.CancelScope(shield=True):
                result: Any = await self._reserve_script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            return self._unavailable("reserve", exc)
        code, now = int(result[0]), float(result[1])
        if code != 0:
            raise budget_exceeded(scopes[code - 1], int(result[2]), now)
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

    async def aclose(self) -> None:
        """Close the connection pool, if this ledger created it."""
        if self._owns_client:
            await self._client.aclose()

    async def _settle(self, keys: list[str], fields: list[str], delta: int) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self._settle_script(keys=keys, args=[delta, *fields])
        except (RedisError, OSError) as exc:
            self._warn("settle", exc)  # never raise from cleanup; the reservation stays counted

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
        log.warning("budgets: Redis %s failed (%s: %s); %s", operation, type(exc).__name__, exc, policy)
        self._last_warning = now

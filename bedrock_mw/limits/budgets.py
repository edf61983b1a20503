"""Dollar budgets per virtual key and per named group of keys, per UTC day, month or for ever.

A request reserves its most expensive outcome (every input token at the dearest input rate, plus
``max_tokens`` of output) before it is dispatched, and settles to its real cost when it is recorded.
A request is admitted while what is spent and reserved is still *under* the budget, so concurrent
requests can overshoot by at most one request's reservation (the last one admitted), and the
overshoot shrinks to what they really used once they settle. Amounts are kept in whole
micro-dollars so both ledgers add integers. The in-process ledger is here; the shared one, with the
same rules and Redis's clock, is in :mod:`.redis_budgets`. ``docs/budgets.md`` has the semantics.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, Protocol

from ..config import BudgetConfig, BudgetGroupConfig, GatewayConfig, VirtualKeyConfig
from ..errors import ErrorKind, GatewayError

__all__ = [
    "BudgetHold",
    "BudgetLedger",
    "BudgetScope",
    "BudgetStatus",
    "InProcessBudgets",
    "budget_exceeded",
    "micro_usd",
    "period_field",
    "period_reset",
    "scopes_for",
]

Period = Literal["day", "month", "total"]
MICRO: Final = 1_000_000


def micro_usd(usd: float) -> int:
    """Dollars as whole micro-dollars, rounded up (a reservation never comes out smaller)."""
    return max(0, math.ceil(round(usd * MICRO, 3)))


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """One budget a request counts against: its key's own, or a group's."""

    kind: Literal["key", "group"]
    id: str
    usd: float
    period: Period

    @property
    def name(self) -> str:
        return f"{self.kind} {self.id!r}"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """What is left of one budget now (``resets_at`` is ``None`` for a ``total`` budget)."""

    kind: str
    id: str
    period: str
    usd: float
    used_usd: float
    remaining_usd: float
    resets_at: datetime | None


def scopes_for(config: GatewayConfig, key: VirtualKeyConfig) -> list[BudgetScope]:
    """Every budget ``key`` counts against: its own, then each group that lists it."""
    scopes: list[BudgetScope] = []
    if key.budget is not None:
        scopes.append(_scope("key", key.id, key.budget))
    scopes.extend(_scope("group", g.id, g) for g in config.budget_groups_of(key.id))
    return scopes


def _scope(kind: Literal["key", "group"], id_: str, budget: BudgetConfig | BudgetGroupConfig) -> BudgetScope:
    return BudgetScope(kind, id_, budget.usd, budget.period)


def period_field(period: str, now_s: float) -> str:
    """The counter a period's spending is kept in: ``d<days since epoch>``, ``m<YYYYMM>`` or ``t``."""
    if period == "day":
        return f"d{int(now_s // 86400)}"
    if period == "month":
        moment = datetime.fromtimestamp(now_s, UTC)
        return f"m{moment.year:04d}{moment.month:02d}"
    return "t"


def period_reset(period: str, now_s: float) -> datetime | None:
    """When the period that contains ``now_s`` ends (UTC), or ``None`` for ``total``."""
    moment = datetime.fromtimestamp(now_s, UTC)
    if period == "day":
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    if period == "month":
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return datetime(year, month, 1, tzinfo=UTC)
    return None


def budget_exceeded(scope: BudgetScope, used_micro: int, now_s: float) -> GatewayError:
    """The 429 for a spent budget, with ``retry-after`` until it resets (none for ``total``)."""
    resets = period_reset(scope.period, now_s)
    used = used_micro / MICRO
    if resets is None:
        when = "it does not reset (a total budget)"
        retry_after = None
    else:
        when = f"it resets at {resets.isoformat().replace('+00:00', 'Z')}"
        retry_after = max(1.0, resets.timestamp() - now_s)
    return GatewayError(
        ErrorKind.RATE_LIMIT,
        f"the {scope.period} budget of {scope.name} (${scope.usd:.2f}) is spent "
        f"(${used:.4f} used or reserved); {when}",
        code="budget_exceeded",
        retry_after=retry_after,
    )


class BudgetHold(Protocol):
    """A reservation against some budgets; settle it exactly once (extra calls are no-ops)."""

    async def settle(self, used_usd: float | None) -> None:
        """Replace the reservation with what the request really cost (``None``: keep the reservation)."""
        ...


class BudgetLedger(Protocol):
    """Reserves and settles spending against budgets; in process or shared."""

    async def reserve(self, scopes: list[BudgetScope], usd: float) -> BudgetHold:
        """Reserve ``usd`` against every scope, or raise the 429 of the first one already spent."""
        ...

    async def status(self, scopes: list[BudgetScope]) -> list[BudgetStatus]:
        """What is left of each scope now."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class _NoHold:
    __slots__ = ()

    async def settle(self, used_usd: float | None) -> None:
        return None


NO_HOLD: Final[BudgetHold] = _NoHold()


def status_of(scope: BudgetScope, used_micro: int, now_s: float) -> BudgetStatus:
    """A scope's :class:`BudgetStatus` from its counter."""
    used = used_micro / MICRO
    return BudgetStatus(
        scope.kind,
        scope.id,
        scope.period,
        scope.usd,
        used,
        max(0.0, scope.usd - used),
        period_reset(scope.period, now_s),
    )


class SettledOnce(ABC):
    """A reservation settled once with the request's real cost (extra calls are no-ops).

    Subclasses say how to move each reserved counter by ``delta`` micro-dollars (positive: the call
    cost more than reserved; negative: the unused part is given back; 0 when the cost is unknown,
    so the reservation stands). ``_apply`` runs exactly once per hold.
    """

    __slots__ = ("_reserved", "_settled")

    def __init__(self, reserved: int) -> None:
        self._reserved = reserved
        self._settled = False

    async def settle(self, used_usd: float | None) -> None:
        if self._settled:
            return
        self._settled = True
        await self._apply(0 if used_usd is None else micro_usd(used_usd) - self._reserved)

    @abstractmethod
    async def _apply(self, delta: int) -> None:
        """Move each reserved counter by ``delta`` micro-dollars."""


class _MemoryHold(SettledOnce):
    __slots__ = ("_counters", "_fields", "_ledger")

    def __init__(
        self, ledger: InProcessBudgets, counters: list[str], fields: list[str], reserved: int
    ) -> None:
        super().__init__(reserved)
        self._ledger = ledger
        self._counters = counters
        self._fields = fields

    async def _apply(self, delta: int) -> None:
        if not delta:
            return
        for counter, field in zip(self._counters, self._fields, strict=True):
            self._ledger._add(counter, field, delta)


class InProcessBudgets:
    """Budgets kept in this process (one worker): exact, but not shared between workers."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._used: dict[tuple[str, str], int] = {}
        self._now = clock

    async def reserve(self, scopes: list[BudgetScope], usd: float) -> BudgetHold:
        if not scopes:
            return NO_HOLD
        now = self._now()
        counters = [f"{s.kind}:{s.id}" for s in scopes]
        fields = [period_field(s.period, now) for s in scopes]
        # No await between the check and the add: atomic on the event loop.
        for scope, counter, field in zip(scopes, counters, fields, strict=True):
            used = self._used.get((counter, field), 0)
            if used >= micro_usd(scope.usd):
                raise budget_exceeded(scope, used, now)
        amount = micro_usd(usd)
        for counter, field in zip(counters, fields, strict=True):
            self._add(counter, field, amount)
        return _MemoryHold(self, counters, fields, amount)

    async def status(self, scopes: list[BudgetScope]) -> list[BudgetStatus]:
        now = self._now()
        return [
            status_of(s, self._used.get((f"{s.kind}:{s.id}", period_field(s.period, now)), 0), now)
            for s in scopes
        ]

    async def aclose(self) -> None:
        return None

    def _add(self, counter: str, field: str, amount: int) -> None:
        slot = (counter, field)
        self._used[slot] = max(0, self._used.get(slot, 0) + amount)

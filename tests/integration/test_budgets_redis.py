"""The Redis budget ledger against a real redis-server: Redis's clock names the period, atomic reserve."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest
from redis.asyncio import Redis

from bedrock_mw.errors import GatewayError
from bedrock_mw.limits.budgets import BudgetScope, period_field
from bedrock_mw.limits.redis_budgets import RedisBudgets, budget_key

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ledger(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisBudgets]:
    budgets = RedisBudgets(redis_url, redis_prefix)
    yield budgets
    await budgets.aclose()


async def test_redis_names_each_period_as_the_in_process_ledger_does(
    ledger: RedisBudgets, redis_url: str, redis_prefix: str
) -> None:
    scopes = [BudgetScope("group", p, 1.0, p) for p in ("day", "month", "total")]  # type: ignore[arg-type]
    await ledger.reserve(scopes, 0.25)
    client = Redis.from_url(redis_url)
    try:
        fields = [await client.hgetall(budget_key(redis_prefix, s)) for s in scopes]
    finally:
        await client.aclose()
    now = time.time()
    assert [{k.decode(): int(v) for k, v in f.items()} for f in fields] == [
        {period_field("day", now): 250_000},
        {period_field("month", now): 250_000},
        {"t": 250_000},
    ]


async def test_concurrent_reservations_stop_at_the_first_that_reaches_the_budget(
    ledger: RedisBudgets,
) -> None:
    scope = [BudgetScope("group", "team", 1.0, "total")]
    admitted: list[bool] = []

    async def one() -> None:
        try:
            await ledger.reserve(scope, 0.3)
        except GatewayError:
            admitted.append(False)
        else:
            admitted.append(True)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(one)
    assert admitted.count(True) == 4  # 0, 0.3, 0.6, 0.9 under 1.0: the fourth overshoots to 1.2
    (status,) = await ledger.status(scope)
    assert status.used_usd == pytest.approx(1.2) and status.resets_at is None


async def test_settling_replaces_the_reservation_with_the_real_cost(ledger: RedisBudgets) -> None:
    scope = [BudgetScope("key", "k", 1.0, "month")]
    hold = await ledger.reserve(scope, 0.5)
    await hold.settle(0.125)
    await hold.settle(0.9)  # once only
    (status,) = await ledger.status(scope)
    assert status.used_usd == pytest.approx(0.125) and status.remaining_usd == pytest.approx(0.875)
    assert status.resets_at is not None and status.resets_at.day == 1

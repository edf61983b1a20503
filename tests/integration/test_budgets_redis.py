"""The Redis budget ledger against a real redis-server: Redis's clock names the period, atomic reserve,
and a Redis frozen (SIGSTOP) while a reservation is in flight."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from redis.asyncio import Redis

from bedrock_mw.errors import GatewayError
from bedrock_mw.limits.budgets import NO_HOLD, BudgetScope, period_field
from bedrock_mw.limits.redis_budgets import RedisBudgets, budget_key, hold_key

if TYPE_CHECKING:
    from redis_server import RedisServer

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


# -- a frozen Redis: reservations whose caller gave up ----------------------------------------------


async def _used_micro(client: Redis, prefix: str, scope: BudgetScope) -> int:
    return int(await client.hget(budget_key(prefix, scope), "t") or 0)


async def _eventually_used(client: Redis, prefix: str, scope: BudgetScope, micro: int) -> None:
    started = time.monotonic()
    while await _used_micro(client, prefix, scope) != micro:
        assert time.monotonic() - started < 10, f"{scope.name} never came back to {micro} micro-USD"
        await anyio.sleep(0.05)


async def test_a_reservation_that_ran_after_its_caller_gave_up_is_given_back(
    redis_server: RedisServer,
) -> None:
    ledger = RedisBudgets(redis_server.url, "stall", timeout_s=0.5)
    inspect = Redis.from_url(redis_server.url)
    scope = BudgetScope("key", "k", 1.0, "total")
    await (await ledger.reserve([scope], 0.5)).settle(0.1)  # the script is loaded: a late one runs
    redis_server.freeze()
    try:
        assert await ledger.reserve([scope], 0.5) is NO_HOLD  # timed out: admitted, failing open
    finally:
        redis_server.thaw()
    assert await inspect.ping()  # answered after the stalled script, which ran first
    assert await _used_micro(inspect, "stall", scope) == 600_000  # the phantom reservation
    await _eventually_used(inspect, "stall", scope, 100_000)  # given back once Redis answers
    holds = [key async for key in inspect.scan_iter(match="stall:budget:*:hold:*")]
    assert len(holds) == 1 and await inspect.get(holds[0]) == b"revoked"
    assert 0 < await inspect.pttl(holds[0]) <= 15 * 60 * 1000
    await ledger.aclose()
    await inspect.aclose()


async def test_a_settle_that_timed_out_in_a_stall_counts_once_however_many_copies_run(
    redis_server: RedisServer,
) -> None:
    ledger = RedisBudgets(redis_server.url, "lost", timeout_s=0.5)
    inspect = Redis.from_url(redis_server.url)
    scope = BudgetScope("key", "k", 10.0, "total")
    hold = await ledger.reserve([scope], 0.5)
    redis_server.freeze()
    try:
        await hold.settle(0.1)  # times out: the stalled copy runs when Redis resumes, then it is sent again
    finally:
        redis_server.thaw()
    await _eventually_used(inspect, "lost", scope, 100_000)
    while ledger._settling:  # the copy sent again has gone through  # noqa: ASYNC110
        await anyio.sleep(0.05)
    await ledger.revoke_pending()
    assert await _used_micro(inspect, "lost", scope) == 100_000  # not the 0.4 given back twice
    assert [key async for key in inspect.scan_iter(match="lost:budget:*:hold:*")] == []
    await ledger.aclose()
    await inspect.aclose()


async def test_a_settle_that_never_reached_redis_is_sent_again_and_gives_back_the_rest(
    redis_url: str, redis_prefix: str
) -> None:
    inspect = Redis.from_url(redis_url)
    ledger = RedisBudgets(redis_url, redis_prefix, client=inspect)
    scope = BudgetScope("key", "k", 10.0, "total")
    reserved = await ledger.reserve([scope], 0.5)
    keys, fields = reserved._keys, reserved._fields  # type: ignore[attr-defined]
    ledger._revoke_later([], [(keys, [100_000 - 500_000, *fields])])  # as a failed settle leaves it
    await ledger.revoke_pending()
    await ledger.revoke_pending()
    assert await _used_micro(inspect, redis_prefix, scope) == 100_000
    await reserved.settle(0.1)  # a copy after the record is gone moves nothing
    assert await _used_micro(inspect, redis_prefix, scope) == 100_000
    await ledger.aclose()
    await inspect.aclose()


async def test_a_late_reservation_of_a_revoked_hold_counts_nothing(redis_url: str, redis_prefix: str) -> None:
    # The other order: the revocation reaches Redis before the stalled script does.
    inspect = Redis.from_url(redis_url)
    ledger = RedisBudgets(redis_url, redis_prefix, client=inspect)
    scope = BudgetScope("group", "g", 1.0, "total")
    keys = [budget_key(redis_prefix, scope), hold_key(budget_key(redis_prefix, scope), "late")]
    ledger._revoking.append(keys)
    await ledger.revoke_pending()
    late: Any = await ledger._reserve_script(keys=keys, args=[500_000, "total", 1_000_000])
    assert int(late[0]) == -1
    assert await _used_micro(inspect, redis_prefix, scope) == 0
    await ledger.aclose()
    await inspect.aclose()


async def test_settling_deletes_the_hold_record_even_when_nothing_moves(
    ledger: RedisBudgets, redis_url: str, redis_prefix: str
) -> None:
    inspect = Redis.from_url(redis_url)
    scope = BudgetScope("key", "k", 1.0, "total")
    hold = await ledger.reserve([scope], 0.25)
    assert len([k async for k in inspect.scan_iter(match=f"{redis_prefix}:budget:*:hold:*")]) == 1
    await hold.settle(None)  # cost unknown: the reservation stands, the record goes
    assert [k async for k in inspect.scan_iter(match=f"{redis_prefix}:budget:*:hold:*")] == []
    assert await _used_micro(inspect, redis_prefix, scope) == 250_000
    await inspect.aclose()


async def test_the_ledgers_own_client_never_retries_so_no_copy_of_a_script_runs_late(
    ledger: RedisBudgets,
) -> None:
    retry = ledger._client.get_retry()
    assert retry is not None and retry.get_retries() == 0

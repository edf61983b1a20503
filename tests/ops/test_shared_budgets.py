"""A dollar budget held across two gateway processes that share one Redis, under concurrent streams."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from bedrock_mw.cost import PriceTable
from bedrock_mw.limits.budgets import BudgetScope
from bedrock_mw.limits.redis_budgets import RedisBudgets
from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config
from bedrock_mw.translate.types import TokenUsage
from tests.integration.redis_server import RedisServer

from .test_shared_limits import GatewayProcess, shared_redis  # noqa: F401  (the module-scoped Redis)

pytestmark = pytest.mark.anyio

MODEL = "claude-haiku-4-5"
BASE = "anthropic.claude-haiku-4-5-20251001-v1:0"
SERVED = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
BUDGET_USD = 0.004
MAX_TOKENS = 200
PROMPT = "emit 120 words"


@pytest.fixture
def budgeted_pair(
    shared_redis: RedisServer,  # noqa: F811
    bedrock_emulator: BedrockEmulator,
    tmp_path: Path,
) -> Iterator[tuple[GatewayProcess, GatewayProcess, str, str]]:
    prefix = f"budget-{uuid.uuid4().hex[:8]}"
    config: dict[str, Any] = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["budget"] = {"usd": BUDGET_USD, "period": "total"}
    config["limits"] = {"redis_url": shared_redis.url, "redis_prefix": prefix}
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    pair = (GatewayProcess(path), GatewayProcess(path))
    try:
        for process in pair:
            process.wait_live()
        yield pair[0], pair[1], shared_redis.url, prefix
    finally:
        for process in pair:
            process.stop()


def _reservation() -> float:
    """The most one request reserves: its JSON body (with room to spare) at ~1 token per 3 bytes."""
    body = {"max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": PROMPT}], "model": MODEL}
    input_tokens = (len(json.dumps(body)) + 64) // 3
    cost = PriceTable().max_cost(BASE, SERVED, input_tokens, MAX_TOKENS)
    assert cost is not None
    return cost


async def test_concurrent_streams_on_two_processes_never_overshoot_by_more_than_one_reservation(
    budgeted_pair: tuple[GatewayProcess, GatewayProcess, str, str], bedrock_emulator: BedrockEmulator
) -> None:
    a, b, redis_url, prefix = budgeted_pair
    # Every admitted stream is still open when the rest of its wave arrives.
    bedrock_emulator.faults.add(Fault.delay(0.5, operation="converse-stream"))
    clients = [anthropic.AsyncAnthropic(base_url=gw.url, api_key="vk-test", max_retries=0) for gw in (a, b)]
    spent: list[float] = []
    refusals: list[anthropic.RateLimitError] = []

    async def stream(client: anthropic.AsyncAnthropic) -> None:
        try:
            async with client.messages.stream(
                model=MODEL, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": PROMPT}]
            ) as events:
                final = await events.get_final_message()
        except anthropic.RateLimitError as refused:
            refusals.append(refused)
            return
        u = final.usage
        usage = TokenUsage(u.input_tokens, u.output_tokens)
        cost = PriceTable().cost(BASE, SERVED, usage)
        assert cost is not None
        spent.append(cost)

    try:
        for _ in range(4):  # waves of 8 concurrent streams, 4 through each process
            await asyncio.gather(*(stream(c) for c in clients for _ in range(4)))
    finally:
        for client in clients:
            await client.close()
    assert refusals, "the budget never ran out"
    assert len(spent) >= 2, "too few requests were admitted to test anything"
    assert BUDGET_USD <= sum(spent) <= BUDGET_USD + _reservation()
    # A total budget never resets: no retry-after on its refusals.
    assert all("retry-after" not in r.response.headers for r in refusals)
    # The shared ledger holds exactly what the admitted streams really cost (settled, to the micro-dollar).
    ledger = RedisBudgets(redis_url, prefix)
    try:
        (status,) = await ledger.status([BudgetScope("key", "test", BUDGET_USD, "total")])
    finally:
        await ledger.aclose()
    assert status.used_usd == pytest.approx(sum(spent), abs=len(spent) * 1e-6)
    assert status.remaining_usd == 0.0

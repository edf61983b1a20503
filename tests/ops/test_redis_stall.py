"""Limit leases and budget holds when Redis stalls or a gateway process dies, over real sockets.

A Redis frozen with SIGSTOP still completes connections in the kernel and queues commands in socket
buffers: a request whose acquire timed out is admitted uncounted (failing open), and its script runs
when Redis resumes. These tests pin that such a late script never holds a slot, and that the short,
renewed lease TTL keeps a long request counted while freeing a dead process's slots within it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bedrock_mw.limits.budgets import BudgetScope
from bedrock_mw.limits.redis_budgets import budget_key
from bedrock_mw.limits.redis_limiter import redis_keys
from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config
from tests.integration.redis_server import RedisServer

from .conftest import ANTHROPIC, OPENAI, ServeGateway, eventually
from .test_shared_limits import GatewayProcess

pytestmark = pytest.mark.anyio

KEY_ID = "test"  # the plugin config's virtual key, called with secret vk-test


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def limited_config(
    emulator: BedrockEmulator, redis: RedisServer, prefix: str, **limits: Any
) -> dict[str, Any]:
    config: dict[str, Any] = emulator_gateway_config(emulator)
    config["virtual_keys"][0]["limits"] = {"max_concurrent": 1}
    config["limits"] = {"redis_url": redis.url, "redis_prefix": prefix, **limits}
    return config


async def test_a_redis_stall_during_an_acquire_leaves_no_slot_taken_once_redis_resumes(
    serve: ServeGateway, redis: RedisServer, bedrock_emulator: BedrockEmulator, http: httpx.AsyncClient
) -> None:
    prefix = f"stall-{uuid.uuid4().hex[:8]}"
    gateway = serve(limited_config(bedrock_emulator, redis, prefix))
    inflight, _, _, revoked = redis_keys(prefix, KEY_ID)
    inspect = Redis.from_url(redis.url)
    url = gateway.url + ANTHROPIC.path

    async def stream() -> httpx.Response:
        async with http.stream(
            "POST", url, json=ANTHROPIC.body(stream=True), headers=ANTHROPIC.headers()
        ) as r:
            await r.aread()
            return r

    assert (await stream()).status_code == 200  # Redis has the acquire script loaded now
    redis.freeze()
    try:
        stalled = await stream()  # the acquire times out: admitted, failing open
    finally:
        redis.thaw()
    assert stalled.status_code == 200
    assert b"message_stop" in stalled.content
    assert await inspect.ping()  # Redis has run the stalled script by the time it answers this

    # Admitted at once (not refused for the lease TTL), and nothing left in flight after it.
    after = await http.post(gateway.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())
    assert after.status_code == 200, after.text
    await eventually(lambda: _zcard(inspect, inflight, 0), 10, "the in-flight set is empty")
    assert await inspect.zcard(revoked) == 1  # a tombstone: a copy of the stalled script is a no-op
    await eventually(lambda: bedrock_emulator.open_streams == 0, 10, "no upstream stream open")
    records = await gateway.usage.wait_for(3)
    assert [r.status for r in records] == [200, 200, 200]
    assert not gateway.gateway.limiter._held  # this process renews nothing
    await inspect.aclose()


async def test_a_redis_stall_during_a_budget_reservation_leaves_nothing_reserved_once_redis_resumes(
    serve: ServeGateway, redis: RedisServer, bedrock_emulator: BedrockEmulator, http: httpx.AsyncClient
) -> None:
    prefix = f"stall-{uuid.uuid4().hex[:8]}"
    config = limited_config(bedrock_emulator, redis, prefix)
    config["virtual_keys"][0]["limits"] = {}  # only the budget touches Redis
    config["virtual_keys"][0]["budget"] = {"usd": 1.0, "period": "total"}
    gateway = serve(config)
    spent_key = budget_key(prefix, BudgetScope("key", KEY_ID, 1.0, "total"))
    inspect = Redis.from_url(redis.url)

    async def call() -> httpx.Response:
        return await http.post(
            gateway.url + ANTHROPIC.path, json=ANTHROPIC.body(), headers=ANTHROPIC.headers()
        )

    async def spent() -> int:
        return int(await inspect.hget(spent_key, "t") or 0)

    assert (await call()).status_code == 200
    await gateway.usage.wait_for(1)  # settled to its real cost
    settled = await spent()
    assert settled > 0
    redis.freeze()
    try:
        stalled = await call()  # the reservation times out: admitted, failing open
    finally:
        redis.thaw()
    assert stalled.status_code == 200, stalled.text
    assert await inspect.ping()  # Redis has run the stalled reservation by the time it answers

    async def given_back() -> bool:
        return await spent() == settled

    await eventually(given_back, 10, "the late reservation was given back")
    holds = [key async for key in inspect.scan_iter(match=f"{prefix}:budget:*:hold:*")]
    assert len(holds) == 1 and await inspect.get(holds[0]) == b"revoked"  # the settled one is gone
    assert (await call()).status_code == 200
    records = await gateway.usage.wait_for(3)
    assert [r.status for r in records] == [200, 200, 200]
    assert await spent() > settled  # the third request counted as usual
    await eventually(lambda: bedrock_emulator.open_streams == 0, 10, "no upstream stream open")
    await inspect.aclose()


async def _zcard(client: Redis, key: str, expected: int) -> bool:
    return int(await client.zcard(key)) == expected


@pytest.fixture
def pair_with_short_leases(
    redis: RedisServer, bedrock_emulator: BedrockEmulator, tmp_path: Path
) -> Iterator[tuple[GatewayProcess, GatewayProcess, str]]:
    prefix = f"ttl-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "gateway.json"
    path.write_text(
        json.dumps(limited_config(bedrock_emulator, redis, prefix, redis_lease_ttl_s=LEASE_TTL_S))
    )
    pair = (GatewayProcess(path), GatewayProcess(path))
    try:
        for process in pair:
            process.wait_live()
        yield pair[0], pair[1], prefix
    finally:
        for process in pair:
            process.stop()


LEASE_TTL_S = 3.0  # renewed every second; two missed renewals would drop it


async def test_a_long_request_stays_counted_past_the_lease_ttl_and_a_killed_process_frees_it_within_it(
    pair_with_short_leases: tuple[GatewayProcess, GatewayProcess, str],
    redis: RedisServer,
    bedrock_emulator: BedrockEmulator,
    http: httpx.AsyncClient,
) -> None:
    a, b, prefix = pair_with_short_leases
    inflight = redis_keys(prefix, KEY_ID)[0]
    inspect = Redis.from_url(redis.url)
    bedrock_emulator.faults.add(Fault.hanging(times=1))  # B's request waits for Bedrock's first byte

    async def call(gateway: GatewayProcess) -> httpx.Response:
        return await http.post(gateway.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())

    held = asyncio.ensure_future(call(b))
    try:
        await eventually(lambda: _zcard(inspect, inflight, 1), 10, "B's request holds the slot")
        since = time.monotonic()
        while time.monotonic() - since < 2 * LEASE_TTL_S:  # only B's renewals keep it
            assert await inspect.zcard(inflight) == 1
            refused = await call(a)
            assert refused.status_code == 429, refused.text
            assert "max_concurrent limit of 1" in refused.text
            await asyncio.sleep(0.25)

        b.kill()  # a crash: nothing released
        await eventually(lambda: _zcard(inspect, inflight, 0), 30, "the dead process's lease lapsed")
        assert (await call(a)).status_code == 200
    finally:
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)
        await inspect.aclose()
    await eventually(lambda: bedrock_emulator.open_streams == 0, 10, "no upstream stream open")

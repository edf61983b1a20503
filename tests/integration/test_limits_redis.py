"""The Redis limiter against a real redis-server: each limit, several processes, dead workers, TTLs,
lease renewal, and a Redis frozen (SIGSTOP) while a script is in flight."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from redis.asyncio import Redis

from bedrock_mw.config import KeyLimits, VirtualKeyConfig
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.limits import NOOP_LEASE
from bedrock_mw.limits.redis_limiter import RedisLimiter, redis_keys

if TYPE_CHECKING:
    from redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]
Worker = subprocess.Popen[str]


def make_key(key_id: str = "team-a", **limits: Any) -> VirtualKeyConfig:
    return VirtualKeyConfig(id=key_id, key="sk-test", providers=["p"], limits=KeyLimits(**limits))


async def refusal(limiter: RedisLimiter, key: VirtualKeyConfig, **kwargs: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        await limiter.acquire(key, **kwargs)
    assert info.value.kind is ErrorKind.RATE_LIMIT
    return info.value


@pytest.fixture
async def limiter(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisLimiter]:
    limiter = RedisLimiter(redis_url, redis_prefix)
    yield limiter
    await limiter.aclose()


@pytest.fixture
async def inspect(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- each limit ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_max_concurrent_refuses_the_extra_request_until_a_lease_is_released(
    limiter: RedisLimiter,
) -> None:
    key = make_key(max_concurrent=2)
    first = await limiter.acquire(key)
    await limiter.acquire(key)
    err = await refusal(limiter, key)
    assert "max_concurrent limit of 2" in err.message
    assert err.retry_after == pytest.approx(1.0)
    await first.release()
    await first.release()  # idempotent: must not free the other lease's slot
    await limiter.acquire(key)
    await refusal(limiter, key)


@pytest.mark.anyio
async def test_requests_per_minute_refuses_until_the_oldest_request_ages_out(limiter: RedisLimiter) -> None:
    key = make_key(requests_per_minute=3)
    for _ in range(3):
        await (await limiter.acquire(key)).release()
    err = await refusal(limiter, key)
    assert "requests_per_minute limit of 3" in err.message
    assert err.retry_after is not None and 58.0 < err.retry_after <= 60.0
    assert err.response_headers()["retry-after"] in {"59", "60"}


@pytest.mark.anyio
async def test_tokens_per_minute_counts_tokens_reported_at_release(limiter: RedisLimiter) -> None:
    key = make_key(tokens_per_minute=1000)
    await (await limiter.acquire(key)).release(used_tokens=700)
    await (await limiter.acquire(key, estimated_tokens=300)).release(used_tokens=200)
    err = await refusal(limiter, key, estimated_tokens=200)
    assert "used 900 tokens" in err.message and "tokens_per_minute limit of 1000" in err.message
    assert err.retry_after is not None and 58.0 < err.retry_after <= 60.0
    await (await limiter.acquire(key, estimated_tokens=100)).release(used_tokens=100)
    err = await refusal(limiter, key)  # a spent budget refuses even without an estimate
    assert "used 1000 tokens" in err.message


@pytest.mark.anyio
async def test_limits_are_counted_per_key(limiter: RedisLimiter) -> None:
    await limiter.acquire(make_key("a", max_concurrent=1))
    await limiter.acquire(make_key("b", max_concurrent=1))
    await refusal(limiter, make_key("a", max_concurrent=1))


@pytest.mark.anyio
async def test_cancelled_request_releases_its_concurrency_slot(limiter: RedisLimiter) -> None:
    key = make_key(max_concurrent=1)
    admitted = anyio.Event()

    async def request() -> None:
        lease = await limiter.acquire(key)
        try:
            admitted.set()
            await anyio.sleep_forever()
        finally:
            await lease.release()  # runs inside a cancelled scope: must be shielded to reach Redis

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        await admitted.wait()
        tg.cancel_scope.cancel()
    await limiter.acquire(key)


@pytest.mark.anyio
async def test_every_counter_key_has_a_ttl(redis_url: str, redis_prefix: str, inspect: Redis) -> None:
    limiter = RedisLimiter(redis_url, redis_prefix, lease_ttl_s=120, client=inspect)
    key = make_key(max_concurrent=5, requests_per_minute=5, tokens_per_minute=500)
    inflight, requests, tokens, _ = redis_keys(redis_prefix, key.id)
    lease = await limiter.acquire(key)
    assert 0 < await inspect.pttl(inflight) <= 120_000
    assert 0 < await inspect.pttl(requests) <= 60_000
    await limiter.acquire(key)  # still in flight below
    await lease.release(used_tokens=42)
    assert 0 < await inspect.pttl(tokens) <= 61_000
    assert 0 < await inspect.pttl(inflight) <= 120_000
    await limiter.aclose()  # an injected client is the caller's to close
    assert await inspect.ping()


@pytest.mark.anyio
async def test_key_ids_cannot_break_out_of_the_hash_tag(redis_prefix: str) -> None:
    keys = redis_keys(redis_prefix, "a}b:{c")
    assert all(k.startswith(f"{redis_prefix}:limits:{{a%7Db%3A%7Bc}}:") for k in keys)


# -- no limits, no I/O; Redis down ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_key_without_limits_costs_no_round_trip() -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{_free_port()}/0", fail_open=False)
    lease = await limiter.acquire(make_key())  # would raise if it touched the (absent) server
    assert lease is NOOP_LEASE
    await lease.release(used_tokens=10)
    await limiter.aclose()


@pytest.mark.anyio
async def test_unreachable_redis_fails_open_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{_free_port()}/0")
    with caplog.at_level(logging.WARNING, logger="bedrock_mw.limits.redis_limiter"):
        lease = await limiter.acquire(make_key(max_concurrent=1))
        await limiter.acquire(make_key(max_concurrent=1))
    assert lease is NOOP_LEASE
    warnings = [r for r in caplog.records if "admitting requests unchecked" in r.getMessage()]
    assert len(warnings) == 1  # throttled: one line per outage, not one per request
    await limiter.aclose()


@pytest.mark.anyio
async def test_unreachable_redis_refuses_with_503_when_failing_closed() -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{_free_port()}/0", fail_open=False)
    with pytest.raises(GatewayError) as info:
        await limiter.acquire(make_key(requests_per_minute=1))
    assert info.value.http_status == 503
    assert info.value.status_for("anthropic") == 503
    assert info.value.response_headers()["retry-after"] == "1"
    await limiter.aclose()


@pytest.mark.anyio
async def test_release_during_an_outage_logs_and_does_not_raise(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisLimiter(redis_server.url, fail_open=False)
    lease = await limiter.acquire(make_key(max_concurrent=1, tokens_per_minute=100))
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="bedrock_mw.limits.redis_limiter"):
        await lease.release(used_tokens=5)  # cleanup never raises: the lease TTL frees the slot
    assert any("Redis release failed" in r.getMessage() for r in caplog.records)
    await limiter.aclose()


# -- several OS processes ---------------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from bedrock_mw.config import KeyLimits, VirtualKeyConfig
    from bedrock_mw.errors import GatewayError
    from bedrock_mw.limits.redis_limiter import RedisLimiter

    async def main(url, prefix, limits, attempts, release, ttl):
        key = VirtualKeyConfig(
            id="shared", key="sk", providers=["p"], limits=KeyLimits.model_validate_json(limits)
        )
        limiter = RedisLimiter(url, prefix, lease_ttl_s=float(ttl))
        await limiter._client.ping()  # connect before the start line
        print("ready", flush=True)
        sys.stdin.readline()

        async def one():
            try:
                lease = await limiter.acquire(key)
            except GatewayError:
                return 0
            if release == "1":
                await lease.release()
            return 1

        admitted = sum(await asyncio.gather(*(one() for _ in range(int(attempts)))))
        print(admitted, flush=True)
        if release == "hold":
            await asyncio.sleep(3600)  # a worker that dies holding its leases
        await limiter.aclose()

    asyncio.run(main(*sys.argv[1:]))
    """
)


def start_workers(
    count: int, url: str, prefix: str, limits: KeyLimits, attempts: int, release: str, ttl: float = 900
) -> list[Worker]:
    """Worker processes, each connected to Redis and waiting for a line on stdin to start."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                url,
                prefix,
                limits.model_dump_json(),
                str(attempts),
                release,
                str(ttl),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        for _ in range(count)
    ]
    for proc in procs:
        assert read_line(proc) == "ready"
    return procs


def read_line(proc: Worker) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def start_line(procs: list[Worker]) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    procs: list[Worker] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("limits", "release", "allowed"),
    [
        (KeyLimits(max_concurrent=7), "0", 7),
        (KeyLimits(requests_per_minute=25), "1", 25),
    ],
    ids=["max_concurrent", "requests_per_minute"],
)
def test_two_processes_sharing_a_limit_never_admit_more_than_it(
    redis_url: str, redis_prefix: str, workers: list[Worker], limits: KeyLimits, release: str, allowed: int
) -> None:
    workers.extend(start_workers(2, redis_url, redis_prefix, limits, 40, release))
    start_line(workers)  # both are connected and waiting: start them together
    admitted = [int(read_line(proc)) for proc in workers]
    assert sum(admitted) == allowed
    assert all(proc.wait(timeout=30) == 0 for proc in workers)


@pytest.mark.anyio
async def test_leases_of_a_killed_worker_expire(
    redis_url: str, redis_prefix: str, workers: list[Worker], limiter: RedisLimiter
) -> None:
    ttl = 1.5
    limits = KeyLimits(max_concurrent=2)
    workers.extend(start_workers(1, redis_url, redis_prefix, limits, 2, "hold", ttl=ttl))
    worker = workers[0]
    start_line(workers)
    assert int(read_line(worker)) == 2
    os.kill(worker.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    key = make_key("shared", max_concurrent=2)
    await refusal(limiter, key)  # its two leases still count
    while True:
        try:
            await limiter.acquire(key)
            break
        except GatewayError:
            assert time.monotonic() - killed_at < ttl + 5, "the dead worker's leases never expired"
            await anyio.sleep(0.1)
    await limiter.acquire(key)  # both of its slots came back
    await refusal(limiter, key)


# -- lease renewal and a frozen Redis -----------------------------------------------------------------


async def _admitted_once_free(limiter: RedisLimiter, key: VirtualKeyConfig, within_s: float) -> float:
    """Poll until ``key`` is admitted (the lease released at once); the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            await (await limiter.acquire(key)).release()
            return time.monotonic() - started
        except GatewayError:
            assert time.monotonic() - started < within_s, f"{key.id} still refused after {within_s}s"
            await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_a_held_lease_is_renewed_past_its_ttl_and_frees_when_released(
    redis_url: str, redis_prefix: str, inspect: Redis
) -> None:
    ttl = 3.0  # renewed every second: a loaded machine would have to stall this loop for two
    limiter = RedisLimiter(redis_url, redis_prefix, lease_ttl_s=ttl)
    key = make_key(max_concurrent=1)
    inflight = redis_keys(redis_prefix, key.id)[0]
    lease = await limiter.acquire(key)
    held_since = time.monotonic()
    while time.monotonic() - held_since < 2 * ttl:  # two TTLs: only renewals keep it
        assert await inspect.zcard(inflight) == 1
        await refusal(limiter, key)
        await anyio.sleep(0.2)
    await lease.release()
    assert await inspect.zcard(inflight) == 0
    await limiter.acquire(key)  # free again at once
    await limiter.aclose()


@pytest.mark.anyio
async def test_the_keep_alive_stops_when_nothing_is_held(redis_url: str, redis_prefix: str) -> None:
    limiter = RedisLimiter(redis_url, redis_prefix, lease_ttl_s=0.3)
    lease = await limiter.acquire(make_key(max_concurrent=1))
    assert limiter._keeper is not None
    await lease.release()
    await eventually_true(lambda: limiter._keeper is None, within_s=10)
    await limiter.aclose()


async def eventually_true(check: Any, within_s: float) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within_s
        await anyio.sleep(0.02)


async def _freeze_during_acquire(
    server: RedisServer, limiter: RedisLimiter, key: VirtualKeyConfig, inspect: Redis
) -> None:
    """Redis stalls while ``key``'s acquire is in flight: admitted uncounted; then it resumes."""
    await (await limiter.acquire(key)).release()  # the script is loaded: a late EVALSHA would run
    server.freeze()
    try:
        assert await limiter.acquire(key) is NOOP_LEASE  # timed out: admitted, failing open
    finally:
        server.thaw()
    assert await inspect.ping()  # answered after the stalled script, which ran first


@pytest.mark.anyio
async def test_a_script_that_ran_after_its_acquire_timed_out_is_revoked_by_the_next_acquire(
    redis_server: RedisServer,
) -> None:
    limiter = RedisLimiter(redis_server.url, "stall", lease_ttl_s=900, timeout_s=0.5)
    inspect = Redis.from_url(redis_server.url)
    key = make_key(max_concurrent=1, requests_per_minute=10)
    inflight, requests, _, revoked = redis_keys("stall", key.id)
    await _freeze_during_acquire(redis_server, limiter, key, inspect)
    lease = await limiter.acquire(key)  # admitted at once: not refused for the lease TTL
    assert await inspect.zcard(inflight) == 1
    assert await inspect.zcard(revoked) == 1
    await lease.release()
    assert await inspect.zcard(inflight) == 0
    assert await inspect.zcard(requests) == 2  # the warm-up and this one; the uncounted one is not
    await limiter.aclose()
    await inspect.aclose()


@pytest.mark.anyio
async def test_the_keep_alive_revokes_a_late_script_with_no_new_request_for_the_key(
    redis_server: RedisServer,
) -> None:
    limiter = RedisLimiter(redis_server.url, "stall", lease_ttl_s=900, timeout_s=0.5)
    inspect = Redis.from_url(redis_server.url)
    key = make_key(max_concurrent=1)
    inflight = redis_keys("stall", key.id)[0]
    await _freeze_during_acquire(redis_server, limiter, key, inspect)
    assert await inspect.zcard(inflight) == 1  # the phantom the late script left
    await limiter.maintain()  # the keep-alive's step (every lease_ttl_s / 3)
    assert await inspect.zcard(inflight) == 0
    assert not limiter._revoking  # done: the keep-alive has nothing left to send
    await limiter.aclose()
    await inspect.aclose()


@pytest.mark.anyio
async def test_a_late_acquire_of_a_revoked_lease_takes_nothing(
    redis_url: str, redis_prefix: str, inspect: Redis
) -> None:
    # The other order: the revocation reaches Redis before the stalled script does.
    limiter = RedisLimiter(redis_url, redis_prefix, client=inspect)
    key = make_key(max_concurrent=1, requests_per_minute=10)
    keys = redis_keys(redis_prefix, key.id)
    limiter._revoking.add(keys, "late-lease")
    await limiter.maintain()
    late: Any = await limiter._acquire_script(keys=list(keys), args=["late-lease", 900_000, 1, 10, 0, 0])
    assert [int(x) for x in late] == [-1]
    assert await inspect.zcard(keys[0]) == 0
    assert await inspect.zcard(keys[1]) == 0
    assert await inspect.pttl(keys[3]) > 0  # the tombstones expire too
    await limiter.acquire(key)


@pytest.mark.anyio
async def test_the_limiters_own_client_never_retries_so_no_copy_of_a_script_runs_late(
    redis_url: str,
) -> None:
    limiter = RedisLimiter(redis_url, "no-retries")
    retry = limiter._client.get_retry()
    assert retry is not None and retry.get_retries() == 0
    await limiter.aclose()

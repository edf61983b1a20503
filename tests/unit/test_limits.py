"""The in-process limiter: each limit, its retry-after, lease release, and the no-limit fast path."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bedrock_mw.config import ConfigError, KeyLimits, LimitsConfig, VirtualKeyConfig
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.limits import NOOP_LEASE, InProcessLimiter, create_limiter

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_key(key_id: str = "team-a", **limits: Any) -> VirtualKeyConfig:
    return VirtualKeyConfig(id=key_id, key="sk-test", providers=["p"], limits=KeyLimits(**limits))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> InProcessLimiter:
    return InProcessLimiter(clock=clock)


async def refusal(limiter: InProcessLimiter, key: VirtualKeyConfig, **kwargs: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        await limiter.acquire(key, **kwargs)
    assert info.value.kind is ErrorKind.RATE_LIMIT
    assert info.value.http_status == 429
    return info.value


async def test_key_without_limits_gets_the_shared_noop_lease_and_no_state(limiter: InProcessLimiter) -> None:
    lease = await limiter.acquire(make_key(), estimated_tokens=10**9)
    assert lease is NOOP_LEASE
    await lease.release(used_tokens=10**9)
    assert limiter._windows == {}


async def test_max_concurrent_refuses_the_extra_request_until_a_lease_is_released(
    limiter: InProcessLimiter,
) -> None:
    key = make_key(max_concurrent=2)
    first = await limiter.acquire(key)
    await limiter.acquire(key)
    err = await refusal(limiter, key)
    assert "max_concurrent" in err.message and "2" in err.message
    assert err.retry_after == 1.0
    assert err.response_headers()["retry-after"] == "1"
    await first.release()
    await limiter.acquire(key)


async def test_release_is_idempotent(limiter: InProcessLimiter) -> None:
    key = make_key(max_concurrent=2)
    lease = await limiter.acquire(key)
    held = await limiter.acquire(key)
    await lease.release()
    await lease.release()  # must not free the slot `held` still owns
    await limiter.acquire(key)
    await refusal(limiter, key)
    await held.release()


async def test_requests_per_minute_slides_and_retry_after_is_when_the_oldest_ages_out(
    limiter: InProcessLimiter, clock: FakeClock
) -> None:
    key = make_key(requests_per_minute=2)
    await (await limiter.acquire(key)).release()
    clock.advance(10)
    await (await limiter.acquire(key)).release()
    clock.advance(5)
    err = await refusal(limiter, key)
    assert "requests_per_minute" in err.message
    assert err.retry_after == pytest.approx(45.0)  # the first request (t=0) ages out at t=60; now t=15
    clock.advance(45)
    await limiter.acquire(key)
    err = await refusal(limiter, key)
    assert err.retry_after == pytest.approx(10.0)  # the second (t=10) ages out at t=70


async def test_refused_requests_do_not_count_against_the_window(
    limiter: InProcessLimiter, clock: FakeClock
) -> None:
    key = make_key(requests_per_minute=1)
    await limiter.acquire(key)
    for _ in range(5):
        await refusal(limiter, key)
    clock.advance(60)
    await limiter.acquire(key)


async def test_tokens_per_minute_counts_tokens_reported_at_release(
    limiter: InProcessLimiter, clock: FakeClock
) -> None:
    key = make_key(tokens_per_minute=1000)
    lease = await limiter.acquire(key)
    await lease.release(used_tokens=600)
    clock.advance(20)
    await (await limiter.acquire(key)).release(used_tokens=400)
    clock.advance(1)
    err = await refusal(limiter, key)
    assert "tokens_per_minute" in err.message and "1000" in err.message and "used 1000" in err.message
    # The 600 tokens of t=0 age out at t=60 and free enough; now is t=21.
    assert err.retry_after == pytest.approx(39.0)
    clock.advance(39)
    await limiter.acquire(key)


async def test_tokens_per_minute_checks_the_estimate_against_what_is_left(
    limiter: InProcessLimiter, clock: FakeClock
) -> None:
    key = make_key(tokens_per_minute=1000)
    await (await limiter.acquire(key)).release(used_tokens=300)
    clock.advance(10)
    await (await limiter.acquire(key)).release(used_tokens=300)
    await (await limiter.acquire(key, estimated_tokens=400)).release()
    err = await refusal(limiter, key, estimated_tokens=401)
    assert err.retry_after == pytest.approx(50.0)  # freeing t=0's 300 tokens is enough
    err = await refusal(limiter, key, estimated_tokens=800)
    assert err.retry_after == pytest.approx(60.0)  # both buckets must age out


async def test_an_estimate_above_the_whole_budget_is_admitted_into_an_empty_window(
    limiter: InProcessLimiter,
) -> None:
    key = make_key(tokens_per_minute=100)
    lease = await limiter.acquire(key, estimated_tokens=5000)
    await lease.release(used_tokens=5000)
    await refusal(limiter, key)


async def test_tokens_are_not_recorded_for_keys_without_a_token_limit(limiter: InProcessLimiter) -> None:
    key = make_key(max_concurrent=1)
    await (await limiter.acquire(key)).release(used_tokens=10**6)
    assert limiter._windows == {}


async def test_the_refusal_reported_is_the_limit_that_frees_last(
    limiter: InProcessLimiter, clock: FakeClock
) -> None:
    key = make_key(max_concurrent=1, requests_per_minute=1)
    await limiter.acquire(key)
    clock.advance(15)
    err = await refusal(limiter, key)
    assert "requests_per_minute" in err.message
    assert err.retry_after == pytest.approx(45.0)


async def test_limits_are_counted_per_key(limiter: InProcessLimiter) -> None:
    await limiter.acquire(make_key("a", max_concurrent=1))
    await limiter.acquire(make_key("b", max_concurrent=1))
    await refusal(limiter, make_key("a", max_concurrent=1))


async def test_cancelled_request_releases_its_concurrency_slot(limiter: InProcessLimiter) -> None:
    key = make_key(max_concurrent=1)
    admitted = anyio.Event()

    async def request() -> None:
        lease = await limiter.acquire(key)
        try:
            admitted.set()
            await anyio.sleep_forever()
        finally:
            await lease.release(used_tokens=0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        await admitted.wait()
        await refusal(limiter, key)
        tg.cancel_scope.cancel()
    await (await limiter.acquire(key)).release()


async def test_idle_keys_are_dropped(limiter: InProcessLimiter, clock: FakeClock) -> None:
    lease = await limiter.acquire(make_key("conc", max_concurrent=1))
    await lease.release()
    assert "conc" not in limiter._windows  # nothing in flight, no window: forgotten at once
    await (await limiter.acquire(make_key("rpm", requests_per_minute=5))).release()
    await (await limiter.acquire(make_key("tpm", tokens_per_minute=5))).release(used_tokens=3)
    assert set(limiter._windows) == {"rpm", "tpm"}
    clock.advance(61)
    await limiter.acquire(make_key("other", max_concurrent=1))  # triggers the periodic sweep
    assert set(limiter._windows) == {"other"}


async def test_aclose_forgets_every_counter(limiter: InProcessLimiter) -> None:
    key = make_key(max_concurrent=1)
    await limiter.acquire(key)
    await limiter.aclose()
    await limiter.acquire(key)


def test_create_limiter_is_in_process_without_a_redis_url() -> None:
    assert isinstance(create_limiter(LimitsConfig()), InProcessLimiter)


def test_create_limiter_uses_redis_when_a_url_is_set() -> None:
    pytest.importorskip("redis")
    from bedrock_mw.limits.redis_limiter import RedisLimiter

    limiter = create_limiter(LimitsConfig.model_validate({"redis_url": "redis://127.0.0.1:1/0"}))
    assert isinstance(limiter, RedisLimiter)


def test_create_limiter_explains_a_missing_redis_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "bedrock_mw.limits.redis_limiter", None)
    with pytest.raises(ConfigError, match=r"bedrock-mw\[redis\]"):
        create_limiter(LimitsConfig.model_validate({"redis_url": "redis://127.0.0.1:1/0"}))

"""Soak: a seeded mix of requests, careless clients, upstream faults and a Redis freeze, then no leak.

The gateway runs under uvicorn on loopback with the Redis limiter and a Redis dollar budget, in
front of the emulator. A seeded random mix goes to /v1/messages (through native InvokeModel and
through Converse), /v1/chat/completions and /v1/responses, streamed and not, from clients that
read everything, leave before their body ends, leave before the first byte or mid-stream, stop
reading, or trickle their body (some past the body deadline); the emulator throttles, refuses,
delays, hangs and fails streams part-way; and redis-server is frozen (SIGSTOP) for longer than the
limiter's timeout, then thawed, in the middle of the run. Afterwards:

- the emulator has no open stream (every upstream stream was closed);
- no key holds a lease in Redis;
- every request has exactly one usage record, and a client that left is recorded as such;
- nothing answered or recorded a 500.

``BEDROCK_MW_SOAK=<n>`` sets the number of requests; ``-m soak`` runs 1,000 unless it is set; the
normal suite runs a short budget so the soak always runs. ``BEDROCK_MW_SOAK_SEED`` picks the mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from redis import Redis

from bedrock_mw.limits.budgets import BudgetScope, micro_usd
from bedrock_mw.limits.redis_budgets import budget_key
from bedrock_mw.limits.redis_limiter import redis_keys
from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config
from tests.integration.redis_server import RedisServer

from .conftest import MODEL, ServedGateway, ServeGateway, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.soak]

CI_REQUESTS = 150
FULL_REQUESTS = 1000
CONCURRENCY = 12
DEFAULT_SEED = 1313
# The limiter and then the budget ledger each give Redis one second (their socket timeout); the
# freeze outlasts both, so requests during it are admitted unchecked (fail open) while the scripts
# they sent run only when Redis thaws.
FREEZE_S = 2.5
BODY_IDLE_S = 1.0
KEYS = {"soak-invoke": "vk-soak-invoke", "soak-converse": "vk-soak-converse"}


def soak_size(config: pytest.Config) -> int:
    """How many requests: ``BEDROCK_MW_SOAK``, else 1,000 under ``-m soak``, else the CI budget."""
    given = os.environ.get("BEDROCK_MW_SOAK")
    if given:
        return int(given)
    return FULL_REQUESTS if "soak" in (config.getoption("markexpr") or "") else CI_REQUESTS


@dataclass(frozen=True)
class Route:
    """One endpoint as a client sees it: path, key (which picks the upstream API) and body shape."""

    name: str
    path: str
    key: str

    def body(self, text: str, *, stream: bool) -> dict[str, Any]:
        if self.path == "/v1/responses":
            body: dict[str, Any] = {"model": MODEL, "input": text}
        else:
            body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        if self.path == "/v1/messages":
            body["max_tokens"] = 2048
        body["stream"] = stream
        return body

    def headers(self, request_id: str) -> dict[str, str]:
        secret = KEYS[self.key]
        auth = (
            {"x-api-key": secret, "anthropic-version": "2023-06-01"}
            if self.path == "/v1/messages"
            else {"authorization": f"Bearer {secret}"}
        )
        return {**auth, "x-request-id": request_id, "content-type": "application/json"}


ROUTES = (
    Route("messages-invoke", "/v1/messages", "soak-invoke"),  # Claude on auto: native InvokeModel
    Route("messages-converse", "/v1/messages", "soak-converse"),  # the key's messages_api: converse
    Route("chat", "/v1/chat/completions", "soak-invoke"),
    Route("responses", "/v1/responses", "soak-converse"),
)

# What a client does, with its weight in the mix.
BEHAVIOURS = {
    "complete": 40,  # reads the whole answer
    "leave_mid_stream": 12,  # streams only: reads a few lines, then closes
    "leave_early": 12,  # gives up after a random short wait, often before the first byte
    "leave_in_body": 8,  # declares a content-length, sends part of the body, closes
    "slow_body": 10,  # trickles its body in small pieces, within the body deadline
    "stalled_body": 5,  # stops sending half-way for longer than the body's idle deadline
    "non_reading": 6,  # streams only: a tiny receive window, never reads, then closes
}


def faults_menu(rng: random.Random) -> Fault:
    """One upstream misbehaviour for whichever calls come next (never a Bedrock 500: see below)."""
    # Bedrock's own InternalServerException is passed through as a 500, so it is left out: every
    # 500 this test sees is the gateway's.
    choice = rng.randrange(9)
    if choice == 0:
        return Fault.throttling(times=2)
    if choice == 1:
        return Fault.unavailable(times=1)
    if choice == 2:
        return Fault.model_not_ready(times=1)
    if choice == 3:
        return Fault.stream_error(after=rng.randint(1, 12), times=2)
    if choice == 4:
        return Fault.stream_error(after=rng.randint(1, 6), error="ThrottlingException", times=1)
    if choice == 5:
        return Fault.delay(rng.uniform(0.1, 0.5), times=3)
    if choice == 6:
        return Fault(event_delay_s=0.01, times=3)
    if choice == 7:
        return Fault.validation("Malformed input request: soak says no.", times=1)
    return Fault.hanging(times=1)  # ends at the provider's first-byte timeout, or when the client leaves


@dataclass(frozen=True)
class Plan:
    """One request of the mix, decided up front from the seed."""

    index: int
    route: Route
    stream: bool
    behaviour: str
    text: str
    wait_s: float  # leave_early: how long before giving up; leave_mid_stream: lines read

    @property
    def request_id(self) -> str:
        return f"soak-{self.index:05d}"


def make_plan(rng: random.Random, index: int) -> Plan:
    route = rng.choice(ROUTES)
    stream = rng.random() < 0.6
    names, weights = zip(*BEHAVIOURS.items(), strict=True)
    behaviour = rng.choices(names, weights)[0]
    if behaviour in ("leave_mid_stream", "non_reading"):
        stream = True
    if behaviour == "non_reading":
        text = "emit 30000 words"
    elif stream and rng.random() < 0.7:
        text = f"emit {rng.randint(5, 200)} events"
    else:
        text = f"Hello from soak request {index}"
    wait = rng.uniform(0.0, 0.3) if behaviour == "leave_early" else float(rng.randint(1, 20))
    return Plan(index, route, stream, behaviour, text, wait)


@dataclass
class Seen:
    """What the client of one request saw: the status (None if it left first) and any complaint."""

    plan: Plan
    status: int | None = None
    left: bool = False
    reset_in_body: bool = False
    problems: list[str] = field(default_factory=list)


# -- raw-socket clients ---------------------------------------------------------------------------


def _head(plan: Plan, length: int) -> bytes:
    lines = [
        f"POST {plan.route.path} HTTP/1.1",
        "host: soak",
        f"content-length: {length}",
        "connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in plan.route.headers(plan.request_id).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_of(raw: bytes) -> int | None:
    if not raw.startswith(b"HTTP/1.1 "):
        return None
    return int(raw[9:12])


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while chunk := await reader.read(65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def raw_exchange(url_port: int, plan: Plan, seen: Seen, rng: random.Random) -> None:
    """The raw-socket behaviours: bodies cut short, trickled or stalled, and a client that never reads."""
    body = orjson.dumps(plan.route.body(plan.text, stream=plan.stream))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if plan.behaviour == "non_reading":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills at once
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", url_port))
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        if plan.behaviour == "leave_in_body":
            writer.write(_head(plan, len(body)) + body[: rng.randint(0, len(body) - 1)])
            await writer.drain()
            await asyncio.sleep(rng.uniform(0.0, 0.1))
            seen.left = True
            return
        if plan.behaviour in ("slow_body", "stalled_body"):
            writer.write(_head(plan, len(body)))
            step = max(1, len(body) // 6)
            pieces = [body[i : i + step] for i in range(0, len(body), step)]
            try:
                for number, piece in enumerate(pieces):
                    writer.write(piece)
                    await writer.drain()
                    if plan.behaviour == "stalled_body" and number == len(pieces) // 2:
                        # Past the idle deadline: the 408 comes, and the connection closes, meanwhile.
                        # (A client writing on would be reset and never read it.)
                        await asyncio.sleep(BODY_IDLE_S * 1.5)
                        break
                    await asyncio.sleep(0.02)
                raw = await asyncio.wait_for(_read_all(reader), 60)
            except (ConnectionResetError, BrokenPipeError):
                # On a loaded machine a trickle can pause past the deadline too: the gateway answers
                # 408 and closes while we still write, and the reset loses its answer. Its record says.
                seen.reset_in_body = True
                return
            seen.status = _status_of(raw)
            _check_body(seen, raw)
            return
        # non_reading: the whole request, then nothing read for a while, then an abrupt close
        writer.write(_head(plan, len(body)) + body)
        await writer.drain()
        reader._transport.pause_reading()  # type: ignore[attr-defined]  # not even into our buffer
        await asyncio.sleep(rng.uniform(0.2, 0.6))
        seen.left = True
    finally:
        if seen.left:
            writer.transport.abort()
        else:
            writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# -- httpx clients ----------------------------------------------------------------------------------


def _check_body(seen: Seen, raw: bytes) -> None:
    for sign in (b"failed unexpectedly", b"failed mid-stream"):
        if sign in raw:
            seen.problems.append(f"the answer reports a gateway failure: {raw[-400:]!r}")


async def http_exchange(client: httpx.AsyncClient, url: str, plan: Plan, seen: Seen) -> None:
    """The behaviours an HTTP client library has: read it all, leave early, leave mid-stream."""
    route = plan.route
    sent = asyncio.Event()

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name == "http11.send_request_body.complete":
            sent.set()  # the gateway has the whole request: leaving now is leaving a request

    request = client.build_request(
        "POST", url + route.path, json=route.body(plan.text, stream=plan.stream),
        headers=route.headers(plan.request_id), extensions={"trace": trace},
    )  # fmt: skip

    async def exchange() -> None:
        response = await client.send(request, stream=True)
        try:
            seen.status = response.status_code
            if plan.behaviour == "leave_mid_stream" and response.status_code == 200:
                lines = []
                async for line in response.aiter_lines():
                    lines.append(line)
                    if len(lines) >= plan.wait_s:
                        seen.left = True
                        return
                _check_body(seen, "\n".join(lines).encode())  # it ended before we meant to leave
                return
            _check_body(seen, await response.aread())
        finally:
            await response.aclose()  # unread: the connection is closed, not reused

    if plan.behaviour != "leave_early":
        await exchange()
        return
    task = asyncio.ensure_future(exchange())
    sending = asyncio.ensure_future(sent.wait())
    await asyncio.wait({task, sending}, return_when=asyncio.FIRST_COMPLETED)
    sending.cancel()
    done, _ = await asyncio.wait({task}, timeout=plan.wait_s)
    if not done:
        seen.left = True
        task.cancel()  # httpx closes the connection of a cancelled request
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- the run --------------------------------------------------------------------------------------


@pytest.fixture
def soak_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def soak_config(emulator: BedrockEmulator, redis: RedisServer, prefix: str) -> dict[str, Any]:
    config = emulator_gateway_config(emulator)
    config["providers"][0]["timeouts"] = {"first_byte_s": 2.0, "idle_s": 4.0, "total_s": 4.0}
    limits = {"max_concurrent": 64, "requests_per_minute": 100_000, "tokens_per_minute": 1_000_000_000}
    budget = {"usd": 10_000.0, "period": "day"}
    config["virtual_keys"] = [
        {"id": "soak-invoke", "key": KEYS["soak-invoke"], "providers": ["emulator"], "limits": limits,
         "budget": budget},
        {"id": "soak-converse", "key": KEYS["soak-converse"], "providers": ["emulator"], "limits": limits,
         "budget": budget, "messages_api": "converse"},
    ]  # fmt: skip
    config["limits"] = {
        "redis_url": redis.url,
        "redis_prefix": prefix,
        # A release lost in the freeze (it never reached Redis) frees when its lease lapses.
        "redis_lease_ttl_s": 5.0,
        "body_idle_timeout_s": BODY_IDLE_S,
        "body_timeout_s": 10.0,
    }
    return config


async def run_mix(
    gw: ServedGateway, emulator: BedrockEmulator, redis: RedisServer, count: int, seed: int
) -> list[Seen]:
    rng = random.Random(seed)
    plans = [make_plan(rng, index) for index in range(count)]
    client_rngs = [random.Random(rng.random()) for _ in plans]
    fault_at = {i: faults_menu(rng) for i in range(count) if rng.random() < 0.12}
    freeze_at = count * 2 // 5
    seen = [Seen(plan) for plan in plans]
    gate = asyncio.Semaphore(CONCURRENCY)
    frozen: list[asyncio.Task[None]] = []

    async def freeze() -> None:
        redis.freeze()
        try:
            await asyncio.sleep(FREEZE_S)
        finally:
            redis.thaw()

    async def one(index: int, client: httpx.AsyncClient) -> None:
        plan = plans[index]
        try:
            if plan.behaviour in ("leave_in_body", "slow_body", "stalled_body", "non_reading"):
                await raw_exchange(gw.port, plan, seen[index], client_rngs[index])
            else:
                await http_exchange(client, gw.url, plan, seen[index])
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            seen[index].problems.append(f"client error: {type(exc).__name__}: {exc}")
        finally:
            gate.release()

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY * 2)) as client:
        tasks = []
        for index in range(count):
            await gate.acquire()
            if index in fault_at:
                emulator.faults.add(fault_at[index])
            if index == freeze_at:
                frozen.append(asyncio.ensure_future(freeze()))
            tasks.append(asyncio.ensure_future(one(index, client)))
        await asyncio.gather(*tasks, *frozen)
    return seen


def ledger(redis: RedisServer, prefix: str) -> dict[str, int]:
    """Micro-dollars each key's budget has counted today (reserved and not given back, or spent)."""
    with Redis.from_url(redis.url) as client:
        today = {}
        for key_id in KEYS:
            fields = client.hgetall(budget_key(prefix, BudgetScope("key", key_id, 0.0, "day")))
            today[key_id] = sum(int(v) for f, v in fields.items() if f.startswith(b"d"))
        return today


def unsettled_holds(redis: RedisServer, prefix: str) -> int:
    """Reservation records still waiting for their settle (a tombstone of a revoked one is not)."""
    with Redis.from_url(redis.url) as client:
        return sum(client.get(k) != b"revoked" for k in client.scan_iter(f"{prefix}:budget:*:hold:*"))


def inflight_leases(redis: RedisServer, prefix: str) -> dict[str, int]:
    """Leases each key holds in Redis now (scored by expiry: one that has lapsed holds nothing)."""
    with Redis.from_url(redis.url) as client:
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        return {k: int(client.zcount(redis_keys(prefix, k)[0], f"({now_ms}", "+inf")) for k in KEYS}


async def test_soak_leaves_no_stream_lease_or_missing_record_and_no_500(
    request: pytest.FixtureRequest,
    serve: ServeGateway,
    bedrock_emulator: BedrockEmulator,
    soak_redis: RedisServer,
) -> None:
    count = soak_size(request.config)
    seed = int(os.environ.get("BEDROCK_MW_SOAK_SEED", DEFAULT_SEED))
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    gw = serve(soak_config(bedrock_emulator, soak_redis, prefix))
    what = f"(soak of {count} requests, seed {seed})"

    seen = await run_mix(gw, bedrock_emulator, soak_redis, count, seed)

    await eventually(lambda: bedrock_emulator.open_streams == 0, 30.0, f"every upstream stream closed {what}")
    with contextlib.suppress(AssertionError):
        await gw.usage.wait_for(count, within_s=30.0)
    records = list(gw.usage.records)
    by_id = Counter(record.request_id for record in records)
    unrecorded = [s for s in seen if by_id[s.plan.request_id] == 0]
    twice = [rid for rid, n in by_id.items() if n > 1]
    assert not unrecorded and not twice and len(by_id) == count, (
        f"one usage record per request {what}: no record for {len(unrecorded)} "
        f"({'; '.join(f'{s.plan} saw {s.status} left={s.left} {s.problems}' for s in unrecorded[:6])}), "
        f"recorded twice: {twice[:6]}"
    )

    record_of = {record.request_id: record for record in records}
    failures = [s for s in seen if s.problems or s.status == 500]
    assert not failures, f"{what}: " + "; ".join(
        f"{s.plan}: {s.status} {s.problems} recorded {record_of.get(s.plan.request_id)}" for s in failures[:5]
    )
    for s in seen:
        record = record_of[s.plan.request_id]
        assert record.status != 500, f"{what}: {s.plan} recorded a 500 ({record.error_type})"
        if s.reset_in_body:
            assert record.status == 408, f"{what}: {s.plan} was reset while sending its body: {record}"
        if s.status is not None and not s.left and not s.plan.stream:
            assert record.status == s.status, f"{what}: {s.plan} answered {s.status}, recorded {record}"
    # The mix really did exercise what it claims to (a changed seed or weights cannot hollow it out).
    statuses = Counter(r.status for r in records)
    assert statuses[200] and statuses[499] and statuses[408], f"{what}: statuses {statuses}"
    assert bedrock_emulator.state.counters["streams_aborted"], f"{what}: no stream was cut short"
    # Last, so that every other finding is reported first. The next request for a key revokes the
    # leases whose acquire the gateway gave up on during the freeze (docs/limits.md): one per key,
    # and then nothing may be held.
    async with httpx.AsyncClient(timeout=30) as client:
        for route in ROUTES[:2]:  # one route per key
            headers = route.headers(f"soak-after-{route.key}")
            after = await client.post(
                gw.url + route.path, json=route.body("after", stream=False), headers=headers
            )
            assert after.status_code == 200, f"{what}: {after.status_code} {after.text}"
    records = await gw.usage.wait_for(count + len(KEYS))
    await eventually(
        lambda: not any(inflight_leases(soak_redis, prefix).values()), 30.0, f"no lease held in Redis {what}"
    )
    # Requests admitted unchecked during the freeze are not in the ledger; a reservation made after
    # its request gave up, and never given back, would be (it holds the request's worst case).
    spent = {kid: sum(micro_usd(r.cost_usd or 0.0) for r in records if r.key_id == kid) for kid in KEYS}
    await eventually(
        lambda: all(count <= spent[kid] for kid, count in ledger(soak_redis, prefix).items()),
        30.0,
        f"no reservation left in the budgets {what}: {spent} spent",
    )
    assert unsettled_holds(soak_redis, prefix) == 0, f"{what}: budget holds never settled"

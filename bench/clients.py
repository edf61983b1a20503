"""Upstream HTTP clients alone: CPU per call of the same Bedrock request, ``python -m bench.clients``.

Issue #18's profile puts the gateway's upstream call (aiohttp's ``ClientSession``) at about a third
of its CPU per request. This measures candidate clients by themselves, in one process, against the
emulator: the raw InvokeModel call of the route table (bearer token, so no signing), closed loop
at concurrency 1 and 16, process CPU time (``getrusage``) over each window divided by the calls.

* ``aiohttp``: configured as the gateway's lean client configures it (``dispatch/_runtime.py``);
* ``pyreqwest``: a Rust (reqwest/hyper) client, when importable (it is not a dependency);
* ``minimal asyncio``: the load generator's own keep-alive HTTP/1.1 client, the floor of a
  pure-Python client on asyncio streams (no TLS, no pool management, no timeouts).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from bench.loadgen import Connection, _request_bytes, new_event_loop
from bench.procs import running, start_emulator
from bench.routes import ROUTES

Call = Callable[[], Awaitable[None]]
ROUTE = next(r for r in ROUTES if r.name == "raw invoke (Claude)")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _cpu_ms_per_call(call: Call, concurrency: int, warmup_s: float, duration_s: float) -> float:
    calls = 0
    stop = False

    async def caller() -> None:
        nonlocal calls
        while not stop:
            await call()
            calls += 1

    tasks = [asyncio.ensure_future(caller()) for _ in range(concurrency)]
    await asyncio.sleep(warmup_s)
    calls0, cpu0 = calls, _cpu_s()
    await asyncio.sleep(duration_s)
    cpu1, calls1 = _cpu_s(), calls
    stop = True
    await asyncio.gather(*tasks)
    return 1000 * (cpu1 - cpu0) / max(1, calls1 - calls0)


def _aiohttp(url: str, body: bytes, headers: dict[str, str]) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import aiohttp
    from yarl import URL

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30.0),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0),
        skip_auto_headers=("Accept-Encoding",),
        auto_decompress=False,
    )

    async def call() -> None:
        async with session.post(URL(url, encoded=True), data=body, headers=dict(headers)) as resp:
            await resp.read()

    return call, session.close


def _pyreqwest(url: str, body: bytes, headers: dict[str, str]) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from pyreqwest.client import ClientBuilder

    client = ClientBuilder().max_connections(64).build()

    async def call() -> None:
        resp = await client.post(url).headers(headers).body_bytes(body).build().send()
        await resp.bytes()

    return call, client.close


def _minimal(host: str, port: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    raw = _request_bytes({"path": ROUTE.path, "body": ROUTE.body(), "headers": ROUTE.headers}, host, port)
    idle = [Connection(host, port) for _ in range(64)]

    async def call() -> None:
        conn = idle.pop()
        try:
            try:
                _, head = await conn.head(raw)
            except (asyncio.IncompleteReadError, ConnectionError):  # the server closed an idle one
                conn.close()
                _, head = await conn.head(raw)
            async for _ in conn.body_chunks(head):
                pass
        finally:
            idle.append(conn)

    async def close() -> None:
        for conn in idle:
            conn.close()

    return call, close


async def _measure(url: str, reps: int, duration_s: float) -> dict[tuple[str, int], list[float]]:
    host, _, port = url.removeprefix("http://").partition(":")
    body = orjson.dumps(ROUTE.body())
    headers = {**ROUTE.headers, "content-type": "application/json"}
    full = url + ROUTE.path
    clients = {"aiohttp (as the gateway sets it up)": _aiohttp(full, body, headers)}
    try:
        clients["pyreqwest"] = _pyreqwest(full, body, headers)
    except ImportError:
        print("pyreqwest: not installed, not measured", flush=True)
    clients["minimal asyncio (the load generator's)"] = _minimal(host, int(port))
    runs: dict[tuple[str, int], list[float]] = {}
    try:
        for _ in range(reps):  # interleaved, so drift hits every client alike
            for name, (call, _close) in clients.items():
                for c in (1, 16):
                    runs.setdefault((name, c), []).append(await _cpu_ms_per_call(call, c, 0.5, duration_s))
    finally:
        for _call, close in clients.values():
            await close()
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--duration", type=float, default=2.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as tmp:
        emulator = start_emulator(Path(tmp))
        with running(emulator):
            loop = new_event_loop()
            try:
                runs = loop.run_until_complete(_measure(emulator.url, args.reps, args.duration))
            finally:
                loop.close()
    print(f"Medians of {args.reps} interleaved repetitions of {args.duration:g} s.\n")
    print("| client | c | client CPU ms per call (median) | min-max |\n|---|---:|---:|---:|")
    for (name, c), values in runs.items():
        print(f"| {name} | {c} | {statistics.median(values):.3f} | {min(values):.3f}-{max(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What mounting costs: the gateway in a FastAPI host app under uvicorn, beside ``bedrock-mw serve``.

Three host processes (``HOSTS``: ``app.mount`` as is, ``app.mount`` with ``gc.freeze()``, and
``GatewayMiddleware`` in front of FastAPI with ``gc.freeze()``) and ``serve`` serve the same config
on the same emulator, pinned to one CPU. At concurrency 1 they share one window per repetition, one
caller sending each request to each server in turn (:func:`_rotated`); at 16 each takes the same
closed-loop load in its own window, in turn. Each repetition pairs every host with ``serve``: the
host's p50 and process CPU per request minus ``serve``'s.

What a host adds is mostly its framework's own code on the way to the gateway, so the part times
that code twice. Alone and in-process (:func:`host_dispatch`): FastAPI's app and its ``Mount`` in
front of a trivial ASGI app, in a tight loop, caches warm. And in place, under the same load
(``bench.host_app.LayerClock``): the time per request spent in FastAPI's layers between the server
and the gateway, minus the same clock with no host between its halves.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bench.names import CLOCK_PATH, HOST, HOST_PREFIX
from bench.routes import ANTHROPIC, _messages
from bench.stats import spread

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from bench.procs import Server

PATH = "/v1/messages"
# The README's form, the host calling gc.freeze() once built (as serve does; docs/deploy.md advises it).
FROZEN = "mounted, gc.freeze"
# GatewayMiddleware in front of the same FastAPI app (docs/integration.md), frozen likewise.
WRAPPED = "wrapped, gc.freeze"
# Each host side compared with serve: its name, the prefix of its paired figures ("added_…"), how
# the table names it, and how it is started (bench.procs.start_host_app).
HOSTS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("mounted", "", "`app.mount`, as is", {"form": "mount"}),
    (FROZEN, "frozen_", "`app.mount`, `gc.freeze()` after start-up", {"form": "mount", "freeze": True}),
    (WRAPPED, "wrapped_", "`GatewayMiddleware` in front, `gc.freeze()`", {"form": "wrap", "freeze": True}),
)
# The clocked hosts (bench.host_app.LayerClock): FastAPI with the gateway mounted, and the clock alone.
CLOCKED = ("mount", "bare")


def mount_cost(
    concurrency: tuple[int, ...],
    reps: int,
    warmup_s: float,
    duration_s: float,
    emulator: Server,
    workdir: Path,
    measure: Callable[..., dict[str, Any]],
    log: Callable[[str], None],
    dispatch_calls: int,
) -> dict[str, Any]:
    """Per concurrency: each side's req/s, p50, p99 and CPU per request, and its paired differences
    from ``serve``; FastAPI's own layers timed in place (``clock``); under ``dispatch``, what
    FastAPI's ``Mount`` adds measured alone (:func:`host_dispatch`).

    Every server is started for this part, ``serve`` included: a ``serve`` that earlier parts have
    run for half an hour was measured 0.03 CPU ms per request slower at c=1 than a fresh host
    process serving the same gateway, which would have flattered every host. The servers run pinned
    to one CPU, the emulator and the load on the other (``bench.procs.pinned``).
    """
    from bench.procs import pinned, start_gateway, start_host_app  # psutil: only where run

    dispatch = host_dispatch(max(reps, 3), dispatch_calls)
    log(
        f"  FastAPI's Mount alone: {dispatch['direct_us']['median']:.1f} µs direct, "
        f"{dispatch['mounted_us']['median']:.1f} µs mounted, {dispatch['added_us']['median']:+.1f} µs added"
    )

    servers: dict[str, Server] = {}
    clocked: dict[str, Server] = {}
    try:
        servers["serve"] = start_gateway(emulator, workdir, name="serve-mount")
        for name, _, _, how in HOSTS:
            servers[name] = start_host_app(emulator, workdir, **how)
        for form in CLOCKED:
            clocked[form] = start_host_app(emulator, workdir, form=form, freeze=True, clock=True)
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {n: {c: [] for c in concurrency} for n in servers}
        clocks: dict[str, dict[int, list[dict[str, Any]]]] = {
            f: {c: [] for c in concurrency} for f in clocked
        }
        with pinned([*servers.values(), *clocked.values()], [emulator]) as was_pinned:
            for rep in range(reps):
                for c in concurrency:
                    if c == 1:  # every side in one window, request by request
                        window = _rotated(servers, warmup_s, duration_s * len(servers), measure)
                    else:
                        window = {
                            name: measure("bench.loadgen", _spec(s, c, warmup_s, duration_s), watched=s)
                            for name, s in servers.items()
                        }
                    for name, r in window.items():
                        r["cpu_ms_per_request"] = 1000 * r["server_cpu_s"] / max(1, r["requests"])
                        runs[name][c].append(r)
                        log(
                            f"  rep {rep + 1} {name:18} c={c:<3} {r['rps']:7.0f} req/s p50 "
                            f"{r['p50_ms']:6.2f} ms, {r['cpu_ms_per_request']:.3f} CPU ms/request, "
                            f"errors {r['errors']}"
                        )
                    for form, server in clocked.items():
                        measure(
                            "bench.loadgen",
                            _spec(server, c, warmup_s, duration_s),
                            on_warm=lambda server=server: _read_clock(server),  # a new count
                        )
                        clock = _read_clock(server)
                        clocks[form][c].append(clock)
                        log(f"  rep {rep + 1} clock {form:12} c={c:<3} {clock.get('median_us', 0):6.1f} µs")
    finally:
        for server in [*servers.values(), *clocked.values()]:
            server.stop()
    out: dict[str, Any] = {"path": PATH, "prefix": HOST_PREFIX, "pinned": was_pinned, "dispatch": dispatch}
    for c in concurrency:
        cell: dict[str, Any] = {}
        for name, by_c in runs.items():
            rs = by_c[c]
            cell[name] = {
                "rps": spread([r["rps"] for r in rs]),
                "p50_ms": spread([r["p50_ms"] for r in rs]),
                "p99_ms": spread([r["p99_ms"] for r in rs]),
                "cpu_ms_per_request": spread([r["cpu_ms_per_request"] for r in rs]),
                "errors": sum(r["errors"] for r in rs),
            }
        for name, prefix, _, _ in HOSTS:
            pairs = list(zip(runs[name][c], runs["serve"][c], strict=True))
            cell[prefix + "added_p50_ms"] = spread([m["p50_ms"] - s["p50_ms"] for m, s in pairs])
            cell[prefix + "added_cpu_ms_per_request"] = spread(
                [m["cpu_ms_per_request"] - s["cpu_ms_per_request"] for m, s in pairs]
            )
        mounted, alone = (clocks[form][c] for form in CLOCKED)
        cell["clock"] = {
            "mount_us": spread([m["median_us"] for m in mounted]),
            "bare_us": spread([b["median_us"] for b in alone]),
            "host_layers_us": spread(
                [m["median_us"] - b["median_us"] for m, b in zip(mounted, alone, strict=True)]
            ),
        }
        out[str(c)] = cell
    return out


def _spec(server: Server, concurrency: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    return {
        "host": HOST,
        "port": server.port,
        "path": server.prefix + PATH,
        "body": _messages(),
        "headers": ANTHROPIC,
        "mode": "closed",
        "concurrency": concurrency,
        "warmup_s": warmup_s,
        "duration_s": duration_s,
    }


def _rotated(
    servers: dict[str, Server], warmup_s: float, duration_s: float, measure: Callable[..., dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Concurrency 1 on every server in one window: one caller sends each request to each server in
    turn (``bench.loadgen`` ``rotate``), so all of them are measured under the same conditions, the
    same milliseconds apart, rather than in windows seconds apart; each server's CPU over the window."""
    spec = {
        "host": HOST,
        "body": _messages(),
        "headers": ANTHROPIC,
        "mode": "rotate",
        "warmup_s": warmup_s,
        "duration_s": duration_s,
        "targets": [{"port": s.port, "path": s.prefix + PATH} for s in servers.values()],
    }
    before: dict[str, float] = {}
    results = measure(
        "bench.loadgen", spec, on_warm=lambda: before.update({n: s.cpu_s() for n, s in servers.items()})
    )["targets"]
    return {
        name: {**r, "server_cpu_s": server.cpu_s() - before[name]}
        for (name, server), r in zip(servers.items(), results, strict=True)
    }


def _read_clock(server: Server) -> dict[str, Any]:
    """The clocked host's figures since it was last read (reading starts a new count)."""
    with urllib.request.urlopen(server.url + CLOCK_PATH, timeout=10) as answer:
        figures: dict[str, Any] = orjson.loads(answer.read())
    return figures


_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"content-length", b"120"),
    (b"x-api-key", b"vk-bench"),
    (b"anthropic-version", b"2023-06-01"),
]


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": _HEADERS,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    # The mounted app: reads the body and answers, as the gateway does, with nothing else to do.
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


async def _cpu_us_per_call(app: Callable[..., Any], path: str, calls: int) -> float:
    template = _scope(path)
    sent = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        sent += 1

    start = time.process_time()
    for _ in range(calls):
        await app(dict(template), receive, send)  # a router rewrites its scope: a fresh one per call
    elapsed = time.process_time() - start
    if sent != 2 * calls:
        raise RuntimeError(f"{path}: {sent} ASGI messages for {calls} calls, expected two per call")
    return 1e6 * elapsed / calls


def host_dispatch(rounds: int, calls: int) -> dict[str, Any]:
    """CPU µs per request that a FastAPI host app and its ``Mount`` add in front of a mounted app.

    In-process, on uvloop when installed (as under uvicorn): the same trivial ASGI app called
    directly and through ``FastAPI().mount(HOST_PREFIX, app)``, rounds alternated; ``added_us`` is the
    difference paired by round.
    """
    from fastapi import FastAPI

    host = FastAPI()

    @host.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    host.mount(HOST_PREFIX, _answer)

    async def measure() -> dict[str, list[float]]:
        await _cpu_us_per_call(host, HOST_PREFIX + PATH, 200)  # FastAPI builds its stack on first call
        runs: dict[str, list[float]] = {"direct": [], "mounted": []}
        for _ in range(rounds):
            runs["direct"].append(await _cpu_us_per_call(_answer, PATH, calls))
            runs["mounted"].append(await _cpu_us_per_call(host, HOST_PREFIX + PATH, calls))
        return runs

    try:
        import uvloop

        runs = uvloop.run(measure())
    except ImportError:
        runs = asyncio.run(measure())
    added = [m - d for m, d in zip(runs["mounted"], runs["direct"], strict=True)]
    return {
        "calls": calls,
        "direct_us": spread(runs["direct"]),
        "mounted_us": spread(runs["mounted"]),
        "added_us": spread(added),
    }


def render(result: dict[str, Any], cell: Callable[..., str]) -> list[str]:
    """The mounted-vs-serve table for docs/benchmarks.md."""
    pinned = (
        " The servers ran pinned to one CPU, the emulator and the load generator to the other."
        if result.get("pinned")
        else ""
    )
    separate = f" Measured in {result['separate_run']}." if result.get("separate_run") else ""
    lines = [
        "### Mounted in a host app",
        "",
        f"`{result['path']}` on the gateway under `{result['prefix']}` in a FastAPI app under uvicorn "
        "(`bench/host_app.py`) and on `bedrock-mw serve`, same config, same emulator; at c=1 every "
        "server in one window, one caller sending each request to each server in turn, at c=16 one "
        "window each, in turn. *added* is the host process's figure minus `serve`'s, paired by "
        "repetition. The host mounts the gateway with `app.mount` (as is, and calling `gc.freeze()` "
        f"once built, as `serve` does), or puts `GatewayMiddleware` in front of the FastAPI app.{pinned}"
        + separate,
        "",
        "| host | c | serve p50 ms | host p50 ms | added p50 ms | serve CPU ms/request | "
        "host CPU ms/request | added CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, prefix, label, _ in HOSTS:
        for c, data in result.items():
            if not c.isdigit() or name not in data:
                continue
            s, m = data["serve"], data[name]
            lines.append(
                f"| {label} | {c} | {cell(s['p50_ms'])} | {cell(m['p50_ms'])} | "
                f"{cell(data[prefix + 'added_p50_ms'], '{:+.3f}')} | "
                f"{cell(s['cpu_ms_per_request'], '{:.3f}')} | {cell(m['cpu_ms_per_request'], '{:.3f}')} | "
                f"{cell(data[prefix + 'added_cpu_ms_per_request'], '{:+.3f}')} |"
            )
    clocks = [(c, data["clock"]) for c, data in result.items() if c.isdigit() and "clock" in data]
    if clocks:
        lines += [
            "",
            "FastAPI's own layers timed in place, under the same load (`bench/host_app.py` "
            "`LayerClock`: the way in to the mounted gateway, the way out, and FastAPI's wrappers of "
            "each `send`; median per request, in µs, frozen hosts):",
            "",
            "| c | `app.mount`, clocked | the clock alone | FastAPI's layers |",
            "|---:|---:|---:|---:|",
            *(
                f"| {c} | {cell(k['mount_us'], '{:.1f}')} | {cell(k['bare_us'], '{:.1f}')} | "
                f"**{cell(k['host_layers_us'], '{:+.1f}')}** |"
                for c, k in clocks
            ),
        ]
    dispatch = result.get("dispatch")
    if dispatch is not None:
        lines += [
            "",
            "The same code measured alone in-process, caches warm (`bench/mount.py` `host_dispatch`: a "
            f"trivial ASGI app called directly and through FastAPI's `Mount`, {dispatch['calls']:,} "
            f"calls per round): {cell(dispatch['direct_us'], '{:.1f}')} µs direct, "
            f"{cell(dispatch['mounted_us'], '{:.1f}')} µs mounted, "
            f"**{cell(dispatch['added_us'], '{:+.1f}')} µs** added per request.",
        ]
    return [*lines, ""]

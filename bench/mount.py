"""What mounting costs: the gateway in a FastAPI host app under uvicorn, beside ``bedrock-mw serve``.

Both processes serve the same config on the same emulator and take the same closed-loop load in
turn, repetitions interleaved, so both see the same machine. Each repetition pairs the two: the
host's p50 and gateway-process CPU per request minus ``serve``'s.

On a shared two-core machine that end-to-end difference is noisy (repetitions differ by tenths of a
millisecond either way), so the part also measures the one piece of code mounting adds, in-process
and alone (:func:`host_dispatch`): FastAPI's app and its ``Mount`` in front of an ASGI app, against
the same ASGI app called directly, in CPU time per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.names import HOST, HOST_PREFIX
from bench.routes import ANTHROPIC, _messages
from bench.stats import spread

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from bench.procs import Server

PATH = "/v1/messages"
# The same host app calling gc.freeze() once built, as serve does (docs/deploy.md advises it).
FROZEN = "mounted, gc.freeze"
# Each host side and the prefix of its paired figures ("added_…" against serve).
HOSTS = (("mounted", ""), (FROZEN, "frozen_"))


def mount_cost(
    concurrency: tuple[int, ...],
    reps: int,
    warmup_s: float,
    duration_s: float,
    emulator: Server,
    serve: Server,
    workdir: Path,
    measure: Callable[..., dict[str, Any]],
    log: Callable[[str], None],
    dispatch_calls: int,
) -> dict[str, Any]:
    """Per concurrency: both sides' req/s, p50, p99 and CPU per request, and the paired differences;
    under ``dispatch``, what FastAPI's ``Mount`` adds measured alone (:func:`host_dispatch`)."""
    from bench.procs import start_host_app  # psutil: only where processes are run

    dispatch = host_dispatch(max(reps, 3), dispatch_calls)
    log(
        f"  FastAPI's Mount alone: {dispatch['direct_us']['median']:.1f} µs direct, "
        f"{dispatch['mounted_us']['median']:.1f} µs mounted, {dispatch['added_us']['median']:+.1f} µs added"
    )

    host = start_host_app(emulator, workdir)
    frozen = start_host_app(emulator, workdir, freeze=True)
    servers = {"serve": serve, "mounted": host, FROZEN: frozen}
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {n: {c: [] for c in concurrency} for n in servers}
    try:
        for rep in range(reps):
            for name, server in servers.items():
                for c in concurrency:
                    spec = {
                        "host": HOST,
                        "port": server.port,
                        "path": server.prefix + PATH,
                        "body": _messages(),
                        "headers": ANTHROPIC,
                        "mode": "closed",
                        "concurrency": c,
                        "warmup_s": warmup_s,
                        "duration_s": duration_s,
                    }
                    r = measure("bench.loadgen", spec, watched=server)
                    r["cpu_ms_per_request"] = 1000 * r["server_cpu_s"] / max(1, r["requests"])
                    runs[name][c].append(r)
                    log(
                        f"  rep {rep + 1} {name:8} c={c:<3} {r['rps']:7.0f} req/s p50 {r['p50_ms']:6.2f} "
                        f"ms, {r['cpu_ms_per_request']:.3f} CPU ms/request, errors {r['errors']}"
                    )
    finally:
        host.stop()
        frozen.stop()
    out: dict[str, Any] = {"path": PATH, "prefix": host.prefix, "dispatch": dispatch}
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
        for name, prefix in HOSTS:
            pairs = list(zip(runs[name][c], runs["serve"][c], strict=True))
            cell[prefix + "added_p50_ms"] = spread([m["p50_ms"] - s["p50_ms"] for m, s in pairs])
            cell[prefix + "added_cpu_ms_per_request"] = spread(
                [m["cpu_ms_per_request"] - s["cpu_ms_per_request"] for m, s in pairs]
            )
        out[str(c)] = cell
    return out


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
    lines = [
        "### Mounted in a host app",
        "",
        f"`{result['path']}` on the gateway mounted at `{result['prefix']}` in a FastAPI app under "
        "uvicorn (`bench/host_app.py`) and on `bedrock-mw serve`, same config, same emulator, "
        "repetitions interleaved; *added* is the mounted process's figure minus `serve`'s, paired by "
        "repetition. The host runs as is, and again calling `gc.freeze()` once built (as `serve` does).",
        "",
        "| host | c | serve p50 ms | mounted p50 ms | added p50 ms | serve CPU ms/request | "
        "mounted CPU ms/request | added CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, prefix in HOSTS:
        for c, data in result.items():
            if not c.isdigit() or name not in data:
                continue
            s, m = data["serve"], data[name]
            host = "as is" if name == "mounted" else "`gc.freeze()` after start-up"
            lines.append(
                f"| {host} | {c} | {cell(s['p50_ms'])} | {cell(m['p50_ms'])} | "
                f"{cell(data[prefix + 'added_p50_ms'], '{:+.3f}')} | "
                f"{cell(s['cpu_ms_per_request'], '{:.3f}')} | {cell(m['cpu_ms_per_request'], '{:.3f}')} | "
                f"{cell(data[prefix + 'added_cpu_ms_per_request'], '{:+.3f}')} |"
            )
    dispatch = result.get("dispatch")
    if dispatch is not None:
        lines += [
            "",
            "The code mounting adds, measured alone in-process (`bench/mount.py` `host_dispatch`: a "
            f"trivial ASGI app called directly and through FastAPI's `Mount`, {dispatch['calls']:,} "
            f"calls per round): {cell(dispatch['direct_us'], '{:.1f}')} µs direct, "
            f"{cell(dispatch['mounted_us'], '{:.1f}')} µs mounted, "
            f"**{cell(dispatch['added_us'], '{:+.1f}')} µs** added per request.",
        ]
    return [*lines, ""]

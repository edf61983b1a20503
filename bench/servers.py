"""uvicorn against granian under ``serve``: ``python -m bench.servers``.

Three servers side by side, driven in turn by the bench's load generator with repetitions
interleaved (the order rotates every repetition): uvicorn, a second uvicorn (the A/A pair, whose
difference is the noise of the machine) and granian, each one worker process. Three parts:

* ``fixed``: a fixed JSON answer from a plain ASGI app (``bench.fixed_app``), the server alone;
* ``gateway``: the gateway (``serve``'s app factory, the bench's config) on ``/v1/messages`` and
  ``/v1/chat/completions``, non-streamed, at concurrency 1 and 16;
* ``stream``: 1,000-event streams on both routes, four at a time: relayed events per CPU second.

CPU is user plus system time of the server's process tree (granian's supervisor, its worker and
every thread of both) over the measured window. Both servers run on uvloop; uvicorn with httptools,
as ``serve`` runs it. granian is not a dependency of the package or of the ``bench`` extra
(``pip install granian``); ``--variant`` adds granian with other runtime settings.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.loadgen import raise_fd_limit
from bench.names import HOST
from bench.procs import Server, _spawn, _wait_http, free_port, gateway_config, running, start_emulator
from bench.routes import ROUTES
from bench.run import ANTHROPIC_HEADERS, OPENAI_HEADERS, PROMPT, _messages_body, measure

SIDES = ("uvicorn", "uvicorn (A/A)", "granian")
# Granian variants measured on request beside its defaults: name -> GRANIAN_* environment settings.
VARIANTS: dict[str, dict[str, str]] = {
    "granian st": {"GRANIAN_RUNTIME_MODE": "st"},
    "granian rust tasks": {"GRANIAN_TASK_IMPL": "rust"},
}
GATEWAY_ROUTES = ("/v1/messages", "/v1/chat/completions (Claude)")
STREAMS = {
    "stream messages": ("/v1/messages", ANTHROPIC_HEADERS),
    "stream chat": ("/v1/chat/completions", OPENAI_HEADERS),
}
Runs = dict[tuple[str, str, int], list[dict[str, Any]]]  # (side, load, concurrency) -> results


def _server_command(server: str, target: str, port: int, factory: bool) -> list[str]:
    if server == "granian":
        command = [sys.executable, "-m", "granian", "--interface", "asgi"]
        command += ["--workers", "1", "--host", HOST, "--port", str(port), "--log-level", "warning"]
        return [*command, *(["--factory"] if factory else []), target]
    command = [sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    command += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    return [*command, *(["--factory"] if factory else []), target]


def _start(side: str, workdir: Path, target: str, env: dict[str, str], health: str, factory: bool) -> Server:
    port = free_port()
    server = "granian" if side.startswith("granian") else "uvicorn"
    if server == "granian":  # uvloop, as uvicorn uses, unless a variant names another loop
        env = {**env, "GRANIAN_LOOP": "uvloop", **VARIANTS.get(side, {})}
    log = workdir / f"{side.replace(' ', '_').replace('/', '')}-{target.rpartition(':')[2]}.log"
    proc = _spawn(_server_command(server, target, port, factory), log, env)
    served = Server(side, proc, port)
    _wait_http(served.url + health, proc)
    return served


def _start_gateway(side: str, emulator: Server, workdir: Path) -> Server:
    config = workdir / "gateway.json"
    config.write_bytes(orjson.dumps(gateway_config(emulator)))
    env = {**os.environ, "BEDROCK_MW_CONFIG": str(config)}
    return _start(side, workdir, "bedrock_mw.cli:app_from_env", env, "/livez", factory=True)


def _closed(server: Server, load: str, c: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    if load == "fixed":
        spec = {"host": HOST, "port": server.port, "path": "/", "body": {}, "headers": {}, "mode": "closed"}
        spec |= {"concurrency": c, "warmup_s": warmup_s, "duration_s": duration_s}
    else:
        spec = next(r for r in ROUTES if r.name == load).closed_loop(server.port, c, warmup_s, duration_s)
    result = measure("bench.loadgen", spec, watched=server)
    result["cpu_ms"] = 1000 * result["server_cpu_s"] / max(1, result["requests"])
    return result


def _stream(server: Server, load: str, count: int) -> dict[str, Any]:
    path, headers = STREAMS[load]
    body = _messages_body(f"emit 1000 events. {PROMPT}", True, max_tokens=1100)
    if load == "stream chat":  # as the bench's streaming part sends it
        body["stream_options"] = {"include_usage": True}
    spec = {"host": HOST, "port": server.port, "path": path, "body": body, "headers": headers}
    spec |= {"mode": "stream", "concurrency": 4, "warmup_count": 2, "count": count}
    result = measure("bench.loadgen", spec, watched=server)
    result["events_per_cpu_s"] = result["events"] / result["server_cpu_s"]
    return result


def _interleave(
    sides: dict[str, Server], loads: list[tuple[str, int]], reps: int, run: Callable[[Server, str, int], Any]
) -> Runs:
    runs: Runs = {}
    order = list(sides.items())
    for rep in range(reps):
        rotated = order[rep % len(order) :] + order[: rep % len(order)]
        for (load, c), (side, server) in itertools.product(loads, rotated):
            r = run(server, load, c)
            runs.setdefault((side, load, c), []).append(r)
            if "cpu_ms" in r:
                figure = f"{r['cpu_ms']:.3f} CPU ms p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f}"
            else:
                figure = f"{r['events_per_cpu_s']:,.0f} events/CPU-s"
            print(f"rep {rep + 1} {side:14} {load:30} c={c:<3} {figure} errors {r['errors']}", flush=True)
    return runs


def render(runs: Runs, sides: tuple[str, ...]) -> str:
    """One table row per load, concurrency and measure: each side's median (min-max)."""

    def cell(values: list[float], fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    keys = sorted({(load, c) for _, load, c in runs}, key=lambda k: (k[0], k[1]))
    head = f"| load | c | measure | {' | '.join(sides)} | granian/uvicorn |"
    lines = [head, "|---|---:|---|" + "---:|" * (len(sides) + 1)]
    for load, c in keys:
        sample = runs[(sides[0], load, c)][0]
        measures = ["cpu_ms", "p50_ms", "p99_ms"] if "cpu_ms" in sample else ["events_per_cpu_s"]
        for m in measures:
            fmt = ",.0f" if m == "events_per_cpu_s" else ".3f"
            values = {side: [r[m] for r in runs[(side, load, c)]] for side in sides}
            ratio = statistics.median(values["granian"]) / statistics.median(values["uvicorn"])
            cells = " | ".join(cell(values[side], fmt) for side in sides)
            lines.append(f"| {load} | {c} | {m} | {cells} | {ratio:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__)
    parser.add_argument("--parts", default="fixed,gateway,stream")
    parser.add_argument("--variant", action="append", default=[], choices=sorted(VARIANTS))
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--streams", type=int, default=12, help="1,000-event streams per measurement")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("granian") is None:
        parser.error("granian is not installed (it is not a dependency): pip install granian")
    parts = args.parts.split(",")
    sides = (*SIDES, *args.variant)
    raise_fd_limit()
    runs: Runs = {}

    def closed(server: Server, load: str, c: int) -> dict[str, Any]:
        return _closed(server, load, c, args.warmup, args.duration)

    def streamed(server: Server, load: str, _c: int) -> dict[str, Any]:
        return _stream(server, load, args.streams)

    with tempfile.TemporaryDirectory(prefix="bench-servers-") as tmp:
        workdir = Path(tmp)
        if "fixed" in parts:
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            fixed = {side: _start(side, workdir, "bench.fixed_app:app", env, "/", False) for side in sides}
            with running(*fixed.values()):
                runs |= _interleave(fixed, [("fixed", 1), ("fixed", 16)], args.reps, closed)
        if "gateway" in parts or "stream" in parts:
            emulator = start_emulator(workdir)
            with running(emulator):
                gateways = {side: _start_gateway(side, emulator, workdir) for side in sides}
                with running(*gateways.values()):
                    if "gateway" in parts:
                        loads = [(route, c) for route in GATEWAY_ROUTES for c in (1, 16)]
                        runs |= _interleave(gateways, loads, args.reps, closed)
                    if "stream" in parts:
                        loads = [(name, 4) for name in STREAMS]
                        runs |= _interleave(gateways, loads, args.reps, streamed)
    print(f"\nMedians (min-max) of {args.reps} interleaved repetitions.\n")
    print(render(runs, sides))
    return 0


if __name__ == "__main__":
    sys.exit(main())

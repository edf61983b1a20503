"""Two gateways side by side on one emulator: ``python -m bench.ab BEFORE_TREE [AFTER_TREE]``.

Each tree is a source checkout (a directory holding ``bedrock_mw``; AFTER defaults to this one).
Both gateways run ``serve`` with the bench's config on the same emulator and take the same
closed-loop loads from the bench's load generator in turn, repetitions interleaved (the order of
the two alternates every repetition), so both see the same machine. Reported per route and
concurrency: the medians of gateway CPU milliseconds per request and of p50, and the after/before
ratio. On a shared machine CPU per request is the figure to read; latencies move with the load.

``--streaming`` measures stream relaying instead: relayed events per gateway CPU second on the
bench's 1,000-event streams (as its ``streaming`` part), Anthropic and OpenAI, the same interleaving.
``--paced SECONDS`` has the emulator pause between events, so that each event reaches the gateway
alone (no two in one socket read): the per-event figure without any coalescing of writes.

Make a BEFORE tree with ``git archive REV | tar -x -C DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.loadgen import raise_fd_limit
from bench.procs import Server, add_fault, running, start_emulator, start_gateway
from bench.routes import ROUTES
from bench.run import ANTHROPIC_HEADERS, OPENAI_HEADERS, PROMPT, _http_spec, _messages_body, measure

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROUTES = ("/v1/messages", "/v1/chat/completions (Claude)")
DEFAULTS = "default: " + " and ".join(DEFAULT_ROUTES)
Runs = dict[tuple[str, str, int], list[dict[str, Any]]]  # (side, route, concurrency) -> results


def _load(server: Server, route_name: str, c: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    route = next(r for r in ROUTES if r.name == route_name)
    spec = route.closed_loop(server.port, c, warmup_s, duration_s)
    result = measure("bench.loadgen", spec, watched=server)
    result["cpu_ms"] = 1000 * result["server_cpu_s"] / max(1, result["requests"])
    return result


STREAMS = {"messages": ("/v1/messages", ANTHROPIC_HEADERS), "chat": ("/v1/chat/completions", OPENAI_HEADERS)}


def _runtime_s(server: Server) -> float:
    """CPU seconds the server process has run so far, from ``/proc/PID/schedstat`` (ns), all threads."""
    total = 0
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def _stream_load(server: Server, name: str, events: int, count: int) -> dict[str, Any]:
    """The bench's streaming load (1,000-event streams, 4 at a time); ``cpu_ms`` is CPU µs per event."""
    path, headers = STREAMS[name]
    body = _messages_body(f"emit {events} events. {PROMPT}", True, max_tokens=events + 100)
    if name == "chat":
        body["stream_options"] = {"include_usage": True}
    spec = {**_http_spec(server, path, body, headers), "mode": "stream", "concurrency": 4}
    before = _runtime_s(server)
    result = measure("bench.loadgen", {**spec, "warmup_count": 2, "count": count}, watched=server)
    # The scheduler's own count of the process's time on a CPU, in ns (psutil's is in 10 ms ticks).
    result["server_cpu_s"] = _runtime_s(server) - before
    result["events_per_cpu_s"] = result["events"] / max(1e-9, result["server_cpu_s"])
    result["cpu_ms"] = 1000 * result["server_cpu_s"] / max(1, result["events"])
    result["p50_ms"] = 0.0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path, nargs="?", default=ROOT)
    parser.add_argument(
        "--route", action="append", dest="routes", help=f"a route of bench/routes.py, repeatable ({DEFAULTS})"
    )
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--streaming", action="store_true", help="events per CPU second instead")
    parser.add_argument("--paced", type=float, default=0.0, help="with --streaming: seconds between events")
    parser.add_argument("--streams", type=int, default=48, help="with --streaming: streams per repetition")
    args = parser.parse_args(argv)
    if args.streaming:
        return _streaming(args)
    routes = args.routes or list(DEFAULT_ROUTES)
    unknown = set(routes) - {r.name for r in ROUTES if r.target == "gateway"}
    if unknown:
        parser.error(f"unknown gateway routes: {sorted(unknown)}")
    concurrency = [int(c) for c in args.concurrency.split(",")]
    raise_fd_limit()
    runs: Runs = {}
    with _before_and_after(args.before, args.after) as sides:
        for rep in range(args.reps):
            for route in routes:
                for c in concurrency:
                    for side, server in _order(sides, rep):
                        r = _load(server, route, c, args.warmup, args.duration)
                        runs.setdefault((side, route, c), []).append(r)
                        line = f"rep {rep + 1} {side:6} {route:32} c={c:<3} {r['cpu_ms']:.3f} CPU ms"
                        print(f"{line} p50 {r['p50_ms']:.2f} ms errors {r['errors']}", flush=True)
    print(render(runs, routes, concurrency, args.reps))
    return 0


@contextlib.contextmanager
def _before_and_after(before: Path, after: Path, *, paced_s: float = 0.0) -> Iterator[dict[str, Server]]:
    """One gateway per tree on one emulator (streams paced ``paced_s`` apart when given)."""
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        workdir = Path(tmp)
        emulator = start_emulator(workdir)
        with running(emulator):
            if paced_s:
                for operation in ("converse-stream", "invoke-with-response-stream"):
                    add_fault(emulator, {"operation": operation, "event_delay_s": paced_s})
            sides = {
                side: start_gateway(emulator, workdir, name=side, pythonpath=str(tree.resolve()))
                for side, tree in (("before", before), ("after", after))
            }
            with running(*sides.values()):
                yield sides


def _order(sides: dict[str, Server], rep: int) -> list[tuple[str, Server]]:
    """The sides in turn, the order alternated by repetition so drift hits both alike."""
    order = list(sides.items())
    return order if rep % 2 == 0 else order[::-1]


def _streaming(args: argparse.Namespace) -> int:
    raise_fd_limit()
    rates: dict[tuple[str, str], list[float]] = {}
    with _before_and_after(args.before, args.after, paced_s=args.paced) as sides:
        for rep in range(args.reps):
            for name in STREAMS:
                for side, server in _order(sides, rep):
                    r = _stream_load(server, name, 1000, args.streams)
                    rates.setdefault((side, name), []).append(r["events_per_cpu_s"])
                    print(
                        f"rep {rep + 1} {side:6} {name:8} {r['events']} events "
                        f"{r['server_cpu_s']:.2f} CPU-s -> {r['events_per_cpu_s']:,.0f} events/CPU-s",
                        flush=True,
                    )
    lines = [
        f"Events per gateway CPU second, medians of {args.reps} interleaved repetitions"
        + (f", events paced {args.paced * 1000:g} ms apart" if args.paced else "")
        + ".",
        "",
        "| stream | before | after | after/before | best before | best after | spread before "
        "| spread after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in STREAMS:
        b, a = rates[("before", name)], rates[("after", name)]
        mb, ma = statistics.median(b), statistics.median(a)
        lines.append(
            f"| {name} | {mb:,.0f} | {ma:,.0f} | {ma / mb:.2f} | {max(b):,.0f} | {max(a):,.0f} | "
            f"{min(b):,.0f}-{max(b):,.0f} | "
            f"{min(a):,.0f}-{max(a):,.0f} |"
        )
    print("\n".join(lines))
    return 0


def render(runs: Runs, routes: list[str], concurrency: list[int], reps: int) -> str:
    """Medians per side, and after/before."""
    lines = [
        f"Medians of {reps} interleaved repetitions per side.",
        "",
        "| route | c | CPU ms/request before | after | after/before | p50 ms before | after | spread of CPU "
        "before | after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for route in routes:
        for c in concurrency:
            b, a = runs[("before", route, c)], runs[("after", route, c)]
            cb, ca = statistics.median(r["cpu_ms"] for r in b), statistics.median(r["cpu_ms"] for r in a)
            pb, pa = statistics.median(r["p50_ms"] for r in b), statistics.median(r["p50_ms"] for r in a)
            sb = f"{min(r['cpu_ms'] for r in b):.3f}-{max(r['cpu_ms'] for r in b):.3f}"
            sa = f"{min(r['cpu_ms'] for r in a):.3f}-{max(r['cpu_ms'] for r in a):.3f}"
            lines.append(
                f"| {route} | {c} | {cb:.3f} | {ca:.3f} | {ca / cb:.2f} | {pb:.2f} | {pa:.2f} | {sb} | {sa} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

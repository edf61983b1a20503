"""The benchmark: ``python -m bench`` (``--quick`` for a smoke run). See docs/benchmarks.md.

Starts the emulator and the gateway (and LiteLLM's proxy when installed) as separate processes on
loopback, drives them from separate load-generator processes, and writes bench/results/latest.json
and the results section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import report, targets
from bench.loadgen import raise_fd_limit
from bench.micro import run_micro
from bench.mount import mount_cost
from bench.procs import (
    HOST,
    LITELLM_KEY,
    MODEL,
    MODEL_ID,
    VIRTUAL_KEY,
    Phased,
    Server,
    add_fault,
    clear_faults,
    running,
    start_emulator,
    start_gateway,
    start_litellm,
    start_relay,
)
from bench.routes import floor_verdict, measure_routes, pass_through_verdict
from bench.soak import soak
from bench.stats import spread
from bench.tail import measure_tail

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
# Where a --quick or --only run writes by default, so the full run's latest.json stays as it was.
SCRATCH = ROOT / "bench" / "results" / "scratch.json"
PROMPT = "Say hello"


@dataclass(frozen=True)
class Settings:
    """How long and how often to measure."""

    concurrency: tuple[int, ...] = (1, 16, 64)
    reps: int = 3
    warmup_s: float = 1.0
    duration_s: float = 3.0
    stream_events: int = 1000
    stream_count: int = 40
    ttfb_count: int = 60
    held_streams: int = 2000
    micro_s: float = 0.5
    route_concurrency: tuple[int, ...] = (1, 16)
    tail_s: float = 30.0
    tail_routes: tuple[str, ...] | None = None  # None: every gateway route
    soak_s: float = 600.0
    soak_warmup_s: float = 30.0
    # The mounted-vs-serve difference is a few hundredths of a ms inside noise of tenths: more pairs.
    mount_reps: int = 6
    mount_dispatch_calls: int = 20_000


QUICK = Settings(
    concurrency=(1, 16),
    reps=1,
    warmup_s=0.3,
    duration_s=0.7,
    stream_events=1000,
    stream_count=8,
    ttfb_count=5,
    held_streams=50,
    micro_s=0.1,
    tail_s=0.7,
    tail_routes=("/v1/messages", "/v1/messages (stream)"),
    soak_s=3.0,
    soak_warmup_s=1.0,
    mount_reps=1,
    mount_dispatch_calls=1_000,
)

PARTS = ("micro", "requests", "routes", "streaming", "tail", "mount", "memory", "soak")


def _messages_body(text: str, stream: bool = False, max_tokens: int = 64) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    }


ANTHROPIC_HEADERS = {"x-api-key": VIRTUAL_KEY, "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": f"Bearer {VIRTUAL_KEY}"}


def _http_spec(server: Server, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {"host": HOST, "port": server.port, "path": path, "body": body, "headers": headers}


def _converse_request(text: str) -> dict[str, Any]:
    return {
        "modelId": MODEL_ID,
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "inferenceConfig": {"maxTokens": 64},
    }


def measure(
    module: str, spec: dict[str, Any], watched: Server | None = None, on_warm: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """Run one phased load process; add the watched server's CPU seconds over the measured window.

    ``on_warm`` runs once the load is warmed up, just before the measured window starts.
    """
    load = Phased(module, spec)
    load.expect("warm")
    if on_warm is not None:
        on_warm()
    cpu0 = watched.cpu_s() if watched else 0.0
    wait0 = watched.wait_s() if watched else None
    load.go()
    result = load.finish()
    if watched is not None:
        result["server_cpu_s"] = watched.cpu_s() - cpu0
        wait1 = watched.wait_s()
        if wait0 is not None and wait1 is not None:
            result["server_wait_s"] = wait1 - wait0
    return result


# -- 1 and 2: non-streaming throughput and latency ------------------------------------------------
def non_streaming(
    s: Settings, emulator: Server, gateway: Server, litellm: Server | None, log: Callable[[str], None]
) -> dict[str, Any]:
    targets: dict[str, tuple[str, dict[str, Any]]] = {
        "floor_aiobotocore": (
            "bench.floor",
            {"endpoint_url": emulator.url, "request": _converse_request(PROMPT)},
        ),
        "gateway_messages": (
            "bench.loadgen",
            _http_spec(gateway, "/v1/messages", _messages_body(PROMPT), ANTHROPIC_HEADERS),
        ),
        "gateway_chat": (
            "bench.loadgen",
            _http_spec(gateway, "/v1/chat/completions", _messages_body(PROMPT), OPENAI_HEADERS),
        ),
    }
    if litellm is not None:
        litellm_headers = {"authorization": f"Bearer {LITELLM_KEY}"}
        targets["litellm_chat"] = (
            "bench.loadgen",
            _http_spec(litellm, "/v1/chat/completions", _messages_body(PROMPT), litellm_headers),
        )
        targets["litellm_messages"] = (
            "bench.loadgen",
            _http_spec(
                litellm, "/v1/messages", _messages_body(PROMPT), {**ANTHROPIC_HEADERS, **litellm_headers}
            ),
        )
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {t: {c: [] for c in s.concurrency} for t in targets}
    # Repetitions are interleaved across targets so that drift (thermal, noisy neighbours) hits all alike.
    for rep in range(s.reps):
        for name, (module, base) in targets.items():
            for c in s.concurrency:
                spec = {
                    **base,
                    "mode": "closed",
                    "concurrency": c,
                    "warmup_s": s.warmup_s,
                    "duration_s": s.duration_s,
                }
                result = measure(module, spec)
                runs[name][c].append(result)
                log(
                    f"  rep {rep + 1} {name:18} c={c:<3} {result['rps']:8.0f} req/s "
                    f"p50 {result['p50_ms']:6.2f} ms p99 {result['p99_ms']:6.2f} ms errors {result['errors']}"
                )
    summary: dict[str, Any] = {}
    for name, by_c in runs.items():
        summary[name] = {
            str(c): {
                "rps": spread([r["rps"] for r in rs]),
                "p50_ms": spread([r["p50_ms"] for r in rs]),
                "p99_ms": spread([r["p99_ms"] for r in rs]),
                "errors": sum(r["errors"] for r in rs),
            }
            for c, rs in by_c.items()
        }
    return summary


def _compare(summary: dict[str, Any], s: Settings) -> dict[str, Any]:
    """Added latency (ms) and throughput as a fraction of the floor, per target and concurrency."""
    floor = summary["floor_aiobotocore"]
    out: dict[str, Any] = {}
    for name, by_c in summary.items():
        if name == "floor_aiobotocore":
            continue
        out[name] = {
            str(c): {
                "added_p50_ms": by_c[str(c)]["p50_ms"]["median"] - floor[str(c)]["p50_ms"]["median"],
                "added_p99_ms": by_c[str(c)]["p99_ms"]["median"] - floor[str(c)]["p99_ms"]["median"],
                "throughput_vs_floor": by_c[str(c)]["rps"]["median"] / floor[str(c)]["rps"]["median"],
            }
            for c in s.concurrency
        }
    return out


# -- 3: streaming ---------------------------------------------------------------------------------
def streaming(s: Settings, emulator: Server, gateway: Server, log: Callable[[str], None]) -> dict[str, Any]:
    short = f"emit 10 events. {PROMPT}"
    long = f"emit {s.stream_events} events. {PROMPT}"
    out: dict[str, Any] = {}
    ttfb: dict[str, list[float]] = {"floor": [], "messages": [], "chat": []}
    rates: dict[str, list[float]] = {"messages": [], "chat": []}
    wall: dict[str, list[float]] = {"messages": [], "chat": []}
    for rep in range(s.reps):
        base = {"mode": "stream", "concurrency": 1, "warmup_count": 5, "count": s.ttfb_count}
        floor = measure(
            "bench.floor", {**base, "endpoint_url": emulator.url, "request": _converse_request(short)}
        )
        ttfb["floor"].append(floor["ttfb_p50_ms"])
        for name, path, headers in (
            ("messages", "/v1/messages", ANTHROPIC_HEADERS),
            ("chat", "/v1/chat/completions", OPENAI_HEADERS),
        ):
            r = measure(
                "bench.loadgen", {**base, **_http_spec(gateway, path, _messages_body(short, True), headers)}
            )
            ttfb[name].append(r["ttfb_p50_ms"])
            # The emulator stops at max_tokens (one token per event here): leave room for every event.
            body = _messages_body(long, True, max_tokens=s.stream_events + 100)
            if name == "chat":
                body["stream_options"] = {"include_usage": True}
            spec = {
                **_http_spec(gateway, path, body, headers),
                "mode": "stream",
                "concurrency": 4,
                "warmup_count": 2,
                "count": s.stream_count,
            }
            r2 = measure("bench.loadgen", spec, watched=gateway)
            rates[name].append(r2["events"] / r2["server_cpu_s"])
            wall[name].append(r2["events_per_s"])
            log(
                f"  rep {rep + 1} stream {name:8} ttfb p50 {r['ttfb_p50_ms']:.2f} ms (floor "
                f"{floor['ttfb_p50_ms']:.2f}); {r2['events']} events, {r2['server_cpu_s']:.2f} gateway CPU-s "
                f"-> {rates[name][-1]:,.0f} events/CPU-s, {r2['events_per_s']:,.0f} events/s wall"
            )
    out["ttfb_p50_ms"] = {k: spread(v) for k, v in ttfb.items()}
    out["added_ttfb_p50_ms"] = {
        k: spread([g - f for g, f in zip(ttfb[k], ttfb["floor"], strict=True)]) for k in ("messages", "chat")
    }
    out["events_per_cpu_s"] = {k: spread(v) for k, v in rates.items()}
    out["events_per_s_wall"] = {k: spread(v) for k, v in wall.items()}
    out["stream_events"] = s.stream_events
    return out


# -- 5: memory ------------------------------------------------------------------------------------
def memory(s: Settings, emulator: Server, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Resident memory per held stream, on a gateway of its own.

    A fresh process: in the gateway the other parts have run, the arenas their freed objects left
    are reused by the held streams, and a run measured 1.7 KiB per stream there against 14 on a
    fresh one. One streamed request first builds what a first request builds once (the upstream
    pool, caches), so it is not charged to the held streams.
    """
    gateway = start_gateway(emulator, workdir, name="memory-gateway")
    try:
        measure(
            "bench.loadgen",
            {
                **_http_spec(
                    gateway,
                    "/v1/messages",
                    _messages_body(f"emit 5 events. {PROMPT}", True),
                    ANTHROPIC_HEADERS,
                ),
                "mode": "closed",
                "concurrency": 4,
                "warmup_s": 0.2,
                "duration_s": 0.5,
            },
        )
        return _held_streams(s, emulator, gateway, log)
    finally:
        gateway.stop()


def _held_streams(
    s: Settings, emulator: Server, gateway: Server, log: Callable[[str], None]
) -> dict[str, Any]:
    # Paced streams: one event a second, so each stays open for the whole measurement.
    add_fault(emulator, {"operation": "converse-stream", "event_delay_s": 1.0})
    try:
        samples: list[float] = []
        results = []
        # One run only: memory freed by closed streams stays in the process's arenas and is reused by
        # the next run, so a repetition on the same process measures (almost) nothing.
        for _ in range(1):
            spec = {
                **_http_spec(
                    gateway,
                    "/v1/messages",
                    _messages_body(f"emit 120 events. {PROMPT}", True),
                    ANTHROPIC_HEADERS,
                ),
                "mode": "hold",
                "count": s.held_streams,
            }
            time.sleep(0.5)
            before = gateway.rss()
            load = Phased("bench.loadgen", spec)
            held = load.expect("holding")
            time.sleep(1.0)  # let every stream's first transcoded events flow
            during = gateway.rss()
            load.go()
            result = load.finish()
            per_stream = (during - before) / max(1, held["open"])
            samples.append(per_stream / 1024)
            results.append({"rss_before": before, "rss_during": during, **result})
            log(
                f"  {held['open']} streams open ({held['failed']} failed): RSS {before / 2**20:.1f} -> "
                f"{during / 2**20:.1f} MiB = {per_stream / 1024:.1f} KiB/stream"
            )
    finally:
        clear_faults(emulator)
    return {"streams": s.held_streams, "kib_per_stream": spread(samples), "runs": results}


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = {}
    for name in (
        "bedrock-mw",
        "aiobotocore",
        "botocore",
        "aiohttp",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "orjson",
        "pydantic",
    ):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


def _litellm_version(server: Server | None) -> str | None:
    if server is None:
        return None
    python = Path(server.proc.args[0]).with_name("python")  # type: ignore[index]
    try:
        return subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: short windows, one repetition")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy even if installed")
    parser.add_argument(
        "--out", type=Path, default=None, help="results file (latest.json; scratch.json if partial)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument(
        "--soak-s", type=float, default=None, help="the soak's measured window (600 s; 3 s with --quick)"
    )
    parser.add_argument(
        "--tail-s", type=float, default=None, help="the tail's windows (30 s; 0.7 s with --quick)"
    )
    args = parser.parse_args(argv)
    s = QUICK if args.quick else Settings()
    if args.soak_s is not None:
        s = dataclasses.replace(s, soak_s=args.soak_s)
    if args.tail_s is not None:
        s = dataclasses.replace(s, tail_s=args.tail_s)
    parts = set(args.only.split(","))
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    full = parts == set(PARTS) and not args.quick
    out: Path = args.out or (RESULTS if full else SCRATCH)

    def log(line: str) -> None:
        print(line, flush=True)

    fd_limit = raise_fd_limit()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": _machine(),
        "settings": s.__dict__,
        "quick": args.quick,
        "fd_limit": fd_limit,
    }
    if "micro" in parts:
        log("pure transcoders and translators")
        results["micro"] = run_micro(s.micro_s, s.reps)
        for name, r in results["micro"].items():
            log(f"  {name:30} {r['us_per_item']['median']:8.2f} µs/item")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        emulator = start_emulator(workdir)
        gateway = litellm = None
        try:
            gateway = start_gateway(emulator, workdir)
            if not args.no_litellm and "requests" in parts:
                litellm = start_litellm(emulator, workdir)
            results["litellm"] = {"run": litellm is not None, "version": _litellm_version(litellm)}
            if litellm is None:
                log("LiteLLM: not run (not installed, or --no-litellm); install it to compare")
            with running(emulator, gateway, litellm):
                if "requests" in parts:
                    log("non-streaming requests")
                    results["requests"] = non_streaming(s, emulator, gateway, litellm, log)
                    results["vs_floor"] = _compare(results["requests"], s)
                if "routes" in parts:
                    log("every route against the raw wire")
                    relay = start_relay(emulator, workdir)
                    try:
                        results["routes"] = measure_routes(
                            s.route_concurrency,
                            s.reps,
                            s.warmup_s,
                            s.duration_s,
                            emulator,
                            gateway,
                            measure,
                            log,
                            relay=relay,
                        )
                    finally:
                        relay.stop()
                    for line in pass_through_verdict(results["routes"]) + floor_verdict(results["routes"]):
                        log(line)
                if "streaming" in parts:
                    log("streaming")
                    results["streaming"] = streaming(s, emulator, gateway, log)
                if "tail" in parts:
                    log(f"the tail: {s.tail_s:g} s windows")
                    results["tail"] = measure_tail(
                        s.route_concurrency,
                        s.warmup_s,
                        s.tail_s,
                        emulator,
                        gateway,
                        measure,
                        log,
                        s.tail_routes,
                    )
                if "mount" in parts:
                    log("mounted in a FastAPI host app, beside serve")
                    results["mount"] = mount_cost(
                        s.route_concurrency,
                        s.mount_reps,
                        s.warmup_s,
                        s.duration_s,
                        emulator,
                        workdir,
                        measure,
                        log,
                        s.mount_dispatch_calls,
                    )
                if "memory" in parts:
                    log("memory with held streams")
                    results["memory"] = memory(s, emulator, workdir, log)
                results["gateway_rss_end"] = gateway.rss()
                if "soak" in parts:
                    log(f"soak: mixed traffic for {s.soak_s:.0f} s on a fresh gateway")
                    results["soak"] = soak(s.soak_s, s.soak_warmup_s, emulator, workdir, log)
        finally:
            for server in (litellm, gateway, emulator):
                if server is not None:
                    server.stop()
    results["wall_s"] = time.perf_counter() - started
    results["targets"] = targets.evaluate(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    log(f"wrote {out} in {results['wall_s']:.0f} s")
    log(report.render(results))
    if args.no_docs or not full:
        log("docs untouched (--no-docs, --quick or --only): `python -m bench.report FILE` writes them")
    else:
        report.write_all(ROOT, results)
        log("wrote docs/benchmarks.md and README.md's performance table")
    return 0


if __name__ == "__main__":
    sys.exit(main())

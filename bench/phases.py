"""Where one request's CPU goes, step by step: ``python -m bench.phases [--route NAME ...]``.

A gateway is started as ``serve`` starts it (the bench's config: auth, limits, metrics, usage hook;
uvicorn with uvloop and httptools; ``gc.freeze()`` after start-up), with one difference: before it
serves, the steps of a request are wrapped, from the outside, in timers (``instrument``). Nothing in
``bedrock_mw`` changes; the wrappers call the same functions with the same arguments.

The timers keep a stack of phases. At every entry to and exit from a wrapped step the process's CPU
clock is read and the time since the last reading is charged to the phase on top of the stack, so
each phase gets its *own* (exclusive) CPU time and the phases add up to the process's CPU time over
the window, by construction: the bottom of the stack, "server", is everything outside the app
(uvicorn, httptools, the event loop between requests). Garbage collections are a phase of their own
(``gc.callbacks``). The load is closed-loop at concurrency 1, so exactly one request is in flight
and all CPU in the window belongs to it: work the event loop does while a step awaits (the upstream
answer, the disconnect watcher's task) is charged to the step that awaits it.

Reported per route: µs of CPU per request for each phase, entries per request, the sum, and the
process's whole CPU per request over the same window; beside it, the same config served by a plain
``serve`` (no timers) measured in alternation, so the timers' own cost is visible too (one clock
read is ~0.5 µs; it is also given per request). The timers' reads are charged to the phases they
separate; ``--subtract`` removes the calibrated cost of each read from the phase it was charged to.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import inspect
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.loadgen import raise_fd_limit
from bench.procs import (
    HOST,
    Phased,
    Server,
    _wait_http,
    free_port,
    gateway_config,
    running,
    start_emulator,
    start_gateway,
)
from bench.routes import ROUTES

DEFAULT_ROUTES = (
    "/v1/messages",
    "/v1/messages (Converse)",
    "/v1/chat/completions (Claude)",
    "/v1/responses (Claude)",
)

# -- the timers (in the gateway process) ----------------------------------------------------------
_clock = time.process_time_ns
SERVER = "server: uvicorn, httptools, event loop (outside the app)"


class Phases:
    """The phase stack and the CPU nanoseconds and entries charged to each phase."""

    def __init__(self) -> None:
        self.stack: list[str] = [SERVER]
        self.ns: defaultdict[str, int] = defaultdict(int)
        self.entries: defaultdict[str, int] = defaultdict(int)
        self.reads: defaultdict[str, int] = defaultdict(int)  # clock reads charged to each phase
        self.mismatches = 0
        self.last = _clock()
        self.started = self.last

    def enter(self, name: str) -> None:
        now = _clock()
        top = self.stack[-1]
        self.ns[top] += now - self.last
        self.reads[top] += 1
        self.last = now
        self.stack.append(name)
        self.entries[name] += 1

    def leave(self, name: str) -> None:
        now = _clock()
        self.ns[self.stack[-1]] += now - self.last
        self.reads[self.stack[-1]] += 1
        self.last = now
        if self.stack[-1] != name:  # not expected at concurrency 1; counted so a report can say so
            self.mismatches += 1
            while len(self.stack) > 1 and self.stack[-1] != name:
                self.stack.pop()
        if len(self.stack) > 1:
            self.stack.pop()

    def reset(self) -> None:
        now = _clock()
        self.ns.clear()
        self.entries.clear()
        self.reads.clear()
        self.mismatches = 0
        self.last = self.started = now

    def snapshot(self) -> dict[str, Any]:
        now = _clock()
        self.ns[self.stack[-1]] += now - self.last
        self.last = now
        return {
            "ns": dict(self.ns),
            "entries": dict(self.entries),
            "reads": dict(self.reads),
            "mismatches": self.mismatches,
            "whole_ns": now - self.started,
            "clock_ns": _clock_cost_ns(),
        }


PHASES = Phases()


def _clock_cost_ns() -> float:
    n = 20_000
    t0 = time.perf_counter_ns()
    for _ in range(n):
        _clock()
    return (time.perf_counter_ns() - t0) / n


def timed(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` wrapped in phase ``name`` (coroutine functions stay coroutine functions)."""
    enter, leave = PHASES.enter, PHASES.leave
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            enter(name)
            try:
                return await fn(*args, **kwargs)
            finally:
                leave(name)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        enter(name)
        try:
            return fn(*args, **kwargs)
        finally:
            leave(name)

    return wrapper


MISSING: list[str] = []


def resolve(owner: Any, attr: str) -> Any:
    """What ``owner.attr`` holds (a class's own attribute, not an inherited one), or None."""
    return owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)


def wrap(owner: Any, attr: str, name: str) -> None:
    """Replace ``owner.attr`` (a module's function, a class's method) by its timed self."""
    raw = resolve(owner, attr)
    if raw is None:
        MISSING.append(f"{getattr(owner, '__name__', owner)}.{attr}")
        return
    if isinstance(raw, staticmethod):
        setattr(owner, attr, staticmethod(timed(raw.__func__, name)))
    else:
        setattr(owner, attr, timed(raw, name))


# Phase names: "<group>: <step>", so the table can be read by the brief's categories.
P_APP = "asgi: GatewayApplication + ServerErrorMiddleware"
P_SCOPE = "scope: Request, RequestScope, context, error wrapper"
P_HANDLER = "handler: the route's own glue"
P_AUTH_STORE = "auth: credential store resolution"
P_AUTH = "auth: key lookup, SHA-256, constant-time compare"
P_BODY = "body: receive, JSON parse, depth check, attribution"
P_ROUTE = "route: alias, model resolution, plan, guardrails"
P_ACQUIRE = "limits: acquire"
P_BUDGET = "limits: budget reservation check"
P_MEDIA = "translate: media (URL image) scan"
P_TRANSLATE = "translate: request to Bedrock's shape"
P_IDS = "translate: message/completion ids"
P_CALL = "dispatch: disconnect watcher task + fallback loop"
P_DISPATCH = "dispatch: Dispatcher (timeouts, error mapping, pool lookup)"
P_SERIALISE = "dispatch: serialise request JSON"
P_SIGN = "dispatch: SigV4"
P_CLIENT = "upstream client: send, await, receive (aiohttp)"
P_PARSE = "dispatch: parse answer JSON"
P_BACK = "translate: answer back to the caller's shape"
P_STORE = "responses: response store put"
P_HEADERS = "respond: response headers (who served, notes)"
P_BUILD = "respond: JSON dump + safe headers + Response object"
P_SEND = "respond: Response.__call__ (two ASGI sends into uvicorn)"
P_END = "settle: end/settle (streams, lease order, shield)"
P_RELEASE = "limits: release"
P_RECORD = "usage: UsageRecord build (incl. cost)"
P_WRITE = "usage: write_record (access-log check, observer loop)"
P_METRICS = "metrics: Prometheus observe"
P_HOOK = "usage: host's usage hook"
P_GC = "gc: collections of generation {}"


def points() -> list[tuple[Any, str, str]]:
    """``(owner, attribute, phase)`` for each step wrapped by name (a function of a module, a method)."""
    import starlette.responses

    import bedrock_mw.app as app_mod
    import bedrock_mw.dispatch as dispatch_mod
    import bedrock_mw.dispatch._runtime as runtime_mod
    import bedrock_mw.dispatch._wire as wire_mod
    import bedrock_mw.gateway as gateway_mod
    import bedrock_mw.lifecycle as lifecycle_mod
    import bedrock_mw.limits.memory as memory_mod
    import bedrock_mw.messages as messages_mod
    import bedrock_mw.observability as obs_mod
    import bedrock_mw.responses_api as responses_mod
    import bedrock_mw.translate.anthropic as anthropic_mod
    import bedrock_mw.translate.openai as openai_mod
    import bedrock_mw.translate.openai.native as native_mod

    G, D = gateway_mod.Gateway, dispatch_mod.Dispatcher
    found: list[tuple[Any, str, str]] = [
        (lifecycle_mod.ScopedEndpoint, "__call__", P_SCOPE),
        (G, "authenticate", P_AUTH_STORE),
        (gateway_mod, "authenticate", P_AUTH),
        (G, "read_body", P_BODY),
        (G, "route", P_ROUTE),
        (G, "admit", P_ACQUIRE),
        (G, "reserve_budget", P_BUDGET),
        (G, "call", P_CALL),
        (app_mod, "_media", P_MEDIA),
        (responses_mod, "_media", P_MEDIA),
        (messages_mod.MessagesRequest, "__init__", P_TRANSLATE),
        (openai_mod, "openai_to_converse", P_TRANSLATE),
        (native_mod, "openai_to_invoke", P_TRANSLATE),
        (responses_mod, "responses_to_converse", P_TRANSLATE),
        (anthropic_mod, "new_message_id", P_IDS),
        (openai_mod, "new_completion_id", P_IDS),
        (anthropic_mod, "converse_to_anthropic", P_BACK),
        (openai_mod, "converse_to_openai", P_BACK),
        (native_mod, "invoke_to_openai", P_BACK),
        (responses_mod, "converse_to_response", P_BACK),
        (responses_mod.ResponsesRoutes, "_save", P_STORE),
        (D, "converse", P_DISPATCH),
        (D, "invoke_model", P_DISPATCH),
        (D, "count_tokens", P_DISPATCH),
        (wire_mod, "serialise_body", P_SERIALISE),
        (wire_mod, "sign_headers", P_SIGN),
        (wire_mod, "parse_json_answer", P_PARSE),
        (gateway_mod.RequestContext, "response_headers", P_HEADERS),
        (app_mod, "json_response", P_BUILD),
        (messages_mod, "json_response", P_BUILD),
        (responses_mod, "json_response", P_BUILD),
        (starlette.responses.Response, "__call__", P_SEND),
        (lifecycle_mod.RequestScope, "settle", P_END),
        (memory_mod._InProcessLease, "release", P_RELEASE),
        (lifecycle_mod, "_record", P_RECORD),
        (lifecycle_mod, "write_record", P_WRITE),
        (obs_mod.PrometheusMetrics, "observe", P_METRICS),
    ]
    # The upstream client's one exchange (the lean client's; a client that replaces it names its own).
    transport = getattr(runtime_mod, "LeanTransport", None)
    if transport is not None:
        found.append((transport, "_exchange", P_CLIENT))
    return found


def instrument(app: Any) -> None:
    """Wrap each step of a request in its phase (from the outside; behaviour unchanged)."""
    import bedrock_mw.dispatch as dispatch_mod
    from bedrock_mw.http.application import GatewayApplication
    from bedrock_mw.lifecycle import ScopedEndpoint

    # uvicorn tells an app from an app factory by calling it with no arguments: keep the signature.
    app_call = GatewayApplication.__call__
    enter, leave = PHASES.enter, PHASES.leave

    async def app_entry(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # the lifespan call lasts as long as the process
            await app_call(self, scope, receive, send)
            return
        enter(P_APP)
        try:
            await app_call(self, scope, receive, send)
        finally:
            leave(P_APP)

    GatewayApplication.__call__ = app_entry  # type: ignore[method-assign]
    for owner, attr, phase in points():
        wrap(owner, attr, phase)
    for route in app.router.routes:  # each route's handler, as the endpoint holds it
        endpoint = getattr(route, "endpoint", None)
        if isinstance(endpoint, ScopedEndpoint):
            endpoint.handler = timed(endpoint.handler, P_HANDLER)
    # The Dispatcher's own JSON passes (InvokeModel's body dump and answer parse).
    dispatch_mod.orjson = types.SimpleNamespace(  # type: ignore[attr-defined]
        dumps=timed(orjson.dumps, P_SERIALISE),
        loads=timed(orjson.loads, P_PARSE),
        JSONDecodeError=orjson.JSONDecodeError,
    )
    gateway = app.state.gateway
    if gateway.usage_hook is not None:
        gateway.usage_hook = timed(gateway.usage_hook, P_HOOK)

    names = [P_GC.format(generation) for generation in range(3)]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        name = names[info["generation"]]
        if phase == "start":
            PHASES.enter(name)
        else:
            PHASES.leave(name)

    gc.callbacks.append(on_gc)


def _serve(config: str, port: int, stats: str) -> None:
    """The instrumented gateway process: built as ``serve`` builds it, then timed, then served."""
    import uvicorn

    from bedrock_mw import cli

    os.environ[cli._CONFIG_ENV] = os.path.abspath(config)
    app = cli.app_from_env()
    instrument(app)
    if MISSING:
        print("not instrumented (renamed?):", ", ".join(MISSING), file=sys.stderr, flush=True)

    def reset(*_: Any) -> None:
        PHASES.reset()

    def dump(*_: Any) -> None:
        tmp = stats + ".tmp"
        Path(tmp).write_bytes(orjson.dumps({**PHASES.snapshot(), "missing": MISSING}))
        os.replace(tmp, stats)

    signal.signal(signal.SIGUSR1, reset)
    signal.signal(signal.SIGUSR2, dump)
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        log_config=cli.serve_logging_config("warning"),
        access_log=False,
    )


# -- the driver ------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent


def start_phased_gateway(
    emulator: Server, workdir: Path, name: str = "phased", tree: Path | None = None
) -> tuple[Server, Path]:
    """The instrumented gateway; ``tree`` puts another source checkout's ``bedrock_mw`` first."""
    config = workdir / f"{name}.json"
    config.write_bytes(orjson.dumps(gateway_config(emulator)))
    port = free_port()
    stats = workdir / f"{name}-phases.json"
    env = os.environ.copy()
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree.resolve()), str(ROOT)])
    # Run from this file (an older tree's ``bench`` package may lack this module), in the work
    # directory: neither the current directory nor ``bench/`` comes before the tree on the path.
    runner = f"import runpy; runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')"
    proc = subprocess.Popen(
        [sys.executable, "-c", runner, "--serve", str(config), str(port), str(stats)],
        stdout=(workdir / f"{name}.log").open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
    )
    server = Server(name, proc, port)
    try:
        _wait_http(server.url + "/livez", proc)
    except BaseException:
        server.stop()  # a gateway that never came up is not left running
        raise
    return server, stats


def _signal_and_wait(server: Server, sig: signal.Signals, stats: Path | None = None) -> dict[str, Any]:
    if stats is not None:
        stats.unlink(missing_ok=True)
    os.kill(server.proc.pid, sig)
    if stats is None:
        time.sleep(0.05)
        return {}
    deadline = time.monotonic() + 10
    while not stats.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the instrumented gateway did not write its phases")
        time.sleep(0.01)
    result: dict[str, Any] = orjson.loads(stats.read_bytes())
    return result


def measure_phased(
    server: Server, stats: Path, route: str, warmup_s: float, duration_s: float
) -> dict[str, Any]:
    spec = next(r for r in ROUTES if r.name == route).closed_loop(server.port, 1, warmup_s, duration_s)
    load = Phased("bench.loadgen", spec)
    load.expect("warm")
    _signal_and_wait(server, signal.SIGUSR1)
    cpu0 = server.cpu_s()
    load.go()
    result = load.finish()
    cpu = server.cpu_s() - cpu0
    phases = _signal_and_wait(server, signal.SIGUSR2, stats)
    phases["requests"] = result["requests"]
    phases["errors"] = result["errors"]
    phases["psutil_ms"] = 1000 * cpu / max(1, result["requests"])
    return phases


def measure_plain(server: Server, route: str, warmup_s: float, duration_s: float) -> float:
    from bench.run import measure

    spec = next(r for r in ROUTES if r.name == route).closed_loop(server.port, 1, warmup_s, duration_s)
    result = measure("bench.loadgen", spec, watched=server)
    return float(1000 * result["server_cpu_s"] / max(1, result["requests"]))


def render(route: str, runs: list[dict[str, Any]], plain: list[float], subtract: bool) -> str:
    """One route's table: median µs per request of each phase over the repetitions."""
    names = sorted({n for r in runs for n in r["ns"]})
    per: dict[str, list[float]] = {n: [] for n in names}
    entries: dict[str, float] = {}
    for r in runs:
        n_req = max(1, r["requests"])
        for n in names:
            ns = r["ns"].get(n, 0)
            if subtract:
                ns -= r["reads"].get(n, 0) * r["clock_ns"]
            per[n].append(ns / 1000 / n_req)
        for n, count in r["entries"].items():
            entries[n] = count / n_req
    med = {n: statistics.median(v) for n, v in per.items()}
    whole = statistics.median(r["whole_ns"] / 1000 / max(1, r["requests"]) for r in runs)
    reads = statistics.median(sum(r["reads"].values()) / max(1, r["requests"]) for r in runs)
    clock = statistics.median(r["clock_ns"] for r in runs)
    psutil_us = 1000 * statistics.median(r["psutil_ms"] for r in runs)
    timers_us = reads * clock / 1000
    n_requests = statistics.median(r["requests"] for r in runs)
    lines = [
        f"#### {route}",
        "",
        "| phase | CPU µs per request | entries per request | share |",
        "|---|---:|---:|---:|",
    ]
    total = sum(med.values())
    for n in sorted(names, key=lambda n: -med[n]):
        lines.append(f"| {n} | {med[n]:.1f} | {entries.get(n, 0):.1f} | {100 * med[n] / total:.1f} % |")
    lines += [
        f"| **sum of the phases** | **{total:.1f}** | | |",
        f"| the process's CPU over the same window (its clock) | {whole:.1f} | | |",
        f"| the same, by psutil (as the bench measures) | {psutil_us:.1f} | | |",
        f"| plain `serve`, no timers, same route, alternated | {1000 * statistics.median(plain):.1f} | | |",
        f"| the timers' clock reads ({reads:.0f} per request, {clock:.0f} ns each) | {timers_us:.1f} | | |",
        "",
        f"{len(runs)} repetitions; {n_requests:.0f} requests each (median), "
        f"errors {sum(r['errors'] for r in runs)}, stack mismatches {sum(r['mismatches'] for r in runs)}"
        + ("; each phase's own clock reads subtracted" if subtract else "")
        + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--serve":
        _serve(argv[1], int(argv[2]), argv[3])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.phases", description=__doc__)
    parser.add_argument("--route", action="append", dest="routes", help="a gateway route of bench/routes.py")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--subtract", action="store_true", help="subtract the timers' calibrated clock reads")
    parser.add_argument("--json", type=Path, help="also write the raw phase data here")
    parser.add_argument(
        "--before", type=Path, help="a source tree to compare with, phase by phase (reps interleaved)"
    )
    parser.add_argument("--primitives", action="store_true", help="only time the building blocks alone")
    parser.add_argument("--render", type=Path, help="print the table of every route from a --json file")
    args = parser.parse_args(argv)
    if args.primitives:
        print(primitives())
        return 0
    if args.render is not None:
        print(render_routes(orjson.loads(args.render.read_bytes())))
        return 0
    routes = args.routes or list(DEFAULT_ROUTES)
    raise_fd_limit()
    if args.before is not None:
        return compare(args, routes)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-phases-") as tmp:
        workdir = Path(tmp)
        emulator = start_emulator(workdir)
        with running(emulator):
            phased, stats = start_phased_gateway(emulator, workdir)
            plain = start_gateway(emulator, workdir, name="plain")
            with running(phased, plain):
                for route in routes:
                    runs, plains = [], []
                    for rep in range(args.reps):
                        if rep % 2:
                            plains.append(measure_plain(plain, route, args.warmup, args.duration))
                        runs.append(measure_phased(phased, stats, route, args.warmup, args.duration))
                        if not rep % 2:
                            plains.append(measure_plain(plain, route, args.warmup, args.duration))
                    out[route] = {"phased": runs, "plain_ms": plains}
                    print(render(route, runs, plains, args.subtract), flush=True)
                    print(flush=True)
    print(render_routes(out))
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    with contextlib.suppress(Exception):
        if MISSING:
            print("not instrumented:", MISSING)
    return 0


def primitives(n: int = 20_000) -> str:
    """What the building blocks of a request cost alone (uvloop, one process): the floor's units."""
    import asyncio
    import hashlib
    import secrets

    import anyio
    import prometheus_client as prom
    import uvloop
    from starlette.requests import Request

    from bedrock_mw.usage import UsageRecord

    body = orjson.dumps(
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Say hello"}],
        }
    )
    headers = [(b"host", b"x"), (b"content-type", b"application/json"), (b"x-api-key", b"sk-" + b"k" * 40)]
    registry = prom.CollectorRegistry()
    counter = prom.Counter("c", "c", ("a", "b", "c", "d", "e", "f"), registry=registry)
    histogram = prom.Histogram("h", "h", ("a", "b"), registry=registry)

    async def nothing() -> None:
        return None

    async def one_layer() -> None:
        await nothing()

    async def task_step_cancel() -> None:
        task = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        task.cancel()

    async def timer() -> None:
        async with asyncio.timeout(5.0):
            await nothing()

    async def shield() -> None:
        with anyio.CancelScope(shield=True):
            await nothing()

    async def request_and_header() -> None:
        Request({"type": "http", "headers": headers}).headers.get("x-api-key")

    async def labels_inc() -> None:
        counter.labels("messages", "200", "p", "us-east-1", "m", "k").inc()
        histogram.labels("messages", "p").observe(0.001)

    async def sha256() -> None:
        hashlib.sha256(b"sk-" + b"k" * 40).hexdigest()

    async def request_id() -> None:
        secrets.token_hex(12)

    async def json_both() -> None:
        orjson.dumps(orjson.loads(body))

    async def usage_record() -> None:
        UsageRecord(request_id="r", key_id="k", endpoint="messages", model="m", status=200)

    async def clock() -> None:
        _clock()

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("an `async def` called and awaited (one layer of the await chain)", one_layer),
        ("a task: created, run one step, cancelled (the disconnect watcher)", task_step_cancel),
        ("`asyncio.timeout` entered and left (one deadline)", timer),
        ("anyio `CancelScope(shield=True)` entered and left (the settle)", shield),
        ("Starlette `Request` built and one header read", request_and_header),
        ("Prometheus: one counter `labels().inc()` and one histogram `labels().observe()`", labels_inc),
        ("SHA-256 of a 43-byte key, hex", sha256),
        ("a request id (`secrets.token_hex(12)`)", request_id),
        ("orjson: parse and dump a 100-byte Messages body", json_both),
        ("a `UsageRecord` built", usage_record),
        ("the process CPU clock read once (the timers' unit)", clock),
    ]

    async def run() -> list[str]:
        rows = []
        for label, case in cases:
            for _ in range(500):
                await case()
            best = math.inf
            for _ in range(5):
                t0 = time.perf_counter_ns()
                for _ in range(n // 5):
                    await case()
                best = min(best, (time.perf_counter_ns() - t0) / (n // 5))
            rows.append(f"| {label} | {best / 1000:.2f} |")
        return rows

    rows = uvloop.run(run())
    return "\n".join(["| building block (best of 5, in a loop on uvloop) | µs |", "|---|---:|", *rows])


def render_routes(out: dict[str, Any]) -> str:
    """Every route side by side: median CPU µs per request of each phase, then sum and whole."""
    routes = list(out)
    med = {route: _medians(out[route]["phased"]) for route in routes}
    names = sorted(
        {n for m in med.values() for n in m}, key=lambda n: -sum(m.get(n, 0) for m in med.values())
    )
    lines = ["| phase | " + " | ".join(routes) + " |", "|---|" + "---:|" * len(routes)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{med[r].get(n, 0.0):.1f}" for r in routes) + " |")
    sums = [sum(med[r].values()) for r in routes]
    lines.append("| **sum of the phases** | " + " | ".join(f"**{v:.1f}**" for v in sums) + " |")
    for label, values in (
        ("the process's CPU over the window", [_whole(out[r]["phased"]) for r in routes]),
        (
            "psutil's, as the bench measures",
            [statistics.median(x["psutil_ms"] for x in out[r]["phased"]) * 1000 for r in routes],
        ),
        (
            "plain `serve` (no timers), alternated",
            [statistics.median(out[r]["plain_ms"]) * 1000 for r in routes],
        ),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    return "\n".join(lines)


def _whole(runs: list[dict[str, Any]]) -> float:
    return statistics.median(r["whole_ns"] / 1000 / max(1, r["requests"]) for r in runs)


def compare(args: argparse.Namespace, routes: list[str]) -> int:
    """Two instrumented gateways (``--before`` and this tree) on one emulator, phase by phase."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-phases-") as tmp:
        workdir = Path(tmp)
        emulator = start_emulator(workdir)
        with running(emulator):
            sides = {
                "before": start_phased_gateway(emulator, workdir, "before", args.before),
                "after": start_phased_gateway(emulator, workdir, "after", ROOT),
            }
            with running(*(server for server, _ in sides.values())):
                for route in routes:
                    for rep in range(args.reps):
                        order = list(sides.items()) if rep % 2 == 0 else list(reversed(sides.items()))
                        for side, (server, stats) in order:
                            r = measure_phased(server, stats, route, args.warmup, args.duration)
                            runs.setdefault((side, route), []).append(r)
                    print(render_compare(route, runs[("before", route)], runs[("after", route)]), flush=True)
                    print(flush=True)
    if args.json is not None:
        args.json.write_bytes(orjson.dumps({f"{s} {r}": v for (s, r), v in runs.items()}))
    return 0


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    names = {n for r in runs for n in r["ns"]}
    return {
        n: statistics.median(r["ns"].get(n, 0) / 1000 / max(1, r["requests"]) for r in runs) for n in names
    }


def render_compare(route: str, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    """One route's phases before and after (medians of µs per request over the repetitions)."""
    b, a = _medians(before), _medians(after)
    lines = [
        f"#### {route} (before / after)",
        "",
        "| phase | before µs | after µs | after - before |",
        "|---|---:|---:|---:|",
    ]
    for n in sorted(set(b) | set(a), key=lambda n: -b.get(n, 0)):
        vb, va = b.get(n, 0.0), a.get(n, 0.0)
        lines.append(f"| {n} | {vb:.1f} | {va:.1f} | {va - vb:+.1f} |")
    whole_b = statistics.median(r["whole_ns"] / 1000 / max(1, r["requests"]) for r in before)
    whole_a = statistics.median(r["whole_ns"] / 1000 / max(1, r["requests"]) for r in after)
    lines.append(
        f"| **whole (process CPU)** | **{whole_b:.1f}** | **{whole_a:.1f}** | **{whole_a - whole_b:+.1f}** |"
    )
    lines.append("")
    lines.append(f"{len(before)} repetitions per side, interleaved.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""Issue #18's targets, judged from one run's results: each target's value and whether it is met.

A target whose part did not run, or ran too short to judge (``--quick``), is reported as not judged,
never as met. The table is written into docs/benchmarks.md and README.md with the results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from bench.routes import RELAY, ROUTES
from bench.tail import BARS

ADDED_P50_MS = 0.35
CPU_MS_PER_REQUEST = 0.30
EVENTS_PER_CPU_S = 150_000
KIB_PER_STREAM = 32.0
HELD_STREAMS = 2000
SOAK_S = 600.0
SOAK_DRIFT_PCT = 5.0
TAIL_S = 30.0
MOUNT_MS = 0.05


class Verdict(TypedDict):
    """One target: what it asks, what the run measured, and whether that meets it (None: not judged)."""

    target: str
    value: str
    met: bool | None


def _median(cell: dict[str, Any], key: str) -> float | None:
    value = cell.get(key)
    return None if value is None else float(value["median"])


def _gateway_cells(results: dict[str, Any], c: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    rows = results.get("routes", {})
    return [(n, row, row[c]) for n, row in rows.items() if row["target"] == "gateway" and c in row]


def added_latency(results: dict[str, Any]) -> Verdict:
    target = f"added p50 over the raw HTTP call ≤ {ADDED_P50_MS} ms, every route, c=1 (streamed: first byte)"
    worst: tuple[float, str, str | None] | None = None
    for name, row, cell in _gateway_cells(results, "1"):
        added = _median(cell, "added_ttfb_p50_ms" if row.get("streamed") else "added_p50_ms")
        if added is not None and (worst is None or added > worst[0]):
            worst = (added, name, row.get("reference"))
    if worst is None:
        return {"target": target, "value": "not run (routes)", "met": None}
    # The floor relay's row on the same raw call as the worst route, if there is one.
    relay = next(
        (
            n
            for n, row in results["routes"].items()
            if row["target"] == "relay" and row["reference"] == worst[2]
        ),
        RELAY,
    )
    value = f"worst {worst[0]:+.2f} ms ({worst[1]})" + _floor(
        results, "1", "added_p50_ms", "{:+.2f} ms", relay
    )
    return {"target": target, "value": value, "met": worst[0] <= ADDED_P50_MS}


def _floor(results: dict[str, Any], c: str, key: str, form: str, relay: str = RELAY) -> str:
    """``; floor relay …``: the same figure for ``bench.relay`` (the gateway's parts alone), if it ran."""
    cell = results.get("routes", {}).get(relay, {}).get(c)
    value = _median(cell, key) if cell is not None else None
    if value is None:
        return ""
    return f"; the floor relay ({relay}: server, client, signer alone): {form.format(value)}"


def cpu_per_request(results: dict[str, Any]) -> Verdict:
    target = (
        f"gateway CPU ≤ {CPU_MS_PER_REQUEST} ms per non-streamed request, every feature on "
        "(c=16; single-call routes, embeddings of 16 excluded)"
    )
    found: dict[str, tuple[float, str]] = {}
    for c in ("1", "16"):
        for name, row, cell in _gateway_cells(results, c):
            cpu = _median(cell, "gateway_cpu_ms_per_request")
            if row.get("streamed") or name.startswith("/v1/embeddings") or cpu is None:
                continue
            if c not in found or cpu > found[c][0]:
                found[c] = (cpu, name)
    if "16" not in found:
        return {"target": target, "value": "not run (routes at c=16)", "met": None}
    value = f"worst {found['16'][0]:.3f} ms ({found['16'][1]})"
    value += _floor(results, "16", "gateway_cpu_ms_per_request", "{:.3f} ms")
    if "1" in found:
        value += f"; at c=1 worst {found['1'][0]:.3f} ms ({found['1'][1]})"
        value += _floor(results, "1", "gateway_cpu_ms_per_request", "{:.3f} ms")
    return {"target": target, "value": value, "met": found["16"][0] <= CPU_MS_PER_REQUEST}


def tail(results: dict[str, Any]) -> Verdict:
    target = "p99 ≤ 2 x p50 at c=1 and ≤ 3 x at c=16, every gateway route, 30 s windows"
    run = results.get("tail")
    if run is None:
        return {"target": target, "value": "not run (tail)", "met": None}
    worst: dict[str, tuple[float, str]] = {}
    for name, row in run["routes"].items():
        for c in BARS:
            ratio = _median(row.get(c, {}), "p99_over_p50")
            if ratio is not None and (c not in worst or ratio > worst[c][0]):
                worst[c] = (ratio, name)
    value = "; ".join(f"c={c}: worst {r:.1f} x ({n})" for c, (r, n) in worst.items())
    met: bool | None = all(worst[c][0] <= BARS[c] for c in worst) and bool(worst)
    gateway_routes = sum(1 for r in ROUTES if r.target == "gateway")
    if run["duration_s"] < TAIL_S:
        met, value = None, f"{value} (windows of {run['duration_s']} s: too short to judge)"
    elif len(run["routes"]) < gateway_routes:
        met, value = None, f"{value} ({len(run['routes'])} of {gateway_routes} routes)"
    return {"target": target, "value": value, "met": met}


def every_route(results: dict[str, Any]) -> Verdict:
    target = "every route measured beside its raw Bedrock call"
    rows = results.get("routes")
    if rows is None:
        return {"target": target, "value": "not run (routes)", "met": None}
    wanted = [r.name for r in ROUTES if r.target == "gateway"]
    measured = [n for n in wanted if n in rows]
    errors = sum(cell["errors"] for n in measured for c, cell in rows[n].items() if c.isdigit())
    value = f"{len(measured)} of {len(wanted)} gateway routes, {errors} answers not 200"
    return {"target": target, "value": value, "met": len(measured) == len(wanted) and errors == 0}


def stream_events(results: dict[str, Any]) -> Verdict:
    target = f"≥ {EVENTS_PER_CPU_S:,} relayed stream events per gateway CPU second"
    st = results.get("streaming")
    if st is None:
        return {"target": target, "value": "not run (streaming)", "met": None}
    rates = {k: v["median"] for k, v in st["events_per_cpu_s"].items()}
    value = ", ".join(f"{rate:,.0f} ({name})" for name, rate in rates.items())
    return {"target": target, "value": value, "met": min(rates.values()) >= EVENTS_PER_CPU_S}


def stream_memory(results: dict[str, Any]) -> Verdict:
    target = f"≤ {KIB_PER_STREAM:.0f} KiB resident per open stream at {HELD_STREAMS:,} open"
    mem = results.get("memory")
    if mem is None:
        return {"target": target, "value": "not run (memory)", "met": None}
    kib = mem["kib_per_stream"]["median"]
    opened = min(r["open"] for r in mem["runs"])
    value = f"{kib:.1f} KiB per stream with {opened:,} open"
    if opened < HELD_STREAMS:
        return {"target": target, "value": value + " (too few to judge)", "met": None}
    return {"target": target, "value": value, "met": kib <= KIB_PER_STREAM}


def soak_drift(results: dict[str, Any]) -> Verdict:
    target = f"resident memory flat (±{SOAK_DRIFT_PCT:.0f} %) over a {SOAK_S / 60:.0f}-minute mixed soak"
    soak = results.get("soak")
    if soak is None:
        return {"target": target, "value": "not run (soak)", "met": None}
    value = (
        f"{soak['drift_pct']:+.1f} % over {soak['duration_s']:.0f} s "
        f"({soak['rss_start'] / 2**20:.0f} → {soak['rss_end'] / 2**20:.0f} MiB, "
        f"{soak['requests']:,} requests, {soak['errors']} not 200)"
    )
    if soak["duration_s"] < SOAK_S:
        return {"target": target, "value": value + " (too short to judge)", "met": None}
    flat = abs(soak["drift_pct"]) <= SOAK_DRIFT_PCT
    return {"target": target, "value": value, "met": flat and not soak["errors"]}


def mount(results: dict[str, Any]) -> Verdict:
    """Judged on the two forms docs/integration.md gives a FastAPI host that calls ``gc.freeze()``.

    ``GatewayMiddleware`` in front of the app: end to end, over ``serve``. ``app.mount``: over
    ``serve`` less FastAPI's own layers timed in place (its app, middleware and router run before the
    gateway is reached: the host's code, not the gateway's). The host as is, without ``gc.freeze()``,
    is reported beside.
    """
    target = f"mounted in FastAPI under uvicorn: ≤ {MOUNT_MS} ms over `serve` (p50 at c=1, CPU per request)"
    run = results.get("mount")
    if run is None or "1" not in run:
        return {"target": target, "value": "not run (mount)", "met": None}
    cells = {c: cell for c, cell in run.items() if c.isdigit()}

    def added(prefix: str) -> tuple[float, dict[str, float]]:
        p50 = cells["1"][prefix + "added_p50_ms"]["median"]
        return p50, {c: cell[prefix + "added_cpu_ms_per_request"]["median"] for c, cell in cells.items()}

    def figures(p50: float, cpu: dict[str, float]) -> str:
        return f"p50 {p50:+.3f} ms; CPU " + ", ".join(f"{v:+.3f} ms (c={c})" for c, v in cpu.items())

    p50, cpu = added("")
    value = f"`app.mount` as is: {figures(p50, cpu)}"
    if not all("wrapped_added_cpu_ms_per_request" in cell and "clock" in cell for cell in cells.values()):
        return {
            "target": target,
            "value": value + " (no GatewayMiddleware host, no clock: not judged)",
            "met": None,
        }
    layers = {c: cell["clock"]["host_layers_us"]["median"] / 1000 for c, cell in cells.items()}
    p50, cpu = added("frozen_")
    share_p50 = p50 - layers["1"]
    share_cpu = {c: v - layers[c] for c, v in cpu.items()}
    value += (
        f". `app.mount`, `gc.freeze()`: {figures(p50, cpu)}; FastAPI's own layers timed in place "
        + ", ".join(f"{v:+.3f} ms (c={c})" for c, v in layers.items())
        + f"; less those, {figures(share_p50, share_cpu)}"
    )
    wrapped_p50, wrapped_cpu = added("wrapped_")
    value += f". `GatewayMiddleware` in front, `gc.freeze()`: {figures(wrapped_p50, wrapped_cpu)}"
    met = max(share_p50, *share_cpu.values(), wrapped_p50, *wrapped_cpu.values()) <= MOUNT_MS
    dispatch = run.get("dispatch")
    if dispatch is not None:
        value += f". FastAPI's `Mount` alone, caches warm: {dispatch['added_us']['median'] / 1000:+.4f} ms"
    return {"target": target, "value": value, "met": met}


JUDGES: tuple[Callable[[dict[str, Any]], Verdict], ...] = (
    added_latency,
    cpu_per_request,
    tail,
    every_route,
    stream_events,
    stream_memory,
    soak_drift,
    mount,
)


def evaluate(results: dict[str, Any]) -> list[Verdict]:
    """Every target's verdict for this run."""
    return [judge(results) for judge in JUDGES]


def render(verdicts: list[Verdict]) -> list[str]:
    """The targets table (Markdown)."""
    lines = ["| target (issue #18) | this run | met |", "|---|---|---|"]
    for v in verdicts:
        met = {True: "yes", False: "**no**", None: "not judged"}[v["met"]]
        lines.append(f"| {v['target']} | {v['value']} | {met} |")
    return [*lines, ""]

"""The tail: p99 against p50 for every gateway route over long closed-loop windows.

The route table's windows are a few seconds, too short for a p99 that means much; here each gateway
route runs once per concurrency for ``duration_s`` (30 s in the full run, as issue #18 asks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.routes import ROUTES, measure_routes

if TYPE_CHECKING:
    from bench.procs import Server

# p99 / p50 bars per concurrency (issue #18).
BARS = {"1": 2.0, "16": 3.0}


def measure_tail(
    concurrency: tuple[int, ...],
    warmup_s: float,
    duration_s: float,
    emulator: Server,
    gateway: Server,
    measure: Callable[..., dict[str, Any]],
    log: Callable[[str], None],
    names: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """One long window per gateway route (those ``names``, else all) and concurrency."""
    routes = tuple(r for r in ROUTES if r.target == "gateway" and (names is None or r.name in names))
    summary = measure_routes(concurrency, 1, warmup_s, duration_s, emulator, gateway, measure, log, routes)
    return {"duration_s": duration_s, "routes": summary}


def render(result: dict[str, Any], cell: Callable[..., str]) -> list[str]:
    """The tail table for docs/benchmarks.md."""
    lines = [
        "### Tail",
        "",
        f"Each gateway route alone, closed loop, one {result['duration_s']:g} s window per concurrency.",
        "",
        "| route | c | requests/s | p50 ms | p99 ms | p99/p50 | bar |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["routes"].items():
        for c, data in row.items():
            if not c.isdigit():
                continue
            bar = f"≤ {BARS[c]:.0f} x" if c in BARS else "—"
            lines.append(
                f"| {name} | {c} | {cell(data['rps'], '{:.0f}')} | {cell(data['p50_ms'])} | "
                f"{cell(data['p99_ms'])} | {cell(data['p99_over_p50'], '{:.1f}')} | {bar} |"
            )
    return [*lines, ""]

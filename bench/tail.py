"""The tail: p99 against p50 for every gateway route over long closed-loop windows.

The route table's windows are a few seconds, too short for a p99 that means much; here each gateway
route runs once per concurrency for ``duration_s`` (30 s in the full run, as issue #18 asks).

For a streamed route the time measured is the whole answer, request sent to last byte (the bench's
streams are short: six events). Two things beside each row say how much of a tail is the machine's:

* the raw stream each streamed route stands for, sent straight to the emulator by the same load
  generator in the same run (a reference, judged by no bar): the tail a machine gives with no
  gateway in the path;
* the share of the window the gateway's event loop spent runnable but waiting for a CPU (Linux's
  schedstat): on a two-core machine shared with the emulator, the load generator and whatever else
  runs, a slow request is mostly the gateway waiting its turn, and this column shows when.
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
    """One long window per gateway route (those ``names``, else all) and concurrency.

    The raw streams that the streamed routes stand for are measured too, as ``references``.
    """
    routes = tuple(r for r in ROUTES if r.target == "gateway" and (names is None or r.name in names))
    wanted = {r.reference for r in routes if r.streamed}
    references = tuple(r for r in ROUTES if r.name in wanted)
    summary = measure_routes(
        concurrency, 1, warmup_s, duration_s, emulator, gateway, measure, log, routes + references
    )
    return {
        "duration_s": duration_s,
        "routes": {r.name: summary[r.name] for r in routes},
        "references": {r.name: summary[r.name] for r in references},
    }


def render(result: dict[str, Any], cell: Callable[..., str]) -> list[str]:
    """The tail table for docs/benchmarks.md."""
    lines = [
        "### Tail",
        "",
        f"Each gateway route alone, closed loop, one {result['duration_s']:g} s window per concurrency; "
        "a streamed answer is timed from request to last byte. *gateway waiting* is the share of the "
        "window the gateway's event loop was runnable but had no CPU (Linux schedstat). `raw …` rows "
        "are the raw streams the streamed routes stand for, sent straight to the emulator in the same "
        "run: the machine's own tail, judged by no bar.",
        "",
        "| route | c | requests/s | p50 ms | p99 ms | p99/p50 | bar | gateway waiting |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(name, row, True) for name, row in result["routes"].items()]
    rows += [(name, row, False) for name, row in result.get("references", {}).items()]
    for name, row, judged in rows:
        for c, data in row.items():
            if not c.isdigit():
                continue
            bar = f"≤ {BARS[c]:.0f} x" if judged and c in BARS else "—"
            wait = cell(data["gateway_wait_share"], "{:.0%}") if "gateway_wait_share" in data else "—"
            lines.append(
                f"| {name} | {c} | {cell(data['rps'], '{:.0f}')} | {cell(data['p50_ms'])} | "
                f"{cell(data['p99_ms'])} | {cell(data['p99_over_p50'], '{:.1f}')} | {bar} | {wait} |"
            )
    return [*lines, ""]

"""Compare benchmark runs of two code versions: ``python -m bench.compare BEFORE... -- AFTER...``.

Each side is one or more JSON results of ``python -m bench`` (for example several ``--quick`` runs
alternated with the other side's on a loaded machine); a cell is the median over that side's runs.
Per route: requests/s, added p50 over the raw row and the gateway's CPU milliseconds per request,
with the change; then the streaming events per gateway CPU second. Lower CPU per request is the
figure least disturbed by other load on the machine.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import orjson


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _routes(runs: list[dict[str, Any]], metric: str) -> dict[tuple[str, str], float | None]:
    cells: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for name, row in run.get("routes", {}).items():
            for c, data in row.items():
                if c.isdigit() and metric in data:
                    cells.setdefault((name, c), []).append(data[metric]["median"])
    return {key: _median(values) for key, values in cells.items()}


def _change(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == 0:
        return "—"
    return f"{(after - before) / before:+.0%}"


def _fmt(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def render(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    """The comparison as markdown tables."""
    lines = [
        f"Medians of {len(before)} run(s) per side.",
        "",
        "| route | c | req/s before | req/s after | change | added p50 ms before | after | "
        "gateway CPU ms/request before | after | change |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rps = (_routes(before, "rps"), _routes(after, "rps"))
    added = (_routes(before, "added_p50_ms"), _routes(after, "added_p50_ms"))
    cpu = (_routes(before, "gateway_cpu_ms_per_request"), _routes(after, "gateway_cpu_ms_per_request"))
    for key in rps[0]:
        name, c = key
        lines.append(
            f"| {name} | {c} | {_fmt(rps[0][key], '{:.0f}')} | {_fmt(rps[1].get(key), '{:.0f}')} | "
            f"{_change(rps[0][key], rps[1].get(key))} | {_fmt(added[0].get(key), '{:+.2f}')} | "
            f"{_fmt(added[1].get(key), '{:+.2f}')} | {_fmt(cpu[0].get(key), '{:.3f}')} | "
            f"{_fmt(cpu[1].get(key), '{:.3f}')} | {_change(cpu[0].get(key), cpu[1].get(key))} |"
        )
    streams = [
        [run["streaming"]["events_per_cpu_s"][d]["median"] for run in side if "streaming" in run]
        for side in (before, after)
        for d in ("messages", "chat")
    ]
    if all(streams):
        b_msg, b_chat, a_msg, a_chat = (_median(s) for s in streams)
        lines += [
            "",
            "| streaming, events per gateway CPU second | before | after | change |",
            "|---|---:|---:|---:|",
            f"| `/v1/messages` | {b_msg:,.0f} | {a_msg:,.0f} | {_change(b_msg, a_msg)} |",
            f"| `/v1/chat/completions` | {b_chat:,.0f} | {a_chat:,.0f} | {_change(b_chat, a_chat)} |",
        ]
    return "\n".join(lines)


def _load(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(Path(path).read_bytes())
    return loaded


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__)
        return 2
    split = argv.index("--")
    before, after = argv[:split], argv[split + 1 :]
    print(render([_load(p) for p in before], [_load(p) for p in after]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

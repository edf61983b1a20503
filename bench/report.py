"""Render results as the Markdown tables in docs/benchmarks.md (between two marker comments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import routes

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def _cell(s: dict[str, Any], fmt: str = "{:.2f}") -> str:
    if s["n"] <= 1:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def render(r: dict[str, Any]) -> str:
    """The results section: machine, then one table per measurement."""
    m = r["machine"]
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['platform']}.",
        f"Packages: {pkgs}"
        + (f", litellm {r['litellm']['version']}" if r.get("litellm", {}).get("run") else "")
        + ".",
        f"Settings: {r['settings']['reps']} repetitions of {r['settings']['duration_s']} s after "
        f"{r['settings']['warmup_s']} s of warm-up; cells are the median (min-max) of the repetitions.",
        "",
    ]
    if "requests" in r:
        lines += [
            "### Non-streaming requests",
            "",
            "| target | concurrency | requests/s | p50 ms | p99 ms | added p50 ms | throughput vs floor |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, by_c in r["requests"].items():
            for c, cell in by_c.items():
                cmp = r.get("vs_floor", {}).get(name, {}).get(c)
                added = f"{cmp['added_p50_ms']:+.2f}" if cmp else "—"
                ratio = f"{cmp['throughput_vs_floor']:.0%}" if cmp else "—"
                lines.append(
                    f"| {name} | {c} | {_cell(cell['rps'], '{:.0f}')} | {_cell(cell['p50_ms'])} | "
                    f"{_cell(cell['p99_ms'])} | {added} | {ratio} |"
                )
        if not r.get("litellm", {}).get("run"):
            lines += ["", "LiteLLM's proxy: not run (not installed in this environment)."]
        lines.append("")
    if "routes" in r:
        lines += routes.render(r["routes"], _cell)
    if "streaming" in r:
        st = r["streaming"]
        lines += [
            "### Streaming",
            "",
            "| measure | Anthropic `/v1/messages` | OpenAI `/v1/chat/completions` |",
            "|---|---:|---:|",
            f"| time to first byte p50, ms (direct aiobotocore: {_cell(st['ttfb_p50_ms']['floor'])}) | "
            f"{_cell(st['ttfb_p50_ms']['messages'])} | {_cell(st['ttfb_p50_ms']['chat'])} |",
            f"| added time to first byte p50, ms | {_cell(st['added_ttfb_p50_ms']['messages'])} | "
            f"{_cell(st['added_ttfb_p50_ms']['chat'])} |",
            f"| events per gateway CPU second ({st['stream_events']}-event streams, full path) | "
            f"{_cell(st['events_per_cpu_s']['messages'], '{:,.0f}')} | "
            f"{_cell(st['events_per_cpu_s']['chat'], '{:,.0f}')} |",
            "| events per wall second (4 concurrent streams) | "
            f"{_cell(st['events_per_s_wall']['messages'], '{:,.0f}')} | "
            f"{_cell(st['events_per_s_wall']['chat'], '{:,.0f}')} |",
            "",
        ]
    if "micro" in r:
        lines += [
            "### Pure transcoders and translators",
            "",
            "| part | µs per item | items/s |",
            "|---|---:|---:|",
        ]
        for name, cell in r["micro"].items():
            rate = cell.get("events_per_s") or cell.get("requests_per_s")
            lines.append(f"| {name} | {_cell(cell['us_per_item'])} | {_cell(rate, '{:,.0f}')} |")
        lines.append("")
    if "memory" in r:
        mem = r["memory"]
        lines += [
            "### Memory",
            "",
            f"Resident set added per open stream with {mem['streams']} concurrent paced streams: "
            f"{_cell(mem['kib_per_stream'], '{:.1f}')} KiB.",
            "",
        ]
    return "\n".join(lines)


def write_docs(path: Path, table: str) -> None:
    """Replace the text between the markers (or append the section when they are missing)."""
    text = path.read_text() if path.exists() else ""
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    path.write_text(text)

"""Render results as the Markdown tables in docs/benchmarks.md and README.md (between marker comments).

``python -m bench.report [FILE]`` writes both from a results file (default bench/results/latest.json)
without running anything: how the tables are regenerated from a run made elsewhere.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from bench import mount, routes, tail, targets

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"
README_START = "<!-- bench:readme:start -->"
README_END = "<!-- bench:readme:end -->"
ROOT = Path(__file__).resolve().parent.parent
# The routes README.md lists, in this order (the rest are in docs/benchmarks.md).
README_ROUTES = (
    routes.RELAY,
    routes.RELAY_COHERE,
    "/v1/messages",
    "/v1/messages (stream)",
    "/v1/messages (Converse)",
    "/v1/messages/count_tokens",
    "/v1/chat/completions (Claude)",
    "/v1/chat/completions (Titan Text)",
    "/v1/responses (Claude)",
    "/v1/embeddings (Cohere, 16)",
    "/bedrock converse (pass-through)",
)


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
        *r.get("notes", []),
        "",
    ]
    if "targets" in r:
        lines += ["### Against the targets", "", *targets.render(r["targets"])]
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
    if "tail" in r:
        lines += tail.render(r["tail"], _cell)
    if "mount" in r:
        lines += mount.render(r["mount"], _cell)
    if "memory" in r:
        mem = r["memory"]
        lines += [
            "### Memory",
            "",
            f"Resident set added per open stream with {mem['streams']} concurrent paced streams: "
            f"{_cell(mem['kib_per_stream'], '{:.1f}')} KiB.",
            "",
        ]
    if "soak" in r:
        soak = r["soak"]
        lines += [
            "### Soak",
            "",
            f"Mixed traffic (every gateway route in turn, {soak['concurrency']} callers) on a fresh gateway "
            f"for {soak['duration_s']:.0f} s after {soak['warmup_s']:.0f} s of warm-up: "
            f"{soak['requests']:,} requests ({soak['errors']} not 200); resident set "
            f"{soak['rss_start'] / 2**20:.1f} MiB at the start, {soak['rss_end'] / 2**20:.1f} MiB at the end "
            f"({soak['drift_pct']:+.1f} %), {soak['rss_peak'] / 2**20:.1f} MiB at most.",
            "",
        ]
    return "\n".join(lines)


def _cpu(cell: dict[str, Any]) -> str:
    cpu = cell.get("gateway_cpu_ms_per_request")
    return "—" if cpu is None else f"{cpu['median']:.3f}"


def render_readme(r: dict[str, Any]) -> str:
    """README.md's performance section: the targets and the main routes against the raw wire."""
    m = r["machine"]
    lines = [
        f"Measured by `python -m bench` on {m['nproc']} CPUs ({m['cpu']}), one gateway worker, every "
        "feature on (auth, routing, limits, usage hook, metrics), against the built-in emulator; *raw* is "
        "the same Bedrock call sent straight to the emulator with no client library, in the same run; "
        "*relay* rows are `bench.relay`, the gateway's server, upstream client and signer forwarding that "
        "call with none of the gateway's own work (their CPU column is the relay's). "
        "Method and every table: [docs/benchmarks.md](docs/benchmarks.md).",
        "",
    ]
    if "targets" in r:
        lines += targets.render(r["targets"])
    rows = r.get("routes", {})
    if rows:
        lines += [
            "| route | added p50 over raw, c=1 | gateway CPU ms/request, c=1 | c=16 |",
            "|---|---:|---:|---:|",
        ]
        for name in README_ROUTES:
            row = rows.get(name)
            if row is None:
                continue
            one, sixteen = row.get("1", {}), row.get("16", {})
            key = "added_ttfb_p50_ms" if row.get("streamed") else "added_p50_ms"
            added = f"{one[key]['median']:+.2f} ms" if key in one else "—"
            if row.get("streamed") and key in one:
                added += " (first byte)"
            cpu = [_cpu(c) for c in (one, sixteen)]
            label = f"`{name}`" + (" (the floor: no gateway work)" if row.get("target") == "relay" else "")
            lines.append(f"| {label} | {added} | {cpu[0]} | {cpu[1]} |")
        lines.append("")
        lines += routes.floor_verdict(rows)
    peer = r.get("requests", {})
    if "litellm_messages" in peer and "gateway_messages" in peer and "16" in peer["litellm_messages"]:
        ours = peer["gateway_messages"]["16"]["rps"]["median"]
        theirs = peer["litellm_messages"]["16"]["rps"]["median"]
        if theirs:
            ratio = ours / theirs
            lines += [f"`/v1/messages` at c=16 serves {ratio:.0f} times LiteLLM's proxy's requests/s.", ""]
    return "\n".join(lines)


def replace_block(path: Path, start: str, end: str, text: str, append_heading: str | None = None) -> None:
    """Replace the text between the markers; append it under ``append_heading`` when they are missing."""
    content = path.read_text() if path.exists() else ""
    block = f"{start}\n{text}\n{end}"
    if start in content and end in content:
        head, rest = content.split(start, 1)
        _, after = rest.split(end, 1)
        content = head + block + after
    elif append_heading is not None:
        content = content.rstrip("\n") + f"\n\n{append_heading}\n\n" + block + "\n"
    else:
        raise ValueError(f"{path} has no {start} ... {end} markers")
    path.write_text(content)


def write_docs(path: Path, table: str) -> None:
    """Replace docs/benchmarks.md's results block (or append a Results section when it is missing)."""
    replace_block(path, START, END, table, append_heading="## Results")


def write_all(root: Path, results: dict[str, Any]) -> None:
    """docs/benchmarks.md's results block and README.md's performance table, from one run."""
    write_docs(root / "docs" / "benchmarks.md", render(results))
    replace_block(root / "README.md", README_START, README_END, render_readme(results))


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else ROOT / "bench" / "results" / "latest.json"
    results: dict[str, Any] = orjson.loads(source.read_bytes())
    results["targets"] = targets.evaluate(results)
    write_all(ROOT, results)
    print(f"wrote docs/benchmarks.md and README.md from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

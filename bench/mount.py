"""What mounting costs: the gateway in a FastAPI host app under uvicorn, beside ``bedrock-mw serve``.

Both processes serve the same config on the same emulator and take the same closed-loop load in
turn, repetitions interleaved, so both see the same machine. Each repetition pairs the two: the
host's p50 and gateway-process CPU per request minus ``serve``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.names import HOST
from bench.routes import ANTHROPIC, _messages
from bench.stats import spread

if TYPE_CHECKING:
    from bench.procs import Server

PATH = "/v1/messages"


def mount_cost(
    concurrency: tuple[int, ...],
    reps: int,
    warmup_s: float,
    duration_s: float,
    emulator: Server,
    serve: Server,
    workdir: Path,
    measure: Callable[..., dict[str, Any]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Per concurrency: both sides' req/s, p50, p99 and CPU per request, and the paired differences."""
    from bench.procs import start_host_app  # psutil: only where processes are run

    host = start_host_app(emulator, workdir)
    servers = {"serve": serve, "mounted": host}
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {n: {c: [] for c in concurrency} for n in servers}
    try:
        for rep in range(reps):
            for name, server in servers.items():
                for c in concurrency:
                    spec = {
                        "host": HOST,
                        "port": server.port,
                        "path": server.prefix + PATH,
                        "body": _messages(),
                        "headers": ANTHROPIC,
                        "mode": "closed",
                        "concurrency": c,
                        "warmup_s": warmup_s,
                        "duration_s": duration_s,
                    }
                    r = measure("bench.loadgen", spec, watched=server)
                    r["cpu_ms_per_request"] = 1000 * r["server_cpu_s"] / max(1, r["requests"])
                    runs[name][c].append(r)
                    log(
                        f"  rep {rep + 1} {name:8} c={c:<3} {r['rps']:7.0f} req/s p50 {r['p50_ms']:6.2f} "
                        f"ms, {r['cpu_ms_per_request']:.3f} CPU ms/request, errors {r['errors']}"
                    )
    finally:
        host.stop()
    out: dict[str, Any] = {"path": PATH, "prefix": host.prefix}
    for c in concurrency:
        cell: dict[str, Any] = {}
        for name, by_c in runs.items():
            rs = by_c[c]
            cell[name] = {
                "rps": spread([r["rps"] for r in rs]),
                "p50_ms": spread([r["p50_ms"] for r in rs]),
                "p99_ms": spread([r["p99_ms"] for r in rs]),
                "cpu_ms_per_request": spread([r["cpu_ms_per_request"] for r in rs]),
                "errors": sum(r["errors"] for r in rs),
            }
        pairs = list(zip(runs["mounted"][c], runs["serve"][c], strict=True))
        cell["added_p50_ms"] = spread([m["p50_ms"] - s["p50_ms"] for m, s in pairs])
        cell["added_cpu_ms_per_request"] = spread(
            [m["cpu_ms_per_request"] - s["cpu_ms_per_request"] for m, s in pairs]
        )
        out[str(c)] = cell
    return out


def render(result: dict[str, Any], cell: Callable[..., str]) -> list[str]:
    """The mounted-vs-serve table for docs/benchmarks.md."""
    lines = [
        "### Mounted in a host app",
        "",
        f"`{result['path']}` on the gateway mounted at `{result['prefix']}` in a FastAPI app under "
        "uvicorn (`bench/host_app.py`) and on `bedrock-mw serve`, same config, same emulator, "
        "repetitions interleaved; *added* is the mounted process's figure minus `serve`'s, paired by "
        "repetition.",
        "",
        "| c | serve p50 ms | mounted p50 ms | added p50 ms | serve CPU ms/request | "
        "mounted CPU ms/request | added CPU ms/request |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, data in result.items():
        if not c.isdigit():
            continue
        s, m = data["serve"], data["mounted"]
        lines.append(
            f"| {c} | {cell(s['p50_ms'])} | {cell(m['p50_ms'])} | {cell(data['added_p50_ms'], '{:+.3f}')} | "
            f"{cell(s['cpu_ms_per_request'], '{:.3f}')} | {cell(m['cpu_ms_per_request'], '{:.3f}')} | "
            f"{cell(data['added_cpu_ms_per_request'], '{:+.3f}')} |"
        )
    return [*lines, ""]

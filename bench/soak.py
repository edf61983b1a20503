"""Memory over a soak of mixed traffic: is the gateway's resident set flat after its warm-up?

A fresh gateway (so no earlier part's freed memory hides growth) serves every kind of request the
route table has, streamed and not, from a few callers cycling through them, for ``duration_s``
after ``warmup_s``. The resident set is sampled from the end of the warm-up to the end of the
window; the drift is the last sample against the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.names import HOST
from bench.procs import Phased, Server, start_gateway
from bench.routes import ROUTES

CONCURRENCY = 8


def mixed_requests() -> list[dict[str, Any]]:
    """One request per gateway route of the route table.

    ``/v1/responses`` is sent with ``store: false``: a stored answer is kept (up to the store's
    bound of 10,000), which is growth by design, not a leak; the soak looks for the latter.
    """
    requests = []
    for route in ROUTES:
        if route.target != "gateway":
            continue
        body = route.body()
        if route.path == "/v1/responses":
            body["store"] = False
        requests.append({"path": route.path, "body": body, "headers": route.headers})
    return requests


def soak(
    duration_s: float, warmup_s: float, emulator: Server, workdir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Run the soak on a gateway of its own; resident set samples, drift and the load's statuses."""
    requests = mixed_requests()
    gateway = start_gateway(emulator, workdir, name="soak-gateway")
    try:
        spec = {
            "mode": "mix",
            "host": HOST,
            "port": gateway.port,
            "requests": requests,
            "concurrency": CONCURRENCY,
            "warmup_s": warmup_s,
            "duration_s": duration_s,
        }
        load = Phased("bench.loadgen", spec)
        load.expect("warm")
        interval = max(0.5, duration_s / 20)
        started = time.monotonic()
        samples: list[tuple[float, int]] = [(0.0, gateway.rss())]
        load.go()
        while (elapsed := time.monotonic() - started) < duration_s:
            time.sleep(min(interval, duration_s - elapsed))
            samples.append((round(time.monotonic() - started, 2), gateway.rss()))
        result = load.finish()
    finally:
        gateway.stop()
    start, end = samples[0][1], samples[-1][1]
    peak = max(rss for _, rss in samples)
    drift = 100 * (end - start) / start
    log(
        f"  soak {duration_s:.0f} s, {result['requests']} requests ({result['errors']} not 200): RSS "
        f"{start / 2**20:.1f} -> {end / 2**20:.1f} MiB ({drift:+.1f} %), peak {peak / 2**20:.1f} MiB"
    )
    return {
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "concurrency": CONCURRENCY,
        "routes": len(requests),
        "rss_start": start,
        "rss_end": end,
        "rss_peak": peak,
        "drift_pct": drift,
        "samples": samples,
        **result,
    }

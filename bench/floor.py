"""The floor: the same Converse calls made directly with aiobotocore, in their own process.

Speaks the load generator's phase protocol (``bench.loadgen``), so the orchestrator measures it
exactly as it measures the gateway. The client is configured as the gateway configures its own
(no retries, no parameter validation, a pool as large as the concurrency), so the difference between
the two is what the gateway adds, not a different client setup.

Run as ``python -m bench.floor SPEC_JSON`` with ``mode`` ``closed`` or ``stream``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY
from bench.loadgen import Window, _latency_result, _phase, main
from bench.stats import percentile


def _client(spec: dict[str, Any]) -> Any:
    config = AioConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max(64, spec["concurrency"]),
        parameter_validation=False,
        tcp_keepalive=True,
    )
    return AioSession().create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=spec["endpoint_url"],
        aws_access_key_id=EMULATOR_ACCESS_KEY_ID,
        aws_secret_access_key=EMULATOR_SECRET_ACCESS_KEY,
        config=config,
    )


async def _closed(spec: dict[str, Any]) -> dict[str, Any]:
    request = spec["request"]
    window = Window()
    latencies: list[float] = []
    async with _client(spec) as client:

        async def caller() -> None:
            while window.running():
                started = time.perf_counter()
                await client.converse(**request)
                ended = time.perf_counter()
                if window.holds(started, ended):
                    latencies.append(ended - started)

        await window.run(spec, [caller() for _ in range(spec["concurrency"])])
    return _latency_result(latencies, spec["duration_s"], 0)


async def _stream(spec: dict[str, Any]) -> dict[str, Any]:
    request = spec["request"]
    async with _client(spec) as client:

        async def one() -> tuple[float, int]:
            started = time.perf_counter()
            response = await client.converse_stream(**request)
            ttfb = 0.0
            events = 0
            async for _ in response["stream"]:
                if not ttfb:
                    ttfb = time.perf_counter() - started
                events += 1
            return ttfb, events

        async def run(total: int) -> list[tuple[float, int]]:
            remaining = [total]
            out: list[tuple[float, int]] = []

            async def caller() -> None:
                while remaining[0] > 0:
                    remaining[0] -= 1
                    out.append(await one())

            await asyncio.gather(*(caller() for _ in range(spec["concurrency"])))
            return out

        await run(spec["warmup_count"])
        await _phase("warm")
        started = time.perf_counter()
        results = await run(spec["count"])
        seconds = time.perf_counter() - started
    ttfbs = [r[0] for r in results]
    events = sum(r[1] for r in results)
    return {
        "streams": len(results),
        "errors": 0,
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "ttfb_p50_ms": percentile(ttfbs, 50) * 1000,
        "ttfb_p99_ms": percentile(ttfbs, 99) * 1000,
    }


MODES = {"closed": _closed, "stream": _stream}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv, MODES))

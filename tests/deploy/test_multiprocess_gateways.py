"""Prometheus multiprocess mode with several gateways in one process (a host mounting two, a restart).

prometheus_client chooses its multiprocess values when it is imported, from ``PROMETHEUS_MULTIPROC_DIR``,
so each scenario runs in a fresh interpreter with that variable set to a directory of this test's own;
the scrapes are what ``/metrics`` would answer (``PrometheusMetrics.render``), read in that process, and
what a later scrape sees once the process is gone is read here from the same directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

# Runs in the child: ``gateway()`` builds a gateway with metrics on (its ``open_streams`` is the gauge
# its relays count with), ``close(g)`` is its lifespan's shutdown, ``scrape(g)`` the open-streams value
# that g's /metrics reports.
_PRELUDE = """
import asyncio, json
from prometheus_client.parser import text_string_to_metric_families
from bedrock_mw.config import GatewayConfig
from bedrock_mw.gateway import Gateway
from bedrock_mw.observability import PrometheusMetrics
from bedrock_mw.usage import UsageRecord

CONFIG = {
    "providers": [{"id": "p", "auth": {"mode": "api_key", "api_key": "k"}, "region": "us-east-1"}],
    "virtual_keys": [{"id": "test", "key": "vk-test", "providers": ["p"]}],
    "observability": {"metrics": True},
}

def gateway():
    return Gateway(GatewayConfig.model_validate(CONFIG))

def close(gw):
    asyncio.run(gw.aclose())

def metrics(gw):
    return next(o for o in gw.observers if isinstance(o, PrometheusMetrics))

def scrape(gw, name="bedrock_mw_open_streams"):
    body, _ = metrics(gw).render()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None

seen = {}
"""


def _run(tmp_path: Path, scenario: str) -> dict[str, float | None]:
    """Run ``scenario`` in a fresh interpreter in multiprocess mode; the values it put in ``seen``."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir(exist_ok=True)
    script = _PRELUDE + textwrap.dedent(scenario) + "\nprint(json.dumps(seen))\n"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, float | None] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def _scrape_after_exit(metrics_dir: Path) -> float | None:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == "bedrock_mw_open_streams":
                return sample.value
    return None


def test_two_gateways_in_one_process_add_up_their_open_streams_and_requests(tmp_path: Path) -> None:
    seen = _run(
        tmp_path,
        """
        first, second = gateway(), gateway()
        first.open_streams.inc()
        second.open_streams.inc()
        seen["both streaming"] = scrape(second)
        first.open_streams.dec()
        seen["one left"] = scrape(first)
        for gw in (first, second, first, second):
            metrics(gw).observe(UsageRecord(request_id="r", key_id="test", endpoint="messages", model="m"))
        seen["requests"] = scrape(first, "bedrock_mw_requests_total")
        """,
    )
    assert seen == {"both streaming": 2.0, "one left": 1.0, "requests": 4.0}


def test_closing_one_gateway_keeps_the_other_gateways_open_streams(tmp_path: Path) -> None:
    seen = _run(
        tmp_path,
        """
        first, second = gateway(), gateway()
        second.open_streams.inc()
        close(first)  # the host unmounts one gateway; the other still relays a stream
        seen["after the first closed"] = scrape(second)
        second.open_streams.inc()
        seen["a second stream"] = scrape(second)
        """,
    )
    assert seen == {"after the first closed": 1.0, "a second stream": 2.0}


def test_a_gateway_restarted_in_the_same_process_still_reports_its_open_streams(tmp_path: Path) -> None:
    seen = _run(
        tmp_path,
        """
        old = gateway()
        old.open_streams.inc()
        old.open_streams.dec()
        close(old)  # the sub-app's lifespan ended; the host builds a new one in the same process
        new = gateway()
        new.open_streams.inc()
        seen["restarted"] = scrape(new)
        """,
    )
    assert seen == {"restarted": 1.0}


def test_a_process_that_exits_leaves_no_open_streams_in_the_sum(tmp_path: Path) -> None:
    seen = _run(
        tmp_path,
        """
        only = gateway()
        only.open_streams.inc()  # cut without being counted down: the process leaves anyway
        seen["while alive"] = scrape(only)
        close(only)
        """,
    )
    assert seen == {"while alive": 1.0}
    # A worker that left is no part of the live sum (0 or no sample at all, as with no worker).
    assert not _scrape_after_exit(tmp_path / "prometheus")

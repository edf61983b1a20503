"""``bedrock-mw serve --workers 2``: a scrape of /metrics reports both workers' requests, not one's."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

BATCH = 20
MAX_REQUESTS = 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_workers(bedrock_emulator: BedrockEmulator, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    config = {**emulator_gateway_config(bedrock_emulator), "observability": {"metrics": True}}
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")  # a previous run's file: serve removes it
    port = _free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    command = [sys.executable, "-m", "bedrock_mw.cli", "serve", "--config", str(path)]
    command += ["--port", str(port), "--workers", "2", "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("bedrock-mw serve --workers 2 did not start")
            time.sleep(0.2)
        yield base, metrics_dir
    finally:
        process.terminate()
        process.wait(timeout=30)


def _served_messages(exposition: str) -> float:
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith("bedrock_mw_requests_total{") and 'endpoint="messages"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _worker_files(metrics_dir: Path) -> set[str]:
    return {m.group(1) for p in metrics_dir.iterdir() if (m := re.fullmatch(r"counter_(\d+)\.db", p.name))}


def test_a_scrape_sums_every_workers_requests(two_workers: tuple[str, Path]) -> None:
    base, metrics_dir = two_workers
    assert "1" not in _worker_files(metrics_dir), "serve must clear a previous run's metric files"
    body = {"model": "amazon.nova-lite-v1:0", "max_tokens": 4}
    body["messages"] = [{"role": "user", "content": "hi"}]
    sent = 0
    # New connection per request, so the kernel spreads them over both workers' accept queues;
    # keep going until both workers have served (their per-process files exist), within a bound.
    no_keepalive = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base, limits=no_keepalive, timeout=30) as client:
        while sent < MAX_REQUESTS and len(_worker_files(metrics_dir)) < 2:
            for _ in range(BATCH):
                r = client.post("/v1/messages", headers={"x-api-key": "vk-test"}, json=body)
                assert r.status_code == 200, r.text
                sent += 1
        assert len(_worker_files(metrics_dir)) >= 2, "the requests never reached the second worker"
        for _ in range(6):  # whichever worker answers the scrape
            scrape = client.get("/metrics")
            assert scrape.status_code == 200
            assert _served_messages(scrape.text) == sent

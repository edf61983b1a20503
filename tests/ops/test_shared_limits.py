"""Per-key limits held across two gateway processes that share one Redis (``limits.redis_url``)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config
from tests.integration.redis_server import RedisServer

from .conftest import ANTHROPIC, OPENAI

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """``bedrock-mw serve`` in a subprocess of its own, on a free loopback port."""

    def __init__(self, config_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "bedrock_mw.cli", "serve", "--config", str(config_path)]
        self._proc = subprocess.Popen(
            [*command, "--port", str(self.port), "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_live(self, within_s: float = 30.0) -> None:
        deadline = time.monotonic() + within_s
        while True:
            if self._proc.poll() is not None:
                _, err = self._proc.communicate()
                raise RuntimeError(f"gateway process exited: {err.decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.url + "/livez", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gateway process did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """End the process as a crash would: SIGKILL, nothing released, nothing flushed."""
        self._proc.kill()
        self._proc.wait(timeout=10)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)


StartPair = Callable[..., tuple[GatewayProcess, GatewayProcess]]


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def two_gateways(
    shared_redis: RedisServer, bedrock_emulator: BedrockEmulator, tmp_path: Path
) -> Iterator[StartPair]:
    """``two_gateways(**limits)``: two gateway processes sharing one Redis; key ``vk-test`` limited."""
    started: list[GatewayProcess] = []

    def start(**limits: int) -> tuple[GatewayProcess, GatewayProcess]:
        config: dict[str, Any] = emulator_gateway_config(bedrock_emulator)
        config["virtual_keys"][0]["limits"] = limits
        config["limits"] = {"redis_url": shared_redis.url, "redis_prefix": f"ops-{uuid.uuid4().hex[:8]}"}
        path = tmp_path / "gateway.json"
        path.write_text(json.dumps(config))
        pair = (GatewayProcess(path), GatewayProcess(path))
        started.extend(pair)
        for process in pair:
            process.wait_live()
        return pair

    yield start
    for process in started:
        process.stop()


async def test_max_concurrent_holds_across_two_processes(
    two_gateways: StartPair, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    a, b = two_gateways(max_concurrent=2)
    # Every admitted request stays in flight long enough for all the others to arrive.
    bedrock_emulator.faults.add(Fault.delay(1.5))  # Claude: native InvokeModel; OpenAI: Converse

    async def call(url: str, index: int) -> httpx.Response:
        dialect = ANTHROPIC if index % 2 else OPENAI
        return await http.post(url + dialect.path, json=dialect.body(), headers=dialect.headers())

    responses = await asyncio.gather(*(call(gw.url, i) for gw in (a, b) for i in range(4)))

    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(admitted) == 2, [r.status_code for r in responses]
    assert len(refused) == 6
    for response in refused:
        assert response.headers["retry-after"] == "1"
        assert "its max_concurrent limit of 2" in response.text
    assert len(bedrock_emulator.log.entries) == 2

    # Both slots free once the admitted requests finish, whichever process ran them.
    after = await asyncio.gather(call(a.url, 0), call(b.url, 1))
    assert [r.status_code for r in after] == [200, 200]


async def test_requests_per_minute_counts_requests_made_through_the_other_process(
    two_gateways: StartPair, http: httpx.AsyncClient
) -> None:
    a, b = two_gateways(requests_per_minute=3)
    statuses = []
    for gw in (a, a, b, b, a):
        response = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert 55 <= int(response.headers["retry-after"]) <= 60
            assert response.json()["error"]["type"] == "rate_limit_error"
    assert statuses == [200, 200, 200, 429, 429]


async def test_concurrent_bursts_at_both_processes_admit_exactly_the_limit(
    two_gateways: StartPair, http: httpx.AsyncClient
) -> None:
    a, b = two_gateways(requests_per_minute=5)

    async def call(url: str) -> httpx.Response:
        return await http.post(url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())

    responses = await asyncio.gather(*(call(gw.url) for gw in (a, b) for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 7
    assert all("retry-after" in r.headers for r in responses if r.status_code == 429)

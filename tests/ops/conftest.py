"""Operations fixtures: the gateway served by uvicorn on a loopback socket, upstream the emulator.

Everything here goes over real sockets unless a test says otherwise: the point of these tests is
what an operator sees (status codes, headers, logs, metrics, probes) when Bedrock misbehaves.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

import bedrock_mw
from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config
from bedrock_mw.usage import UsageRecord

MODEL = "claude-haiku-4-5"
# What the catalogue name resolves to in us-* regions: the geo inference profile.
MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
KEY = "vk-test"


class UsageLog:
    """A usage hook that keeps every record, for tests to compare with what the client saw."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def __call__(self, record: UsageRecord) -> None:
        self.records.append(record)

    async def wait_for(self, count: int, within_s: float = 2.0) -> list[UsageRecord]:
        """The records once there are ``count`` of them (a stream records after its last byte)."""
        deadline = time.monotonic() + within_s
        while len(self.records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} usage records, got {self.records!r}")
            await asyncio.sleep(0.01)
        return self.records


class _LoopProbe:
    """Remembers the event loop the wrapped app runs on (so a test can count its tasks)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


class ServedGateway:
    """A gateway app served by uvicorn in a thread on a free loopback port, lifespan included."""

    def __init__(self, app: Any, usage: UsageLog) -> None:
        self.app = app
        self.usage = usage
        self._probe = _LoopProbe(app)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self._probe, log_config=None, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)

    @property
    def gateway(self) -> Any:
        """The :class:`bedrock_mw.gateway.Gateway` behind the app."""
        return self.app.state.gateway

    def start(self) -> ServedGateway:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def task_count(self) -> int:
        """How many asyncio tasks the server's event loop holds right now."""
        loop = self._probe.loop
        assert loop is not None, "the gateway has not served anything yet"

        async def count() -> int:
            return len(asyncio.all_tasks())

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(count(), loop))


ServeGateway = Callable[..., ServedGateway]


@pytest.fixture
def serve(bedrock_emulator: BedrockEmulator) -> Iterator[ServeGateway]:
    """``serve(config=None, **create_gateway_options)``: a gateway on a real socket, stopped at teardown.

    The config defaults to the plugin's (provider ``emulator`` in us-east-1, key ``vk-test``); a usage
    hook keeping every record is installed unless the test passes its own.
    """
    served: list[ServedGateway] = []

    def start(config: dict[str, Any] | None = None, **options: Any) -> ServedGateway:
        usage = UsageLog()
        options.setdefault("usage_hook", usage)
        cfg = config if config is not None else emulator_gateway_config(bedrock_emulator)
        server = ServedGateway(bedrock_mw.create_gateway(cfg, **options), usage).start()
        served.append(server)
        return server

    yield start
    for server in served:
        server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client, closed before the test's event loop is."""
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


@dataclass(frozen=True)
class Dialect:
    """How to call one client dialect's chat endpoint and read its error bodies."""

    name: str
    path: str

    def body(self, text: str = "Hello there", *, stream: bool = False, **extra: Any) -> dict[str, Any]:
        if self.name == "responses":
            body: dict[str, Any] = {"model": MODEL, "input": text, **extra}
        else:
            body = {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}
        if self.name == "anthropic":
            body.setdefault("max_tokens", 64)
        if stream:
            body["stream"] = True
        return body

    def headers(self, key: str = KEY) -> dict[str, str]:
        if self.name == "anthropic":
            return {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return {"authorization": f"Bearer {key}"}

    def error(self, response: httpx.Response) -> dict[str, Any]:
        """The error object of an error response, checked to be in this dialect's shape."""
        assert response.headers["content-type"].startswith("application/json"), response.text
        payload = response.json()
        if self.name == "anthropic":
            assert payload["type"] == "error", payload
            assert set(payload["error"]) == {"type", "message"}, payload
        else:
            assert set(payload) == {"error"}, payload
            assert set(payload["error"]) == {"message", "type", "param", "code"}, payload
        error: dict[str, Any] = payload["error"]
        assert isinstance(error["message"], str) and error["message"]
        return error


ANTHROPIC = Dialect("anthropic", "/v1/messages")
OPENAI = Dialect("openai", "/v1/chat/completions")
RESPONSES = Dialect("responses", "/v1/responses")  # OpenAI's error shape, its own body and stream
DIALECTS = [
    pytest.param(ANTHROPIC, id="anthropic"),
    pytest.param(OPENAI, id="openai"),
    pytest.param(RESPONSES, id="responses"),
]


async def eventually(check: Callable[[], bool | Awaitable[bool]], within_s: float, what: str) -> float:
    """Poll ``check`` until it holds; the seconds it took (fails after ``within_s``)."""
    started = time.monotonic()
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > within_s:
            raise AssertionError(f"{what}: still not true after {within_s}s")
        await asyncio.sleep(0.01)


@pytest.fixture
async def sdk() -> AsyncIterator[Any]:
    """Official SDK clients for a served gateway (see ``sdk.py``), closed at teardown."""
    from .sdk import SDKClients

    clients = SDKClients()
    yield clients
    await clients.aclose()

"""End-to-end fixtures: the gateway served by uvicorn on a loopback socket, upstream the emulator."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
import uvicorn
from starlette.types import ASGIApp

import bedrock_mw
from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config


class ServedApp:
    """An ASGI app served by uvicorn in a thread, on a free loopback port, with its lifespan."""

    def __init__(self, app: ASGIApp, **uvicorn_options: Any) -> None:
        self.app = app
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        scheme = "https" if "ssl_certfile" in uvicorn_options else "http"
        self.url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2, **uvicorn_options
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


GatewayFactory = Callable[..., ServedApp]


@pytest.fixture
def serve_gateway(bedrock_emulator: BedrockEmulator) -> Iterator[GatewayFactory]:
    """Start a gateway (config built from the emulator's, then edited by the test) on a real socket."""
    served: list[ServedApp] = []

    def start(config: dict[str, Any] | None = None, **options: Any) -> ServedApp:
        cfg = config if config is not None else emulator_gateway_config(bedrock_emulator)
        server = ServedApp(bedrock_mw.create_gateway(cfg, **options)).__enter__()
        served.append(server)
        return server

    yield start
    for server in served:
        server.__exit__()


@pytest.fixture
def gateway(serve_gateway: GatewayFactory) -> ServedApp:
    """A gateway with the plugin's default config: provider `emulator`, key `vk-test`."""
    return serve_gateway()


class SDKClients:
    """Official SDK clients pointed at a served gateway, closed when the test ends."""

    def __init__(self) -> None:
        self._open: list[Any] = []

    def anthropic(self, gateway: ServedApp, api_key: str = "vk-test", **kw: Any) -> anthropic.AsyncAnthropic:
        kw.setdefault("max_retries", 0)
        client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=api_key, **kw)
        self._open.append(client)
        return client

    def openai(self, gateway: ServedApp, api_key: str = "vk-test", **kw: Any) -> openai.AsyncOpenAI:
        kw.setdefault("max_retries", 0)
        client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=api_key, **kw)
        self._open.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._open:
            await client.close()


@pytest.fixture
async def sdk() -> AsyncIterator[SDKClients]:
    """Make SDK clients in a test; their connections close before the test's event loop does."""
    clients = SDKClients()
    yield clients
    await clients.aclose()

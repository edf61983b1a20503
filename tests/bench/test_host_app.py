"""The bench's host app (``bench.host_app``): its forms serve the gateway under the prefix, and its
layer clock counts the host's own time, not the gateway's or the server's."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

pytest.importorskip("fastapi")

from bench.host_app import LayerClock, build
from bench.names import CLOCK_PATH, HOST_PREFIX

pytestmark = pytest.mark.anyio

CONFIG = {
    "providers": [{"id": "p", "auth": {"mode": "default_chain"}, "region": "us-east-1"}],
    "virtual_keys": [{"id": "k", "key": "vk-host-app-test", "providers": ["p"]}],
}


@pytest.fixture
def config(tmp_path: Any) -> str:
    path = tmp_path / "gateway.json"
    path.write_bytes(orjson.dumps(CONFIG))
    return str(path)


@pytest.mark.parametrize("form", ["mount", "wrap"])
async def test_each_form_serves_the_gateway_under_the_prefix_and_the_host_beside_it(
    config: str, form: str
) -> None:
    app = build(config, form)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://host") as client:
        assert (await client.get(HOST_PREFIX + "/livez")).status_code == 200
        # The gateway's own answer, in its dialect: no key, 401 from the gateway, not FastAPI's 404.
        refused = await client.post(HOST_PREFIX + "/v1/messages", json={})
        assert refused.status_code == 401 and refused.json()["type"] == "error"
        assert (await client.get("/health")).json() == {"status": "ok"}


async def test_bare_is_only_the_clocks_baseline(config: str) -> None:
    with pytest.raises(ValueError, match="bare"):
        build(config, "bare")
    app = build(config, "bare", LayerClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://host") as client:
        assert (await client.get(HOST_PREFIX + "/livez")).status_code == 200


async def test_the_clock_counts_every_request_that_reached_the_gateway_and_starts_again_when_read(
    config: str,
) -> None:
    app = build(config, "mount", LayerClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://host") as client:
        for _ in range(6):
            await client.get(HOST_PREFIX + "/livez")
        await client.get("/health")  # FastAPI's own route: never reaches the gateway, not counted
        first = (await client.get(CLOCK_PATH)).json()
        second = (await client.get(CLOCK_PATH)).json()
    assert first["requests"] == 6 and 0 < first["q1_us"] <= first["median_us"] <= first["q3_us"]
    assert second == {"requests": 0}


async def test_the_clock_leaves_out_the_gateways_time_and_the_servers_send() -> None:
    """A host layer that takes ~5 ms around a gateway and a server that each take 50 ms: ~5 ms counted."""
    clock = LayerClock()

    async def gateway(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    inner = clock.inside(gateway)

    async def host(scope: Any, receive: Any, send: Any) -> None:
        async def host_send(message: Any) -> None:
            await asyncio.sleep(0.001)  # the host's own wrapper of send: counted, twice
            await send(message)

        await asyncio.sleep(0.0015)  # the way in
        await inner(scope, receive, host_send)
        await asyncio.sleep(0.0015)  # the way out

    async def server_send(message: Any) -> None:
        await asyncio.sleep(0.05)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    app = clock.outside(host)
    for _ in range(4):
        await app({"type": "http", "path": "/llm/x"}, receive, server_send)
    figures = clock.summary()
    assert figures["requests"] == 4
    assert 5_000 <= figures["median_us"] < 40_000  # 5 ms of the host's; none of the 150 ms around it


async def test_the_rotating_load_sends_each_server_its_turn_and_counts_them_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``bench.loadgen``'s ``rotate`` mode, which the mount part uses at concurrency 1."""
    from bench import loadgen

    async def answer(status: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        in_flight[status] += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 " + status + b" X\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()

    in_flight = {b"200": 0, b"500": 0}
    ok = await asyncio.start_server(lambda r, w: answer(b"200", r, w), "127.0.0.1", 0)
    failing = await asyncio.start_server(lambda r, w: answer(b"500", r, w), "127.0.0.1", 0)

    async def no_orchestrator(name: str, **extra: Any) -> None:
        return None

    monkeypatch.setattr(loadgen, "_phase", no_orchestrator)
    spec = {
        "host": "127.0.0.1",
        "body": {"x": 1},
        "headers": {},
        "mode": "rotate",
        "warmup_s": 0.05,
        "duration_s": 0.3,
        "targets": [
            {"port": server.sockets[0].getsockname()[1], "path": "/v1/messages"} for server in (ok, failing)
        ],
    }
    try:
        first, second = (await loadgen.MODES["rotate"](spec))["targets"]
    finally:
        ok.close()
        failing.close()
    assert first["requests"] > 10 and abs(first["requests"] - second["requests"]) <= 2
    assert first["errors"] == 0 and second["errors"] == second["requests"]
    assert in_flight == {b"200": 1, b"500": 1}  # one keep-alive connection per server

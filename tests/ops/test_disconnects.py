"""A caller that leaves stops the upstream work: no open Bedrock stream, no abandoned call, no leak."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import ANTHROPIC, DIALECTS, OPENAI, Dialect, ServeGateway, eventually

pytestmark = pytest.mark.anyio


async def test_a_client_leaving_mid_stream_closes_the_bedrock_stream_within_a_second(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve()
    # 200 events, 50 ms apart: the stream would run for ten seconds.
    bedrock_emulator.faults.add(Fault(event_delay_s=0.05))
    body = ANTHROPIC.body("emit 200 events", stream=True)

    async with http.stream("POST", gw.url + ANTHROPIC.path, json=body, headers=ANTHROPIC.headers()) as r:
        assert r.status_code == 200
        deltas = 0
        async for line in r.aiter_lines():
            deltas += line == "event: content_block_delta"
            if deltas == 3:
                break
        assert bedrock_emulator.open_streams == 1
    # Leaving the block closes the connection with the response unread.

    took = await eventually(lambda: bedrock_emulator.open_streams == 0, 1.0, "upstream stream closed")
    assert took < 1.0
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.error_type, record.stream) == (499, "client_disconnected", True)
    counters = bedrock_emulator.state.counters
    assert counters["streams_aborted"] == 1 and counters["streams_completed"] == 0


async def test_a_raw_socket_closed_after_a_few_openai_chunks_closes_the_bedrock_stream(
    serve: ServeGateway, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve()
    bedrock_emulator.faults.add(Fault(event_delay_s=0.05, operation="converse-stream"))
    payload = orjson.dumps(OPENAI.body("emit 200 events", stream=True))
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer vk-test\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload)
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(request)
    await writer.drain()
    received = b""
    while received.count(b"data: ") < 4:
        received += await asyncio.wait_for(reader.read(4096), 5)
    assert received.startswith(b"HTTP/1.1 200")
    assert bedrock_emulator.open_streams == 1
    writer.transport.abort()  # an abrupt close (RST), like a killed client

    await eventually(lambda: bedrock_emulator.open_streams == 0, 1.0, "upstream stream closed")
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.error_type) == (499, "client_disconnected")


async def leave_once_upstream_called(url: str, dialect: Dialect, emulator: BedrockEmulator) -> None:
    """Send a plain request and hang up as soon as the emulator has received the gateway's call."""
    calls = len(emulator.log.entries)
    async with httpx.AsyncClient(timeout=10) as impatient:
        request = asyncio.ensure_future(
            impatient.post(url + dialect.path, json=dialect.body(), headers=dialect.headers())
        )
        try:
            await eventually(lambda: len(emulator.log.entries) > calls, 5.0, "the gateway called Bedrock")
            assert not request.done()
        finally:
            request.cancel()  # httpx closes the connection of a cancelled request
            with contextlib.suppress(asyncio.CancelledError):
                await request


class InFlight:
    """ASGI wrapper counting the emulator's requests still being handled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


@pytest.fixture
def counted_emulator() -> Iterator[tuple[BedrockEmulator, InFlight]]:
    """An emulator of the test's own whose in-flight requests are counted."""
    emulator = BedrockEmulator()
    counter = InFlight(emulator.app)
    emulator.app = counter  # type: ignore[assignment]  # served from start(), which reads .app
    with emulator:
        yield emulator, counter


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_client_leaving_a_plain_call_abandons_the_bedrock_request(
    serve: ServeGateway,
    counted_emulator: tuple[BedrockEmulator, InFlight],
    dialect: Dialect,
) -> None:
    emulator, in_flight = counted_emulator
    gw = serve(emulator_gateway_config(emulator))
    emulator.faults.add(Fault.hanging(times=1))

    await leave_once_upstream_called(gw.url, dialect, emulator)

    # The gateway cancelled its call: the emulator sees the connection go and stops hanging.
    await eventually(lambda: in_flight.count == 0, 1.0, "emulator request abandoned")
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.error_type, record.stream) == (499, "client_disconnected", False)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_client_leaving_during_a_slow_answer_leaves_no_task_behind(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    dialect: Dialect,
) -> None:
    gw = serve()
    ok = await http.post(gw.url + dialect.path, json=dialect.body(), headers=dialect.headers())
    assert ok.status_code == 200
    await asyncio.sleep(0.1)
    baseline = await gw.task_count()

    bedrock_emulator.faults.add(Fault.delay(3.0, times=1))
    await leave_once_upstream_called(gw.url, dialect, bedrock_emulator)
    # Recorded as a disconnect long before Bedrock's (delayed) answer would have come.
    records = await gw.usage.wait_for(2, within_s=1.0)
    assert (records[-1].status, records[-1].error_type) == (499, "client_disconnected")

    # The gateway keeps serving, at once, while the abandoned answer is still being delayed upstream.
    again = await http.post(gw.url + dialect.path, json=dialect.body(), headers=dialect.headers())
    assert again.status_code == 200
    assert again.elapsed.total_seconds() < 1.0

    async def settled() -> bool:
        return await gw.task_count() <= baseline

    await eventually(settled, 2.0, f"gateway tasks back to {baseline}")

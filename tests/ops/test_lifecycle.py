"""Every request ends the same way: upstream closed, lease released, exactly one usage record.

Each test plays an abusive or careless client over a real socket (issue 13, items 1, 2, 4 and 5)
and then checks the emulator's open-stream count, the limiter (a fresh request is admitted) and
the usage records.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import httpx
import orjson
import pytest

from bedrock_mw.gateway import RequestContext
from bedrock_mw.testing import BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import ANTHROPIC, DIALECTS, OPENAI, Dialect, ServedGateway, ServeGateway, eventually

pytestmark = pytest.mark.anyio


def limited_config(emulator: BedrockEmulator, **limits: Any) -> dict[str, Any]:
    """The plugin's config with per-key ``limits`` on ``vk-test`` and any ``limits.*`` overrides."""
    cfg = emulator_gateway_config(emulator)
    key_limits = {k: v for k, v in limits.items() if not k.startswith("body_")}
    cfg["virtual_keys"][0]["limits"] = key_limits
    body = {k: v for k, v in limits.items() if k.startswith("body_")}
    if body:
        cfg["limits"] = body
    return cfg


def parse_head(head: bytes) -> list[tuple[bytes, bytes]]:
    """A raw HTTP response head's header lines as (lower-cased name, value) pairs."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")[1:]
    return [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(b":") for line in lines)]


def raw_request(dialect: Dialect, body: bytes, *, content_length: int | None = None) -> bytes:
    headers = "".join(f"{name}: {value}\r\n" for name, value in dialect.headers().items())
    length = len(body) if content_length is None else content_length
    head = (
        f"POST {dialect.path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
        f"{headers}content-length: {length}\r\n\r\n"
    )
    return head.encode() + body


async def admitted(gw: ServedGateway, http: httpx.AsyncClient) -> bool:
    """Whether a fresh plain request on the key is admitted right now (not refused with a 429)."""
    response = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())
    assert response.status_code in (200, 429), response.text
    return response.status_code == 200


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_clients_that_declare_a_longer_body_and_leave_do_not_lock_out_the_key(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator, dialect: Dialect
) -> None:
    gw = serve(limited_config(bedrock_emulator, max_concurrent=3))
    payload = orjson.dumps(dialect.body())
    for _ in range(3):
        _reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(raw_request(dialect, payload[:20], content_length=len(payload) + 100))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    records = await gw.usage.wait_for(3)
    assert [(r.status, r.error_type) for r in records] == [(499, "client_disconnected")] * 3
    for _ in range(4):  # all three slots (and one more request) are free
        assert await admitted(gw, http)


async def test_a_client_that_never_reads_and_leaves_closes_the_bedrock_stream(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve(limited_config(bedrock_emulator, max_concurrent=1))
    # More output than the socket buffers hold: the relay blocks, then finds the client gone with
    # much of the stream already buffered upstream (read without suspending).
    payload = orjson.dumps(ANTHROPIC.body("emit 50000 events", stream=True, max_tokens=64000))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gw.port))
    sock.sendall(raw_request(ANTHROPIC, payload))
    await eventually(lambda: bedrock_emulator.open_streams == 1, 5.0, "the stream opened")
    await asyncio.sleep(0.3)  # long enough for the relay to fill every buffer and block
    assert bedrock_emulator.open_streams == 1
    sock.close()  # leaves without ever reading

    await eventually(lambda: bedrock_emulator.open_streams == 0, 5.0, "upstream stream closed")
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.error_type, record.stream) == (499, "client_disconnected", True)
    assert record.usage.output_tokens > 0  # what was relayed before it left is counted
    assert await admitted(gw, http)


async def test_a_client_that_stops_reading_is_let_go_after_the_idle_timeout(
    serve: ServeGateway, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = limited_config(bedrock_emulator, max_concurrent=1)
    cfg["providers"][0]["timeouts"] = {"idle_s": 0.5}
    gw = serve(cfg)
    payload = orjson.dumps(OPENAI.body("emit 50000 events", stream=True, max_tokens=64000))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gw.port))
    try:
        sock.sendall(raw_request(OPENAI, payload))
        # Still connected, never reading: the gateway gives up on it and frees everything.
        await eventually(lambda: len(gw.usage.records) == 1, 10.0, "the stalled stream was recorded")
        # The gateway closed the upstream connection before it recorded; the emulator's server
        # thread learns of it on its own schedule (its blocked send fails), so the count is polled.
        await eventually(lambda: bedrock_emulator.open_streams == 0, 5.0, "the Bedrock stream closed")
        (record,) = gw.usage.records
        assert (record.status, record.error_type) == (499, "client_disconnected")
    finally:
        sock.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_client_leaving_before_the_first_byte_frees_its_slot_at_once(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator, dialect: Dialect
) -> None:
    gw = serve(limited_config(bedrock_emulator, max_concurrent=1))
    bedrock_emulator.faults.add(Fault.hanging(operation="*-stream", times=1))
    payload = orjson.dumps(dialect.body(stream=True))
    _reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(raw_request(dialect, payload))
    await writer.drain()
    await eventually(lambda: len(bedrock_emulator.log.entries) == 1, 5.0, "the upstream call arrived")
    writer.transport.abort()

    (record,) = await gw.usage.wait_for(1, within_s=5.0)  # not first_byte_s (120 s) later
    assert (record.status, record.error_type) == (499, "client_disconnected")
    await eventually(lambda: bedrock_emulator.open_streams == 0, 5.0, "upstream stream closed")
    assert await admitted(gw, http)


async def test_a_body_sent_a_byte_at_a_time_is_refused_with_408_and_holds_no_slot(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve(limited_config(bedrock_emulator, max_concurrent=1, body_idle_timeout_s=5, body_timeout_s=1))
    payload = orjson.dumps(OPENAI.body())
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(raw_request(OPENAI, b"", content_length=len(payload)))
    await writer.drain()

    async def trickle() -> None:
        for byte in payload:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    sender = asyncio.ensure_future(trickle())
    try:
        assert await admitted(gw, http)  # the slow body holds none of the key's one slot
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 408"), head
    finally:
        sender.cancel()
        writer.transport.abort()
    records = await gw.usage.wait_for(2)
    assert sorted(r.status for r in records) == [200, 408]


async def test_a_stalled_body_is_refused_after_the_idle_timeout(
    serve: ServeGateway, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve(limited_config(bedrock_emulator, body_idle_timeout_s=0.3))
    payload = orjson.dumps(ANTHROPIC.body())
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(raw_request(ANTHROPIC, payload[:10], content_length=len(payload)))
        await writer.drain()
        # The head and the body may arrive in separate reads (CI once saw the head alone): read both.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(next(v for k, v in parse_head(head) if k == b"content-length"))
        response = head + await asyncio.wait_for(reader.readexactly(length), 10)
    finally:
        writer.transport.abort()
    assert response.startswith(b"HTTP/1.1 408"), response
    assert b"did not arrive in time" in response
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.error_type) == (408, "timeout")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_reading_most_of_a_stream_and_leaving_counts_against_tokens_per_minute(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator, dialect: Dialect
) -> None:
    gw = serve(limited_config(bedrock_emulator, tokens_per_minute=100))
    bedrock_emulator.faults.add(Fault(event_delay_s=0.01, operation="*-stream"))
    extra = {"max_tokens": 4000} if dialect is ANTHROPIC else {}
    body = dialect.body("emit 2000 words", stream=True, **extra)
    async with http.stream("POST", gw.url + dialect.path, json=body, headers=dialect.headers()) as r:
        assert r.status_code == 200
        deltas = 0
        async for line in r.aiter_lines():
            deltas += line.startswith("data: ")
            if deltas >= 60:
                break  # leaves before Bedrock's usage (the last event) arrives

    (record,) = await gw.usage.wait_for(1)
    assert record.status == 499
    assert record.usage.output_tokens > 100  # the words delivered, not zero
    assert record.usage.input_tokens > 0
    response = await http.post(gw.url + dialect.path, json=dialect.body(), headers=dialect.headers())
    assert response.status_code == 429
    assert "tokens_per_minute" in response.text


def _live_request_contexts() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, RequestContext))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind", ["plain", "stream", "refused"])
async def test_a_finished_request_is_freed_by_reference_counting_not_left_to_the_collector(
    serve: ServeGateway, http: httpx.AsyncClient, dialect: Dialect, kind: str
) -> None:
    # A request's state in a reference cycle lives on (its body, upstream response, transcoder)
    # until a collection finds it; on a busy gateway that garbage is what makes collections long.
    gw = serve()
    body: dict[str, Any] = dialect.body(stream=kind == "stream")
    if kind == "refused":
        body["model"] = "no-such-model"
    await http.post(gw.url + dialect.path, json=body, headers=dialect.headers())  # lazy set-up first
    gc.collect()
    gc.disable()  # from here on only reference counting frees anything
    try:
        response = await http.post(gw.url + dialect.path, json=body, headers=dialect.headers())
        assert (response.status_code == 200) == (kind != "refused"), response.text
        await gw.usage.wait_for(2)
        await eventually(lambda: _live_request_contexts() == 0, 2.0, "every request's context freed")
    finally:
        gc.enable()

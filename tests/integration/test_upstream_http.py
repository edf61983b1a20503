"""The lean client's two HTTP clients (aiohttp, pyreqwest) behave alike on the wire, over real sockets.

What the dispatcher relies on from either: a closed stream drops its connection at once, a connect
timeout is a connection failure, the pool holds at most ``max_connections`` requests in flight, no
proxy from the environment, no redirect followed, nothing asked to be compressed, and failures that
name no credentials. Over HTTPS (the emulator with a throwaway CA): a provider's ``ca_bundle`` is
trusted, an untrusted certificate is refused before anything is sent, streams arrive whole. A pooled
connection the server closed is not reused, and a request it closed unanswered is sent once more
(aiohttp). (Every operation, both auth modes and percent-encoded model ids run on both in
``test_transports.py``.)
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from emulator_providers import BEARER, LEAN, SIGV4, TRANSPORTS, emulator_provider

from bedrock_mw.config import ProviderConfig
from bedrock_mw.dispatch import Destination, Dispatcher, UpstreamError
from bedrock_mw.guidance import explain
from bedrock_mw.testing import (
    EMULATOR_API_KEY,
    EMULATOR_SECRET_ACCESS_KEY,
    BedrockEmulator,
    Fault,
    LoopbackCertificate,
    make_loopback_certificate,
)

pytestmark = pytest.mark.anyio

NOVA = "amazon.nova-lite-v1:0"
SONNET4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"


def _provider(
    id_: str, auth: dict[str, Any], endpoint_url: str, transport: str, **settings: Any
) -> ProviderConfig:
    # aiobotocore names no HTTP client: the lean client beside it here is aiohttp, the plain install's.
    return emulator_provider(id_, auth, endpoint_url, transport, bare_client="aiohttp", **settings)


def provider_config(emu: BedrockEmulator, transport: str, **settings: Any) -> ProviderConfig:
    return _provider(f"emulator-{transport}", SIGV4, emu.endpoint_url, transport, **settings)


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"text": text}]}]}


async def _open_stream(dispatcher: Dispatcher, target: Destination, text: str, *, raw: bool) -> Any:
    """A ConverseStream of ``text``: decoded events, or (``raw``) Bedrock's frames untouched."""
    if raw:
        return await dispatcher.open_raw(target, "ConverseStream", orjson.dumps(user(text)))
    return await dispatcher.converse_stream(target, user(text))


@pytest.fixture(params=LEAN)
def lean(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def until(condition: Callable[[], bool], what: str, within_s: float = 5.0) -> None:
    """Wait for ``condition`` (a generous bound: this asserts that it happens, not how fast)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        assert loop.time() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


async def test_each_lean_client_is_the_one_configured(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, lean: str
) -> None:
    client = await dispatcher.pool.lean(provider_config(bedrock_emulator, lean), "us-east-1")
    assert client.http_client == lean.removeprefix("lean/")
    # ``auto`` takes pyreqwest when it is installed (the dev extra installs it); aiohttp is the default.
    auto = await dispatcher.pool.lean(provider_config(bedrock_emulator, "lean/auto"), "us-east-1")
    assert auto.http_client == "pyreqwest"
    default = ProviderConfig.model_validate(
        {"id": "plain", "auth": SIGV4, "region": "us-east-1", "endpoint_url": bedrock_emulator.endpoint_url}
    )
    assert (await dispatcher.pool.lean(default, "us-east-1")).http_client == "aiohttp"


@pytest.mark.parametrize("raw", [False, True], ids=["decoded", "raw"])
async def test_closing_a_stream_midway_drops_the_upstream_connection(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, lean: str, raw: bool
) -> None:
    bedrock_emulator.faults.add(Fault(event_delay_s=0.05))  # 200 events: ten seconds of stream
    target = Destination(provider_config(bedrock_emulator, lean), "us-east-1", SONNET4)
    stream = await _open_stream(dispatcher, target, "emit 200 events", raw=raw)
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    assert bedrock_emulator.open_streams == 1
    stream.close()
    await until(lambda: bedrock_emulator.open_streams == 0, "the emulator saw the disconnect")
    counters = bedrock_emulator.state.counters
    assert (counters["streams_aborted"], counters["streams_completed"]) == (1, 0)
    # The pool is still good: the next call gets a fresh connection.
    answer = await dispatcher.converse(Destination(target.provider, "us-east-1", NOVA), user("again"))
    assert answer["stopReason"] == "end_turn"


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: connecting there waits until the client gives up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_connect_timeout_is_a_connection_error_not_a_timeout(
    dispatcher: Dispatcher, unanswered_port: int, transport: str
) -> None:
    url = f"http://127.0.0.1:{unanswered_port}"
    provider = _provider("stalled", BEARER, url, transport, timeouts={"connect_s": 0.3})
    with pytest.raises(UpstreamError) as caught:
        await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("x"))
    assert (caught.value.code, caught.value.status) == ("ConnectionError", 502)


async def test_a_failure_names_no_credentials(dispatcher: Dispatcher, lean: str) -> None:
    for auth in (
        BEARER,
        {
            "mode": "access_keys",
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
        },
    ):
        provider = _provider("closed", auth, "http://127.0.0.1:9", lean)
        with pytest.raises(UpstreamError) as caught:
            await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("x"))
        err = caught.value
        assert (err.code, err.status) == ("ConnectionError", 502)
        assert "127.0.0.1:9" in err.message or "refused" in err.message.lower()
        for secret in (EMULATOR_API_KEY, EMULATOR_SECRET_ACCESS_KEY):
            assert secret not in str(err) and secret not in repr(err)


async def test_the_pool_holds_at_most_max_connections_requests_in_flight(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, lean: str
) -> None:
    bedrock_emulator.faults.add(Fault(event_delay_s=0.05, operation="converse-stream"))
    provider = provider_config(bedrock_emulator, lean, max_connections=2)
    streams = [
        await dispatcher.converse_stream(Destination(provider, "us-east-1", SONNET4), user("emit 200 events"))
        for _ in range(2)
    ]
    third = asyncio.ensure_future(dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("3rd")))
    try:
        await asyncio.sleep(0.3)
        # Both connections are busy: the third request waits in the pool, unsent.
        assert not third.done()
        assert [e.operation for e in bedrock_emulator.log.entries].count("converse") == 0
        streams[0].close()
        answer = await asyncio.wait_for(third, 30)
        assert answer["stopReason"] == "end_turn"
    finally:
        third.cancel()
        for stream in streams:
            stream.close()


async def test_proxy_variables_in_the_environment_are_not_used(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, lean: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that refuses every connection: a client that took it would fail.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    target = Destination(provider_config(bedrock_emulator, lean), "us-east-1", NOVA)
    answer = await dispatcher.converse(target, user("direct"))
    assert answer["stopReason"] == "end_turn"


async def test_a_redirect_is_not_followed(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, lean: str
) -> None:
    hits = 0

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        hits += 1
        await reader.readuntil(b"\r\n\r\n")
        location = f"{bedrock_emulator.endpoint_url}/model/{NOVA}/converse"
        writer.write(
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(redirect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        provider = _provider("moved", BEARER, f"http://127.0.0.1:{port}", lean)
        with pytest.raises(UpstreamError) as caught:
            await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("x"))
        assert caught.value.status == 307
        assert hits == 1 and bedrock_emulator.log.entries == []
    finally:
        server.close()
        await server.wait_closed()


async def test_nothing_asks_for_compression(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, lean: str
) -> None:
    target = Destination(provider_config(bedrock_emulator, lean), "us-east-1", SONNET4)
    await dispatcher.converse(target, user("plain"))
    stream = await dispatcher.converse_stream(target, user("streamed"))
    try:
        [_ async for _ in stream]
    finally:
        stream.close()
    for entry in bedrock_emulator.log.entries:
        assert "accept-encoding" not in entry.headers
        assert entry.headers["user-agent"].startswith("bedrock-mw ")


@pytest.mark.parametrize("raw", [False, True], ids=["decoded", "raw"])
async def test_a_cancel_scope_that_cancels_a_stream_read_catches_its_own_cancellation(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, lean: str, raw: bool
) -> None:
    # anyio (and Starlette on it) tells its own cancellation from anyone else's by the exception the
    # task was cancelled with: a client must let that one through, not raise a new one.
    bedrock_emulator.faults.add(Fault(event_delay_s=600.0))  # the first event, then silence
    target = Destination(provider_config(bedrock_emulator, lean), "us-east-1", SONNET4)
    stream = await _open_stream(dispatcher, target, "hi", raw=raw)
    seen = 0
    try:
        with anyio.CancelScope() as scope:
            async for _ in stream:
                seen += 1
                scope.cancel()  # takes effect at the next read, which waits for a silent upstream
        assert scope.cancelled_caught and seen == 1
    finally:
        stream.close()
    await until(lambda: bedrock_emulator.open_streams == 0, "the emulator saw the disconnect")


@pytest.mark.parametrize(
    "client",
    [
        "lean/aiohttp",
        pytest.param(
            "lean/pyreqwest",
            marks=pytest.mark.xfail(
                strict=True,
                reason="pyreqwest 0.15.1 does not abort a cancelled request; it runs until Bedrock answers",
            ),
        ),
    ],
)
async def test_a_cancelled_call_abandons_the_bedrock_request(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, client: str
) -> None:
    bedrock_emulator.faults.add(Fault.hanging(times=1))  # no answer until the caller hangs up
    provider = provider_config(bedrock_emulator, client, max_connections=1)
    call = asyncio.ensure_future(dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("x")))
    await until(lambda: len(bedrock_emulator.log.entries) == 1, "the call reached the emulator")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # The abandoned call let go of the pool's one connection: the next call goes through.
    answer = await asyncio.wait_for(
        dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("y")), 5
    )
    assert answer["stopReason"] == "end_turn"


# -- TLS: Bedrock is HTTPS; here the emulator serves HTTPS on loopback with a throwaway CA ------------------


@pytest.fixture(scope="module")
def loopback_certificate(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCertificate:
    return make_loopback_certificate(tmp_path_factory.mktemp("tls"), "private endpoint")


@pytest.fixture(scope="module")
def tls_emulator_session(loopback_certificate: LoopbackCertificate) -> Iterator[BedrockEmulator]:
    with BedrockEmulator(certificate=loopback_certificate) as emulator:
        yield emulator


@pytest.fixture
def tls_emulator(tls_emulator_session: BedrockEmulator) -> Iterator[BedrockEmulator]:
    tls_emulator_session.reset()
    yield tls_emulator_session
    tls_emulator_session.reset()


def tls_provider(emu: BedrockEmulator, transport: str, **settings: Any) -> ProviderConfig:
    assert emu.endpoint_url.startswith("https://")
    return provider_config(emu, transport, **settings)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_call_over_tls_succeeds_when_the_provider_trusts_the_endpoints_ca(
    dispatcher: Dispatcher,
    tls_emulator: BedrockEmulator,
    loopback_certificate: LoopbackCertificate,
    transport: str,
) -> None:
    provider = tls_provider(tls_emulator, transport, ca_bundle=str(loopback_certificate.ca_file))
    answer = await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("over tls"))
    assert answer["stopReason"] == "end_turn"
    assert [e.operation for e in tls_emulator.log.entries] == ["converse"]


async def test_every_certificate_of_a_ca_bundle_is_trusted_not_only_the_first(
    dispatcher: Dispatcher,
    tls_emulator: BedrockEmulator,
    loopback_certificate: LoopbackCertificate,
    lean: str,
    tmp_path: Path,
) -> None:
    other = make_loopback_certificate(tmp_path, "another private CA")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(other.ca_file.read_bytes() + loopback_certificate.ca_file.read_bytes())
    provider = tls_provider(tls_emulator, lean, ca_bundle=str(bundle))
    answer = await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("second of two"))
    assert answer["stopReason"] == "end_turn"


@pytest.mark.parametrize("raw", [False, True], ids=["decoded", "raw"])
async def test_a_stream_over_tls_arrives_whole(
    dispatcher: Dispatcher,
    tls_emulator: BedrockEmulator,
    loopback_certificate: LoopbackCertificate,
    lean: str,
    raw: bool,
) -> None:
    provider = tls_provider(tls_emulator, lean, ca_bundle=str(loopback_certificate.ca_file))
    target = Destination(provider, "us-east-1", SONNET4)
    stream = await _open_stream(dispatcher, target, "emit 50 events", raw=raw)
    try:
        received = [item async for item in stream]
    finally:
        stream.close()
    assert len(received) >= 50
    await until(lambda: tls_emulator.state.counters["streams_completed"] == 1, "the stream completed")
    assert tls_emulator.state.counters["streams_aborted"] == 0


async def test_the_aws_ca_bundle_variable_is_trusted_as_botocore_trusts_it(
    dispatcher: Dispatcher,
    tls_emulator: BedrockEmulator,
    loopback_certificate: LoopbackCertificate,
    lean: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(loopback_certificate.ca_file))
    provider = tls_provider(tls_emulator, lean)
    answer = await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("env bundle"))
    assert answer["stopReason"] == "end_turn"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_untrusted_certificate_is_refused_as_a_connection_error_that_says_so(
    dispatcher: Dispatcher, tls_emulator: BedrockEmulator, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    for auth in (BEARER, SIGV4):
        provider = _provider(f"untrusted-{transport}", auth, tls_emulator.endpoint_url, transport)
        with pytest.raises(UpstreamError) as caught:
            await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("x"))
        err = caught.value
        assert (err.code, err.status) == ("ConnectionError", 502)
        assert "certificate" in err.message.lower(), err.message
        explained = explain(err)  # what the caller reads
        assert "ca_bundle" in explained.message and provider.id in explained.message, explained.message
        for secret in (EMULATOR_API_KEY, EMULATOR_SECRET_ACCESS_KEY):
            assert secret not in str(err) and secret not in repr(err)
    # Refused in the handshake: no request reached the server.
    assert tls_emulator.log.entries == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_ca_bundle_that_is_missing_or_holds_no_certificate_is_a_clear_connection_error(
    dispatcher: Dispatcher, tls_emulator: BedrockEmulator, transport: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    for bundle in (empty, tmp_path / "missing.pem"):
        provider = tls_provider(tls_emulator, transport, ca_bundle=str(bundle))
        with pytest.raises(UpstreamError) as caught:
            await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("x"))
        assert (caught.value.code, caught.value.status) == ("ConnectionError", 502)
        assert str(bundle) in caught.value.message, caught.value.message
    assert tls_emulator.log.entries == []


# -- stale pooled connections -------------------------------------------------------------------------------


async def test_a_connection_the_server_closed_while_idle_is_not_reused(lean: str) -> None:
    async with BedrockEmulator(keep_alive_s=1) as emulator:
        dispatcher = Dispatcher()
        try:
            target = Destination(provider_config(emulator, lean), "us-east-1", NOVA)
            await dispatcher.converse(target, user("one"))
            await asyncio.sleep(3)  # well past the server's keep-alive: it has closed the connection
            answer = await dispatcher.converse(target, user("two"))
            assert answer["stopReason"] == "end_turn"
            assert [e.operation for e in emulator.log.entries] == ["converse", "converse"]
        finally:
            await dispatcher.aclose()


class ClosingProxy:
    """A loopback proxy to the emulator that can close a connection as a request arrives on it.

    ``cut(reused=True)``: the next request that arrives on a connection that has already carried an
    answer is not forwarded; the proxy writes ``partial`` (nothing by default) and closes the
    connection, as a server does that closed an idle connection just as a request went out.
    ``cut(reused=False)`` does the same to the next request on a new connection.
    """

    def __init__(self, emulator: BedrockEmulator) -> None:
        self._upstream = emulator.port
        self._pending = {True: 0, False: 0}
        self._partial = b""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self.connections = 0
        self.cuts = 0

    def cut(self, *, reused: bool, partial: bytes = b"") -> None:
        self._pending[reused] += 1
        self._partial = partial

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        answered = False

        async def answers() -> None:
            nonlocal answered
            while chunk := await up_reader.read(65536):
                answered = True
                writer.write(chunk)
                await writer.drain()
            writer.close()

        relay = asyncio.ensure_future(answers())
        try:
            while chunk := await reader.read(65536):
                if self._pending[answered]:
                    self._pending[answered] -= 1
                    self.cuts += 1
                    writer.write(self._partial)
                    writer.close()
                    break
                up_writer.write(chunk)
                await up_writer.drain()
        finally:
            relay.cancel()
            up_writer.close()
            writer.close()
            self._handlers.discard(task)


@pytest.fixture
async def closing_proxy(bedrock_emulator: BedrockEmulator) -> AsyncIterator[ClosingProxy]:
    proxy = ClosingProxy(bedrock_emulator)
    await proxy.start()
    yield proxy
    await proxy.stop()


def proxied(proxy: ClosingProxy, transport: str, model_id: str = NOVA) -> Destination:
    return Destination(
        _provider(f"proxied-{transport}", SIGV4, proxy.endpoint_url, transport), "us-east-1", model_id
    )


PYREQWEST_NO_RESEND = pytest.mark.xfail(
    strict=True,
    reason="pyreqwest 0.15.1 tells neither whether a connection came from the pool nor whether any of "
    "the answer arrived; hyper resends only a request it had not yet written",
)


@pytest.mark.parametrize(
    "client", ["lean/aiohttp", pytest.param("lean/pyreqwest", marks=PYREQWEST_NO_RESEND)]
)
@pytest.mark.parametrize("operation", ["converse", "converse-stream"])
async def test_a_request_on_a_pooled_connection_closed_before_any_answer_is_sent_once_more(
    dispatcher: Dispatcher,
    bedrock_emulator: BedrockEmulator,
    closing_proxy: ClosingProxy,
    client: str,
    operation: str,
) -> None:
    target = proxied(closing_proxy, client, SONNET4)
    await dispatcher.converse(target, user("one"))
    closing_proxy.cut(reused=True)
    if operation == "converse":
        answer = await dispatcher.converse(target, user("two"))
        assert answer["stopReason"] == "end_turn"
    else:
        stream = await dispatcher.converse_stream(target, user("two"))
        try:
            events = [event async for event in stream]
        finally:
            stream.close()
        assert "messageStop" in events[-2] or "messageStop" in events[-1]
    assert closing_proxy.cuts == 1
    # The cut request never reached the emulator; the one sent again did, once.
    assert [e.operation for e in bedrock_emulator.log.entries] == ["converse", operation]


async def test_a_request_is_sent_again_at_most_once(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, closing_proxy: ClosingProxy
) -> None:
    target = proxied(closing_proxy, "lean/aiohttp")
    await dispatcher.converse(target, user("one"))
    closing_proxy.cut(reused=True)
    closing_proxy.cut(reused=False)  # the second try goes out on a new connection: cut that too
    with pytest.raises(UpstreamError) as caught:
        await dispatcher.converse(target, user("two"))
    assert (caught.value.code, caught.value.status) == ("ConnectionError", 502)
    assert (closing_proxy.cuts, closing_proxy.connections) == (2, 2)
    assert [e.operation for e in bedrock_emulator.log.entries] == ["converse"]


async def test_a_new_connection_closed_before_any_answer_is_not_sent_again(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, closing_proxy: ClosingProxy, lean: str
) -> None:
    closing_proxy.cut(reused=False)
    with pytest.raises(UpstreamError) as caught:
        await dispatcher.converse(proxied(closing_proxy, lean), user("one"))
    assert (caught.value.code, caught.value.status) == ("ConnectionError", 502)
    assert (closing_proxy.cuts, closing_proxy.connections) == (1, 1)
    assert bedrock_emulator.log.entries == []


async def test_a_pooled_connection_closed_after_part_of_the_answer_is_not_sent_again(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, closing_proxy: ClosingProxy, lean: str
) -> None:
    target = proxied(closing_proxy, lean)
    await dispatcher.converse(target, user("one"))
    closing_proxy.cut(reused=True, partial=b"HTTP/1.1 200 OK\r\nContent-Type: appl")
    with pytest.raises(UpstreamError) as caught:
        await dispatcher.converse(target, user("two"))
    assert (caught.value.code, caught.value.status) == ("ConnectionError", 502)
    assert (closing_proxy.cuts, closing_proxy.connections) == (1, 1)
    assert [e.operation for e in bedrock_emulator.log.entries] == ["converse"]

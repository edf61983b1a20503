"""SSRF defences of ``allow_url_fetch``, over real sockets to servers on 127.0.0.1 only.

The origin below listens on 127.0.0.1 and counts every request it receives, so "refused" means
no request ever arrived, not merely that the caller saw an error. Tests that need a fetch to
succeed inject an address policy admitting loopback (``create_gateway(url_fetch_policy=...)`` /
``FetchRules(policy=...)``): nothing here can reach an address that is not loopback.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from bedrock_mw.errors import GatewayError
from bedrock_mw.media import FetchRules, IPAddress, fetch_media
from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import ANTHROPIC, MODEL, ServeGateway

pytestmark = pytest.mark.anyio

CAP = 4096
GENERIC = "the address is not allowed or not reachable"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0\0\0\0"))
        + chunk(b"IEND", b"")
    )


PNG = _png()


def loopback(addr: IPAddress) -> bool:
    """Test policy: loopback (also IPv4-mapped) only, so these tests can never leave the machine."""
    inner = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped else addr
    return inner.is_loopback


def only_127_0_0_1(addr: IPAddress) -> bool:
    return addr == ipaddress.IPv4Address("127.0.0.1")


@dataclass
class Origin:
    port: int
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    """An HTTP server on 127.0.0.1: /png, /bytes/N (with length), /chunked/N (no length),
    /redirect?to=URL, /loop (redirects to itself)."""
    found = Origin(port=0)

    async def handle(request: web.Request) -> web.StreamResponse:
        found.hits.append(request.path)
        parts = request.path.strip("/").split("/")
        if parts[0] == "png":
            return web.Response(body=PNG, content_type="image/png")
        if parts[0] == "bytes":
            return web.Response(body=b"x" * int(parts[1]), content_type="image/png")
        if parts[0] == "chunked":
            response = web.StreamResponse(headers={"content-type": "image/png"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(int(parts[1])):
                await response.write(b"x")
            await response.write_eof()
            return response
        if parts[0] == "loop":
            raise web.HTTPFound("/loop")
        if parts[0] == "redirect":
            raise web.HTTPFound(request.query["to"])
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = runner.addresses[0][1]
    try:
        yield found
    finally:
        await runner.cleanup()


def rules(**changes: object) -> FetchRules:
    base: dict[str, object] = {"max_bytes": CAP, "max_total_bytes": 10 * CAP, "max_urls": 4}
    base.update(changes)
    return FetchRules(**base)  # type: ignore[arg-type]


async def refused(url: str, fetch_rules: FetchRules) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await fetch_media([url], fetch_rules)
    return caught.value


SPELLINGS = [
    "127.0.0.1",
    "localhost",
    "[::1]",
    "0.0.0.0",
    "0x7f000001",
    "2130706433",
    "127.1",
    "[::ffff:127.0.0.1]",
]


@pytest.mark.parametrize("host", SPELLINGS)
async def test_every_spelling_of_loopback_is_refused_before_any_request(origin: Origin, host: str) -> None:
    error = await refused(origin.url("/png", host), rules())
    assert error.http_status == 400 and GENERIC in error.message
    assert origin.hits == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f000001", "[::ffff:127.0.0.1]"])
async def test_the_same_spellings_reach_the_server_when_the_policy_admits_loopback(
    origin: Origin, host: str
) -> None:
    url = origin.url("/png", host)
    assert await fetch_media([url], rules(policy=loopback)) == {url: (PNG, "image/png")}
    assert origin.hits == ["/png"]


async def test_the_unspecified_address_is_refused_even_by_a_loopback_policy(origin: Origin) -> None:
    error = await refused(origin.url("/png", "0.0.0.0"), rules(policy=loopback))
    assert GENERIC in error.message and origin.hits == []


async def test_a_closed_port_and_a_refused_address_read_the_same(origin: Origin) -> None:
    closed = await refused("http://127.0.0.1:1/png", rules(policy=loopback))
    refused_addr = await refused("http://127.0.0.1:1/png", rules())
    assert closed.message == refused_addr.message
    assert closed.http_status == refused_addr.http_status == 400


async def test_a_redirect_hop_is_checked_again_and_refused(origin: Origin) -> None:
    secret = origin.url("/bytes/10", "[::ffff:127.0.0.1]")
    url = origin.url(f"/redirect?to={secret}")
    error = await refused(url, rules(policy=only_127_0_0_1))
    assert GENERIC in error.message
    assert origin.hits == ["/redirect"]


async def test_a_redirect_hop_the_policy_admits_is_followed(origin: Origin) -> None:
    url = origin.url(f"/redirect?to={origin.url('/png', 'localhost')}")
    assert await fetch_media([url], rules(policy=loopback)) == {url: (PNG, "image/png")}
    assert origin.hits == ["/redirect", "/png"]


async def test_a_redirect_off_the_allow_list_is_refused(origin: Origin) -> None:
    url = origin.url(f"/redirect?to={origin.url('/png', 'localhost')}")
    error = await refused(url, rules(policy=loopback, allowed_hosts=("127.0.0.1",)))
    assert "allow-list" in error.message and origin.hits == ["/redirect"]


async def test_endless_redirects_stop(origin: Origin) -> None:
    error = await refused(origin.url("/loop"), rules(policy=loopback))
    assert "redirected more than 5 times" in error.message
    assert origin.hits == ["/loop"] * 6


@pytest.mark.parametrize("kind", ["bytes", "chunked"])
async def test_a_document_exactly_at_the_cap_is_fetched_whole(origin: Origin, kind: str) -> None:
    url = origin.url(f"/{kind}/{CAP}")
    found = await fetch_media([url], rules(policy=loopback))
    assert found[url][0] == b"x" * CAP


@pytest.mark.parametrize("kind", ["bytes", "chunked"])
async def test_one_byte_over_the_cap_is_413_not_truncated(origin: Origin, kind: str) -> None:
    error = await refused(origin.url(f"/{kind}/{CAP + 1}"), rules(policy=loopback))
    assert error.http_status == 413


async def test_urls_together_over_the_total_are_413(origin: Origin) -> None:
    urls = [origin.url(f"/bytes/{CAP - i}") for i in range(3)]
    with pytest.raises(GatewayError) as caught:
        await fetch_media(urls, rules(policy=loopback, max_total_bytes=2 * CAP))
    assert caught.value.http_status == 413 and "together" in caught.value.message


async def test_more_urls_than_the_cap_is_400_before_any_fetch(origin: Origin) -> None:
    urls = [origin.url(f"/bytes/{i}") for i in range(1, 6)]
    with pytest.raises(GatewayError) as caught:
        await fetch_media(urls, rules(policy=loopback, max_urls=4))
    assert caught.value.http_status == 400 and "at most 4" in caught.value.message
    assert origin.hits == []


def image_body(url: str) -> dict[str, object]:
    block = {"type": "image", "source": {"type": "url", "url": url}}
    return {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": [block]}]}


async def test_the_gateway_refuses_its_own_metrics_and_loopback_by_default(
    serve: ServeGateway, bedrock_emulator: BedrockEmulator, origin: Origin, http: httpx.AsyncClient
) -> None:
    config = {**emulator_gateway_config(bedrock_emulator), "allow_url_fetch": True}
    gateway = serve(config)
    for url in (f"{gateway.url}/metrics", origin.url("/png", "localhost")):
        response = await http.post(
            f"{gateway.url}/v1/messages", json=image_body(url), headers=ANTHROPIC.headers()
        )
        assert response.status_code == 400
        assert GENERIC in ANTHROPIC.error(response)["message"]
    assert origin.hits == []


async def test_the_gateway_sends_a_fetched_image_when_the_policy_admits_it(
    serve: ServeGateway, bedrock_emulator: BedrockEmulator, origin: Origin, http: httpx.AsyncClient
) -> None:
    config = {**emulator_gateway_config(bedrock_emulator), "allow_url_fetch": True}
    gateway = serve(config, url_fetch_policy=loopback)
    url = origin.url(f"/redirect?to={origin.url('/png', '0x7f000001')}")
    response = await http.post(
        f"{gateway.url}/v1/messages", json=image_body(url), headers=ANTHROPIC.headers()
    )
    assert response.status_code == 200, response.text
    assert origin.hits == ["/redirect", "/png"]


async def test_the_gateway_answers_413_for_an_image_over_the_cap_in_the_callers_dialect(
    serve: ServeGateway, bedrock_emulator: BedrockEmulator, origin: Origin, http: httpx.AsyncClient
) -> None:
    config = {
        **emulator_gateway_config(bedrock_emulator),
        "allow_url_fetch": True,
        "limits": {"max_body_bytes": 1024},
    }
    gateway = serve(config, url_fetch_policy=loopback)
    url = origin.url("/chunked/1025")
    response = await http.post(
        f"{gateway.url}/v1/messages", json=image_body(url), headers=ANTHROPIC.headers()
    )
    assert response.status_code == 413
    assert "larger than 1024 bytes" in ANTHROPIC.error(response)["message"]

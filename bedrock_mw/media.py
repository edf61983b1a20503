"""Fetching remote images and documents, only when the host enabled it (``allow_url_fetch``).

Off by default: a gateway that fetches any URL a caller names is a server-side request forgery
(SSRF) risk. When on, every fetch is held to these rules (docs/security.md explains each):

- only ``http(s)`` URLs, at most ``url_fetch_max_urls`` distinct ones per request, and only hosts
  on ``url_fetch_allowed_hosts`` when the host set that list;
- the host name is resolved by us and the connection goes only to the addresses that passed the
  address policy (public unicast by default): an aiohttp resolver that returns checked addresses
  only, so the socket is pinned to what was checked while the Host header and TLS SNI keep the
  name (no DNS-rebinding window). IP literals, which aiohttp never resolves, are checked first;
- redirects are followed here, not by aiohttp, and every hop is checked again like the first URL;
- sizes are exact: a body over the per-URL cap or over the request's total is a 413, never a
  truncated document;
- a refused address, a failed lookup, a refused connection and a timeout give the caller one
  generic message, so errors cannot be used to map the gateway's network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import anyio
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .config import GatewayConfig
from .errors import ErrorKind, GatewayError
from .excgroups import collapse_excgroups

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]
"""Decides whether the gateway may connect to an address; the default is :func:`public_unicast`."""

_TIMEOUT_S = 10.0
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 65_536
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Not globally reachable per IANA but missing from some Pythons' tables (3.11's is_private has
# only 192.0.0.0/29 of 192.0.0.0/24); listed here so the answer does not depend on the version.
_ALSO_REFUSED = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    found: list[ipaddress.IPv4Address] = []
    if addr.ipv4_mapped is not None:
        found.append(addr.ipv4_mapped)
    if addr.sixtofour is not None:
        found.append(addr.sixtofour)
    if addr.teredo is not None:
        found.extend(addr.teredo)
    if addr in _NAT64:
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return found


def public_unicast(addr: IPAddress) -> bool:
    """True only for a globally routable unicast address (and anything embedded in it)."""
    if (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
        or any(addr in net for net in _ALSO_REFUSED if net.version == addr.version)
    ):
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.is_site_local:
            return False
        # ::a.b.c.d (IPv4-compatible) sits in ::/8, reserved above; the rest are unwrapped here.
        return all(public_unicast(inner) for inner in _embedded_ipv4(addr))
    return True


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host names literally (``[::1]``, ``127.0.0.1``), else ``None``."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return None


@dataclass(frozen=True)
class FetchRules:
    """What one request's fetches are held to (from the config, plus the host's address policy)."""

    max_bytes: int
    max_total_bytes: int
    max_urls: int
    allowed_hosts: tuple[str, ...] | None = None
    policy: AddressPolicy = public_unicast

    @classmethod
    def from_config(cls, config: GatewayConfig, policy: AddressPolicy | None = None) -> FetchRules:
        hosts = config.url_fetch_allowed_hosts
        return cls(
            max_bytes=config.limits.max_body_bytes,
            max_total_bytes=config.url_fetch_max_total_bytes,
            max_urls=config.url_fetch_max_urls,
            allowed_hosts=None if hosts is None else tuple(h.lower().rstrip(".") for h in hosts),
            policy=policy if policy is not None else public_unicast,
        )

    def host_allowed(self, host: str) -> bool:
        if self.allowed_hosts is None:
            return True
        host = host.lower().rstrip(".")
        for entry in self.allowed_hosts:
            if entry.startswith("*."):
                if host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False


class _Refused(Exception):
    """An address the policy refuses; never shown to the caller as such."""


class _CheckedResolver(AbstractResolver):
    """Resolves through the system resolver and returns only addresses the policy accepts.

    Any refused address refuses the whole name: a name that points into the internal network
    at all is not one to fetch from.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            addr = parse_ip_literal(result["host"])
            if addr is None or not self._policy(addr):
                raise _Refused
        return results

    async def close(self) -> None:
        await self._inner.close()


class _Budget:
    """The bytes all of one request's fetches may still bring in."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total


def _check_target(url: URL, rules: FetchRules) -> None:
    """Scheme, allow-list and literal-address checks for one hop (names are checked on resolve)."""
    if url.scheme not in ("http", "https") or not url.host:
        raise GatewayError(
            ErrorKind.INVALID_REQUEST, f"only http(s) URLs can be fetched, not {str(url)[:80]!r}"
        )
    if not rules.host_allowed(url.host):
        raise GatewayError(
            ErrorKind.INVALID_REQUEST, f"{url.host[:100]!r} is not on this gateway's URL allow-list"
        )
    literal = parse_ip_literal(url.host)
    if literal is not None and not rules.policy(literal):
        raise _Refused


async def _read_exact(
    response: aiohttp.ClientResponse, shown: str, rules: FetchRules, budget: _Budget
) -> bytes:
    declared = response.content_length
    if declared is not None and declared > rules.max_bytes:
        raise GatewayError(ErrorKind.REQUEST_TOO_LARGE, f"{shown} is larger than {rules.max_bytes} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        budget.left -= len(chunk)
        if size > rules.max_bytes:
            raise GatewayError(ErrorKind.REQUEST_TOO_LARGE, f"{shown} is larger than {rules.max_bytes} bytes")
        if budget.left < 0:
            raise GatewayError(
                ErrorKind.REQUEST_TOO_LARGE,
                f"the URLs in this request are together larger than {budget.total} bytes",
            )
        parts.append(chunk)
    return b"".join(parts)


async def _fetch_one(
    session: aiohttp.ClientSession, url: str, rules: FetchRules, budget: _Budget
) -> tuple[bytes, str]:
    shown = url[:200]
    unreachable = GatewayError(
        ErrorKind.INVALID_REQUEST, f"could not fetch {shown}: the address is not allowed or not reachable"
    )
    try:
        target = URL(url)
    except ValueError:
        raise GatewayError(ErrorKind.INVALID_REQUEST, f"not a valid URL: {url[:80]!r}") from None
    try:
        for _hop in range(_MAX_REDIRECTS + 1):
            _check_target(target, rules)
            async with session.get(target, allow_redirects=False) as response:
                location = response.headers.get("location")
                if response.status in _REDIRECTS and location:
                    target = response.url.join(URL(location))
                    continue
                if response.status != 200:
                    raise GatewayError(
                        ErrorKind.INVALID_REQUEST, f"fetching {shown} answered HTTP {response.status}"
                    )
                data = await _read_exact(response, shown, rules, budget)
                media_type = response.headers.get("content-type", "application/octet-stream")
                return data, media_type.split(";")[0].strip()
        raise GatewayError(
            ErrorKind.INVALID_REQUEST, f"fetching {shown} redirected more than {_MAX_REDIRECTS} times"
        )
    except (_Refused, aiohttp.ClientError, OSError, TimeoutError, ValueError):
        raise unreachable from None


async def fetch_media(urls: list[str], rules: FetchRules) -> dict[str, tuple[bytes, str]]:
    """Fetch each distinct URL concurrently under ``rules``; returns ``{url: (bytes, media type)}``."""
    distinct = list(dict.fromkeys(urls))
    if len(distinct) > rules.max_urls:
        raise GatewayError(
            ErrorKind.INVALID_REQUEST,
            f"this request names {len(distinct)} URLs to fetch; the gateway fetches at most {rules.max_urls}",
        )
    found: dict[str, tuple[bytes, str]] = {}
    budget = _Budget(rules.max_total_bytes)
    timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
    resolver = _CheckedResolver(rules.policy)
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=False) as session:

            async def one(url: str) -> None:
                found[url] = await _fetch_one(session, url, rules, budget)

            with collapse_excgroups():
                async with anyio.create_task_group() as tg:
                    for url in distinct:
                        tg.start_soon(one, url)
    finally:
        await resolver.close()
    return found

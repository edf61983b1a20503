"""The lean client's HTTP on aiohttp (the plain install's): one ``ClientSession`` per pool.

Set up as ``_http`` describes: ``TCPConnector(limit=max_connections)`` with 30 s keep-alive, a
connect timeout only, no ``Accept-Encoding`` and no decompression, ``trust_env`` off (no proxy from
the environment), redirects not followed, TLS from ``ssl.create_default_context()`` (the system's
roots, and the provider's ``ca_bundle`` loaded into it), and the URL handed to yarl as already
encoded so the signed path is sent byte for byte (yarl would otherwise unquote ``%3A`` in a model id).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
from yarl import URL

from ._http import KEEPALIVE_S, HttpSettings


class AiohttpAnswer:
    """An aiohttp response as an :class:`~._http.HttpAnswer`."""

    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in resp.headers.items()}

    async def read(self) -> bytes:
        return await self._resp.read()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._resp.content.iter_any()

    def close(self) -> None:
        self._resp.close()


class AiohttpClient:
    """One aiohttp session and connection pool."""

    name = "aiohttp"

    def __init__(self, settings: HttpSettings) -> None:
        bundle = settings.ca_bundle
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            keepalive_timeout=KEEPALIVE_S,
            ssl=bundle.ssl_context if bundle is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_s),
            skip_auto_headers=("Accept-Encoding",),
            auto_decompress=False,
            trust_env=False,
        )

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        return await self._session.post(
            URL(url, encoded=True), data=body, headers=headers, allow_redirects=False
        )

    async def fetch(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        async with await self._post(url, body, headers) as resp:
            raw = await resp.read()
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw

    async def open(self, url: str, body: bytes, headers: Mapping[str, str]) -> AiohttpAnswer:
        return AiohttpAnswer(await self._post(url, body, headers))

    async def aclose(self) -> None:
        await self._session.close()

"""Fetching remote images and documents, only when the host enabled it (``allow_url_fetch``).

Off by default: a gateway that fetches any URL a caller names is a server-side request forgery
risk. When on, only http(s) URLs are fetched, with a size cap and a timeout, and a failure is the
caller's 400, not the gateway's 500.
"""

from __future__ import annotations

import aiohttp
import anyio

from .errors import ErrorKind, GatewayError
from .excgroups import collapse_excgroups

_TIMEOUT_S = 10.0


async def _fetch_one(session: aiohttp.ClientSession, url: str, max_bytes: int) -> tuple[bytes, str]:
    if not url.startswith(("https://", "http://")):
        raise GatewayError(ErrorKind.INVALID_REQUEST, f"only http(s) URLs can be fetched, not {url[:80]!r}")
    try:
        async with session.get(url, allow_redirects=True) as response:
            if response.status != 200:
                raise GatewayError(
                    ErrorKind.INVALID_REQUEST, f"fetching {url[:200]} answered HTTP {response.status}"
                )
            data = await response.content.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise GatewayError(
                    ErrorKind.REQUEST_TOO_LARGE, f"{url[:200]} is larger than {max_bytes} bytes"
                )
            media_type = (
                response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
            )
            return data, media_type
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise GatewayError(
            ErrorKind.INVALID_REQUEST, f"could not fetch {url[:200]}: {type(exc).__name__}"
        ) from None


async def fetch_media(urls: list[str], *, max_bytes: int) -> dict[str, tuple[bytes, str]]:
    """Fetch each distinct URL concurrently; returns ``{url: (bytes, media type)}``."""
    found: dict[str, tuple[bytes, str]] = {}
    timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(url: str) -> None:
            found[url] = await _fetch_one(session, url, max_bytes)

        with collapse_excgroups():
            async with anyio.create_task_group() as tg:
                for url in dict.fromkeys(urls):
                    tg.start_soon(one, url)
    return found

"""A lean Bedrock Runtime client for Converse and ConverseStream: the I/O around ``_wire``.

botocore's general client does, per call, what is fixed for the one service and two operations we
make hot: parameter validation, model-driven serialisation and parsing, endpoint resolution,
event-hook dispatch, a user agent built anew, a signing key derived anew. This client takes the
endpoint botocore resolved once (``client.meta.endpoint_url``), credentials from the aiobotocore
session (refreshable and assumed-role ones refresh through ``get_frozen_credentials``), and sends
through one aiohttp session with a bounded, kept-alive connection pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import botocore
from yarl import URL

from . import _wire

_USER_AGENT = f"bedrock-mw Botocore/{botocore.__version__}"


class RuntimeClient:
    """Converse and ConverseStream for one provider and region."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        credentials: Any = None,
        token: str | None = None,
        max_connections: int,
        connect_timeout_s: float,
    ) -> None:
        self._endpoint = endpoint_url.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._bearer = f"Bearer {token}" if token is not None else None
        connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30.0)
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s),
            skip_auto_headers=("Accept-Encoding",),
            auto_decompress=False,
        )

    async def _headers(self, url: str, body: bytes, accept: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": accept}
        if self._bearer is not None:
            headers["Authorization"] = self._bearer
        else:
            frozen = await self._credentials.get_frozen_credentials()
            headers = _wire.sign_headers(frozen, self._region, url, body, headers)
        headers["User-Agent"] = _USER_AGENT
        return headers

    async def converse(self, model_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Converse: botocore's parsed answer (blobs as bytes, ``ResponseMetadata``)."""
        url = self._endpoint + _wire.operation_path(model_id, "converse")
        body = _wire.serialise_body(params)
        headers = await self._headers(url, body, "application/json")
        # encoded=True: yarl must send the path exactly as signed (it would unquote %3A).
        async with self._http.post(URL(url, encoded=True), data=body, headers=headers) as resp:
            raw = await resp.read()
            status = resp.status
            answer_headers = {k.lower(): v for k, v in resp.headers.items()}
        if status >= 300:
            raise _wire.client_error("Converse", status, answer_headers, raw)
        return _wire.parse_converse(raw, status, answer_headers)

    async def converse_stream(self, model_id: str, params: dict[str, Any]) -> RuntimeEventStream:
        """ConverseStream, once Bedrock accepted it; the caller must close the stream."""
        url = self._endpoint + _wire.operation_path(model_id, "converse-stream")
        body = _wire.serialise_body(params)
        headers = await self._headers(url, body, "application/vnd.amazon.eventstream")
        resp = await self._http.post(URL(url, encoded=True), data=body, headers=headers)
        try:
            answer_headers = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status >= 300:
                raw = await resp.read()
                raise _wire.client_error("ConverseStream", resp.status, answer_headers, raw)
        except BaseException:
            resp.close()
            raise
        return RuntimeEventStream(resp, "ConverseStream", answer_headers.get("x-amzn-requestid"))

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._http.close()


class RuntimeEventStream:
    """An open event stream: async-iterate its events; ``close()`` drops the connection at once."""

    def __init__(self, resp: aiohttp.ClientResponse, operation: str, request_id: str | None) -> None:
        self._resp = resp
        self._decoder = _wire.EventStreamDecoder(operation)
        self.request_id = request_id

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        feed = self._decoder.feed
        async for chunk in self._resp.content.iter_any():
            for event in feed(chunk):
                yield event

    def close(self) -> None:
        self._resp.close()

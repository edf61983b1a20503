"""The least a gateway made of this gateway's parts can do: ``python -m bench.relay UPSTREAM HOST PORT``.

A plain ASGI app under uvicorn, run as ``serve`` runs the gateway (uvloop, httptools, no access log,
``gc.freeze()`` after start-up), that forwards ``POST /model/{id}/{operation}`` to ``UPSTREAM`` with
the gateway's own upstream HTTP client (aiohttp, through ``bedrock_mw.dispatch._http``) and its own
SigV4 signer, and answers with the upstream's status, content type and body; a stream's body is
relayed a socket read at a time, as the gateway relays one. A GET answers 200 (readiness).

Nothing else happens: no authentication of the caller, no routing, limits, translation, deadlines,
disconnect watching, usage record or metrics. So its CPU per request is what the server, the upstream
client and the signing cost together, the floor under any gateway built on these parts, and the gap
between it and a gateway route is the gateway's own work. The bench measures it beside the routes, in
the same run, as ``relay …`` rows (``bench.routes``).
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from botocore.credentials import ReadOnlyCredentials

from bedrock_mw.dispatch._http import HttpClient, HttpSettings, http_client
from bedrock_mw.dispatch._wire import sign_headers
from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY

REGION = "us-east-1"
# The pool as the bench's gateway config sets it (bench.procs), the default connect timeout.
SETTINGS = HttpSettings(max_connections=2200, connect_timeout_s=10.0)
_PASSED = ("content-type", "x-amzn-requestid", "x-amzn-bedrock-content-type")


class Relay:
    """The ASGI app: one upstream client, created at start-up and closed at shutdown."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.credentials = ReadOnlyCredentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY, None)
        self.client: HttpClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["method"] == "GET":  # readiness: anything but a POST answers 200 here
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        path: str = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        url = self.upstream + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        signed = sign_headers(self.credentials, REGION, url, body, headers)
        assert self.client is not None
        if not path.endswith("-stream"):
            status, answer_headers, answer = await self.client.fetch(url, body, signed)
            out = [*_pass(answer_headers), (b"content-length", str(len(answer)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": answer})
            return
        opened = await self.client.open(url, body, signed)
        try:
            start = {"type": "http.response.start", "status": opened.status, "headers": _pass(opened.headers)}
            await send(start)
            async for chunk in opened.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            opened.close()

    async def start(self) -> None:
        """Open the upstream client (its pool lives on the running loop)."""
        self.client = http_client("aiohttp", SETTINGS)

    async def stop(self) -> None:
        """Close the upstream client and its pooled connections."""
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                gc.collect()
                gc.freeze()  # as serve does after start-up
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _pass(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), headers[name].encode()) for name in _PASSED if name in headers]


def main(argv: list[str]) -> int:
    import uvicorn

    upstream, host, port = argv[1], argv[2], int(argv[3])
    uvicorn.run(
        Relay(upstream),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

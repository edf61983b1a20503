"""A fixed JSON answer in plain ASGI: what an HTTP server costs with no framework and no work behind it.

``bench.servers`` serves it under each server ``serve`` can run, so the server's own CPU per request
is measured apart from the gateway's.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"id":"msg_fixed","type":"message","content":[{"type":"text","text":"hello"}]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the request body, answer 200 with ``BODY``; accept lifespan."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})

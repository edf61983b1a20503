"""``GatewayMiddleware``: serve the gateway under a path prefix of a host app, pass the rest through.

Plain ASGI, so it wraps any ASGI app (Starlette, FastAPI, Django's ASGI handler) directly or
through Starlette's ``Middleware(...)`` list. It also takes part in the host's lifespan: when the
host shuts down, the gateway's upstream clients are closed before shutdown completes.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .app import create_gateway
from .config import GatewayConfig


class GatewayMiddleware:
    """Route ``prefix/...`` to the gateway; everything else goes to the wrapped app untouched."""

    def __init__(
        self,
        app: ASGIApp,
        gateway: Starlette | None = None,
        *,
        prefix: str = "/llm",
        config: GatewayConfig | dict[str, Any] | str | os.PathLike[str] | None = None,
        **gateway_options: Any,
    ) -> None:
        if gateway is None:
            if config is None:
                raise TypeError("GatewayMiddleware needs gateway=create_gateway(...) or config=...")
            gateway = create_gateway(config, **gateway_options)
        self.app = app
        self.gateway = gateway
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""

    def _owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] in ("http", "websocket"):
            root = scope.get("root_path", "")
            path: str = scope["path"]
            relative = path[len(root) :] if root and path.startswith(root) else path
            if self._owns(relative):
                await self.gateway({**scope, "root_path": root + self.prefix}, receive, send)
                return
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Take part in the host's lifespan; serve it ourselves when the host does not speak it."""
        received: list[str] = []
        sent: list[str] = []

        async def receive_tracked() -> Message:
            message = await receive()
            received.append(message["type"])
            return message

        async def send_closing(message: Message) -> None:
            sent.append(message["type"])
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.gateway.state.gateway.aclose()
            await send(message)

        try:
            await self.app(scope, receive_tracked, send_closing)
        except Exception:
            if sent or received:
                raise  # the host's own lifespan failed: the server decides, as without us
            # The host refused the lifespan scope on sight (Django's ASGI handler does): answer the
            # protocol ourselves so that the gateway's upstream clients still close at shutdown.
            await receive()
            await send({"type": "lifespan.startup.complete"})
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            await self.gateway.state.gateway.aclose()
            await send({"type": "lifespan.shutdown.complete"})

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
            await self.app(scope, receive, self._closing_on_shutdown(send))
            return
        if scope["type"] in ("http", "websocket"):
            root = scope.get("root_path", "")
            path: str = scope["path"]
            relative = path[len(root):] if root and path.startswith(root) else path
            if self._owns(relative):
                await self.gateway({**scope, "root_path": root + self.prefix}, receive, send)
                return
        await self.app(scope, receive, send)

    def _closing_on_shutdown(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.gateway.state.gateway.aclose()
            await send(message)

        return wrapped

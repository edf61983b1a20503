"""The gateway's Starlette application, with its fixed-path routes reached by one dictionary lookup.

Starlette serves a request through two middleware layers (``ServerErrorMiddleware``, then
``ExceptionMiddleware``), each wrapping ``send`` per request, and then walks its route list matching
each route's regular expression. For the gateway's own fixed-path routes (``/v1/messages``, chat
completions, embeddings, ...) the route is known from the method and path alone, and the
exception layer has nothing to do: their endpoints (``direct_type``: the gateway passes
:class:`~bedrock_mw.lifecycle.ScopedEndpoint`) are ASGI apps that turn every exception into an
answer themselves, ``HTTPException`` included. So a request for one of
them goes straight to its route, under the same ``ServerErrorMiddleware`` (same handler, same 500
in the caller's dialect for anything that escapes); everything else takes Starlette's full path.
There is one endpoint per route either way, so there is one response path per behaviour.

A route is looked up directly only when Starlette would pick the same one: it has no path
parameters and no earlier route matches its path. A host that adds middleware to this app
(``add_middleware``) gets Starlette's full path for every request, so its middleware always runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

__all__ = ["GatewayApplication", "direct_routes"]


def direct_routes(routes: Sequence[BaseRoute], direct_type: type) -> dict[tuple[str, str], Route]:
    """``(method, path) -> route`` for each ``direct_type`` endpoint Starlette's walk reaches by that key."""
    direct: dict[tuple[str, str], Route] = {}
    for index, route in enumerate(routes):
        if not isinstance(route, Route) or route.param_convertors or not route.methods:
            continue
        # Only endpoints served as they are: a function endpoint is wrapped, and its wrapper reads
        # what the exception layer puts in the scope.
        if not isinstance(route.endpoint, direct_type) or route.app is not route.endpoint:
            continue
        for method in route.methods:
            probe = {"type": "http", "path": route.path, "root_path": "", "method": method}
            if all(earlier.matches(probe)[0] is Match.NONE for earlier in routes[:index]):
                direct.setdefault((method, route.path), route)
    return direct


def _route_path(scope: Scope) -> str:
    """The path below the mount point (``root_path``); a key that can match only where Starlette's would."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class GatewayApplication(Starlette):
    """A Starlette app whose fixed-path routes skip the route walk and the exception layer."""

    def __init__(self, *, direct_type: type, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Starlette's body-size limit (newer versions) sits between the two layers: with it set, every
        # request takes the full path.
        limited = getattr(self, "max_body_size", None) is not None
        self._direct = {} if limited else direct_routes(self.router.routes, direct_type)
        handler = next((h for k, h in self.exception_handlers.items() if k in (500, Exception)), None)
        self._guarded = ServerErrorMiddleware(self._route_of_scope, handler=handler, debug=self.debug)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.user_middleware:
            route = self._direct.get((scope["method"], _route_path(scope)))
            if route is not None:
                # What Starlette's app and router put in the scope on the way to the endpoint.
                scope["app"] = self
                scope.setdefault("router", self.router)
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", {}))
                await self._guarded(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    @staticmethod
    async def _route_of_scope(scope: Scope, receive: Receive, send: Send) -> None:
        route: Route = scope["route"]
        await route.app(scope, receive, send)

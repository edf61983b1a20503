"""GatewayApplication answers every request exactly as the Starlette app it extends would.

Each case is sent to both apps (same routes, same handlers) over httpx's ASGI transport, and the
status, body and what the endpoint saw in its scope must be the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from bedrock_mw.http.application import GatewayApplication, direct_routes

SCOPE_KEYS = ("path_params", "root_path", "path")


class Endpoint:
    """An ASGI endpoint like the gateway's: answers with what it found in its scope."""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail = name, fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fail:
            raise RuntimeError("a bug that escapes the endpoint")
        seen: dict[str, Any] = {k: scope.get(k) for k in SCOPE_KEYS}
        seen["route"] = scope["route"].path
        seen["endpoint"] = getattr(scope["endpoint"], "name", None)
        seen["app"] = type(scope["app"]).__name__ == "Starlette" or isinstance(scope["app"], Starlette)
        seen["router"] = "router" in scope
        await JSONResponse({"endpoint": self.name, "seen": seen})(scope, receive, send)


async def _function(request: Request) -> Response:
    raise HTTPException(404)


async def _not_found(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"not found: {request.url.path}", 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"not allowed: {request.method}", 405)


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "the gateway failed unexpectedly"}, 500)


def _routes() -> list[Any]:
    return [
        Route("/v1/shadowed/{name}", Endpoint("param first"), methods=["POST"]),
        Route("/v1/messages", Endpoint("messages"), methods=["POST"]),
        Route("/v1/shadowed/exact", Endpoint("exact second"), methods=["POST"]),
        Route("/v1/models", Endpoint("models"), methods=["GET"]),
        Route("/v1/fails", Endpoint("fails", fail=True), methods=["POST"]),
        Route("/v1/function", _function, methods=["POST"]),
        Mount("/bedrock", routes=[Route("/converse", Endpoint("mounted"), methods=["POST"])]),
    ]


def _apps(middleware: list[Middleware] | None = None) -> tuple[Starlette, Starlette]:
    handlers: dict[Any, Any] = {404: _not_found, 405: _not_allowed, 500: _server_error}
    plain = Starlette(routes=_routes(), exception_handlers=handlers, middleware=middleware)
    ours = GatewayApplication(
        direct_type=Endpoint, routes=_routes(), exception_handlers=handlers, middleware=middleware
    )
    return plain, ours


async def _answer(app: Any, method: str, path: str, prefix: str = "") -> tuple[int, str]:
    if prefix:
        app = Starlette(routes=[Mount(prefix, app=app)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.request(method, prefix + path, json={})
    return response.status_code, response.text


CASES = [
    ("POST", "/v1/messages", ""),
    ("POST", "/v1/messages", "/llm"),  # mounted in a host app: found below the mount point
    ("POST", "/v1/messages/", ""),  # a trailing slash: Starlette's redirect
    ("GET", "/v1/messages", ""),  # wrong method: the 405 handler
    ("HEAD", "/v1/models", ""),
    ("POST", "/v1/shadowed/exact", ""),  # an earlier route with a parameter matches first
    ("POST", "/v1/fails", ""),  # an exception escapes the endpoint: the 500 handler answers
    ("POST", "/v1/function", ""),  # a function endpoint's HTTPException: the status handler
    ("POST", "/bedrock/converse", ""),
    ("POST", "/nowhere", ""),
]


@pytest.mark.parametrize(("method", "path", "prefix"), CASES)
def test_every_request_is_answered_as_starlette_answers_it(method: str, path: str, prefix: str) -> None:
    plain, ours = _apps()
    expected = asyncio.run(_answer(plain, method, path, prefix))
    assert asyncio.run(_answer(ours, method, path, prefix)) == expected


def test_only_fixed_path_endpoints_of_the_direct_type_that_nothing_shadows_are_looked_up_directly() -> None:
    assert sorted(direct_routes(_routes(), Endpoint)) == [
        ("GET", "/v1/models"),
        ("HEAD", "/v1/models"),
        ("POST", "/v1/fails"),
        ("POST", "/v1/messages"),
    ]


def test_middleware_a_host_adds_runs_for_every_route() -> None:
    calls: list[str] = []

    class Counting:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            calls.append(scope["path"])
            await self.app(scope, receive, send)

    plain, ours = _apps([Middleware(Counting)])
    expected = asyncio.run(_answer(plain, "POST", "/v1/messages"))
    assert asyncio.run(_answer(ours, "POST", "/v1/messages")) == expected
    assert calls == ["/v1/messages", "/v1/messages"]


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/v1/messages", "", "/v1/messages"),
        ("/llm/v1/messages", "/llm", "/v1/messages"),
        ("/llmx/v1/messages", "/llm", "x/v1/messages"),  # not below the mount: matches no route
        ("/other/v1/messages", "/llm", "/other/v1/messages"),
    ],
)
def test_the_lookup_key_is_the_path_below_the_mount_point(path: str, root_path: str, expected: str) -> None:
    from bedrock_mw.http.application import _route_path

    assert _route_path({"path": path, "root_path": root_path}) == expected

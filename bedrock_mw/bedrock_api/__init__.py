"""Bedrock's own API through the gateway, for AWS SDKs, langchain-aws, Strands and Claude Code.

Mounted under ``bedrock_api.prefix`` (``/bedrock``): Bedrock Runtime's REST operations as botocore's
``bedrock-runtime`` model defines them, and the control plane's ``ListInferenceProfiles``. Every
answer, errors included, is in Bedrock's own shape, so the SDKs raise their usual ``ClientError``s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ..config import BedrockApiConfig
from ..dispatch import UpstreamError
from ..errors import GatewayError
from ..gateway import Gateway, RequestContext, new_request_id
from ..guidance import explain
from ..http import ClientDisconnected, error_response
from .control import list_inference_profiles
from .runtime import OPERATIONS, runtime_call, unknown_operation

__all__ = ["bedrock_api_routes"]

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Handler = Callable[[Gateway, RequestContext], Awaitable[Response]]


async def _answer(gw: Gateway, ctx: RequestContext, handler: Handler) -> Response:
    """Run a handler; any failure becomes Bedrock's error shape and a usage record."""
    try:
        return await handler(gw, ctx)
    except GatewayError as err:
        await gw.record(ctx, status=err.status_for("bedrock"), error_type=err.kind.value)
        return error_response(err, "bedrock", ctx.response_headers())
    except UpstreamError as err:  # a step outside the routing plan (never expected, still mapped)
        explained = explain(err)
        await gw.record(ctx, status=explained.status_for("bedrock"), error_type=explained.kind.value)
        return error_response(explained, "bedrock", ctx.response_headers())
    except ClientDisconnected:
        await gw.record(ctx, status=499, error_type="client_disconnected")
        return Response(status_code=499)


def _runtime_endpoint(gw: Gateway) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        op = OPERATIONS.get(request.path_params["operation"])
        if op is None:
            return error_response(unknown_operation(request.url.path), "bedrock")
        model_id: str = request.path_params["model_id"]
        ctx = RequestContext(request, "bedrock", f"bedrock.{op.name}", new_request_id(request.headers))
        return await _answer(gw, ctx, lambda g, c: runtime_call(g, c, model_id, op))

    return endpoint


def _profiles_endpoint(gw: Gateway) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        name = "bedrock.ListInferenceProfiles"
        ctx = RequestContext(request, "bedrock", name, new_request_id(request.headers))
        return await _answer(gw, ctx, list_inference_profiles)

    return endpoint


async def _unknown(request: Request) -> Response:
    return error_response(unknown_operation(f"{request.method} {request.url.path}"), "bedrock")


def bedrock_api_routes(gw: Gateway, config: BedrockApiConfig) -> list[BaseRoute]:
    """The routes to add to the gateway app (none when the Bedrock API is turned off)."""
    if not config.enabled:
        return []
    routes: list[BaseRoute] = [
        Route("/model/{model_id:path}/{operation}", _runtime_endpoint(gw), methods=["POST"]),
        Route("/inference-profiles", _profiles_endpoint(gw), methods=["GET"]),
        Route("/{rest:path}", _unknown, methods=_ALL_METHODS),
    ]
    return [Mount(config.prefix, routes=routes)]

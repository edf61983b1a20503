"""Bedrock's own API through the gateway, for AWS SDKs, langchain-aws, Strands and Claude Code.

Mounted under ``bedrock_api.prefix`` (``/bedrock``): Bedrock Runtime's REST operations as botocore's
``bedrock-runtime`` model defines them, and the control plane's ``ListInferenceProfiles``. Every
answer, errors included, is in Bedrock's own shape, so the SDKs raise their usual ``ClientError``s.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ..config import BedrockApiConfig
from ..gateway import Gateway, RequestContext
from ..http import error_response
from ..lifecycle import ScopedEndpoint
from .control import list_inference_profiles
from .runtime import OPERATIONS, runtime_call, unknown_operation

__all__ = ["bedrock_api_routes"]

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _runtime_endpoint(gw: Gateway) -> ScopedEndpoint:
    async def handler(gw: Gateway, ctx: RequestContext) -> Response:
        op = OPERATIONS.get(ctx.request.path_params["operation"])
        if op is None:
            raise unknown_operation(ctx.request.url.path)
        ctx.endpoint = f"bedrock.{op.name}"
        return await runtime_call(gw, ctx, ctx.request.path_params["model_id"], op)

    return ScopedEndpoint(gw, "bedrock", "bedrock.runtime", handler)


def _profiles_endpoint(gw: Gateway) -> ScopedEndpoint:
    return ScopedEndpoint(gw, "bedrock", "bedrock.ListInferenceProfiles", list_inference_profiles)


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

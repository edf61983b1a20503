"""The mountable Starlette sub-application: one route per endpoint, each a straight line.

authenticate → resolve alias and route → translate → dispatch → transcode → respond.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .bedrock_api import bedrock_api_routes
from .config import ConfigError, GatewayConfig, VirtualKeyConfig, load_config
from .dispatch import Dispatcher
from .errors import Dialect, ErrorKind, GatewayError
from .excgroups import collapse_excgroups
from .gateway import Gateway, RequestContext
from .guardrails import attach_trace, invoke_guardrail, native_outcome, outcome_of_converse, with_stream_mode
from .http import error_response, json_response, unless_disconnected
from .http.application import GatewayApplication
from .lifecycle import ScopedEndpoint
from .limits import BudgetLedger, BudgetStatus, Limiter
from .media import AddressPolicy, FetchRules, fetch_media
from .messages import count_message_tokens, create_message
from .observability import PrometheusMetrics
from .probes import Readiness
from .response_store import ResponseStore
from .responses_api import ResponsesRoutes
from .routing.access import listing_origin
from .routing.families import ChatApi
from .routing.listing import list_models_payload
from .routing.plan import Attempt
from .stores import AliasStoreSource, CredentialStoreSource, resolve_alias_store
from .stream.native import NativeChatStreamTranscoder
from .stream.openai import OpenAIStreamTranscoder
from .translate import anthropic, openai
from .translate.openai import embeddings, native
from .translate.types import TokenUsage
from .usage import KeyResolver, UsageHook

if TYPE_CHECKING:
    from .translate.native_shapes import EmbedRequest

Handler = Callable[[Gateway, RequestContext], Awaitable[Response]]
log = logging.getLogger("bedrock_mw")


def _endpoint(gateway: Gateway, dialect: Dialect, name: str, handler: Handler) -> ScopedEndpoint:
    """The ASGI app serving ``handler`` as endpoint ``name`` inside the request's scope."""
    return ScopedEndpoint(gateway, dialect, name, handler)


# -- Anthropic Messages ---------------------------------------------------------------------------
async def messages(gw: Gateway, ctx: RequestContext) -> Response:
    await gw.authenticate(ctx)
    body = await gw.read_body(ctx)
    await gw.route(ctx, body.get("model"))
    await gw.reserve_budget(ctx, body)
    media = await _media(gw, anthropic.image_urls(body))
    return await create_message(gw, ctx, body, media)


async def count_tokens(gw: Gateway, ctx: RequestContext) -> Response:
    await gw.authenticate(ctx)
    body = await gw.read_body(ctx)
    await gw.route(ctx, body.get("model"), guarded=False)  # counting runs no model
    media = await _media(gw, anthropic.image_urls(body))
    return await count_message_tokens(gw, ctx, body, media)


# -- OpenAI Chat Completions ----------------------------------------------------------------------
async def chat_completions(gw: Gateway, ctx: RequestContext) -> Response:
    key = await gw.authenticate(ctx)
    body = await gw.read_body(ctx)
    plan = await gw.route(ctx, body.get("model"))
    await gw.reserve_budget(ctx, body)
    options = _openai_options(gw, key.drop_unsupported_params)
    chat_api = plan.model.family.chat_api
    if chat_api is ChatApi.INVOKE:
        return await _chat_via_invoke(gw, ctx, body, options)
    if chat_api is ChatApi.NONE:
        raise GatewayError(
            ErrorKind.INVALID_REQUEST,
            f"model {plan.model.requested!r} is an embedding model; use /v1/embeddings",
            param="model",
        )
    return await _chat_via_converse(gw, ctx, body, options)


async def _chat_via_converse(
    gw: Gateway, ctx: RequestContext, body: dict[str, Any], options: openai.OpenAIOptions
) -> Response:
    assert ctx.plan is not None
    requested, family = ctx.plan.model.requested, ctx.plan.model.family
    media = await _media(gw, openai.image_urls(body))
    call = openai.openai_to_converse(body, family, options, media=media)
    ctx.notes.update(call.notes)
    completion_id, created = openai.new_completion_id(), int(time.time())
    if call.stream:
        transcoder = OpenAIStreamTranscoder(
            model=requested,
            completion_id=completion_id,
            created=created,
            call=call,
            include_usage=_include_usage(body),
        )
        return await gw.stream(
            ctx,
            lambda a: gw.dispatcher.converse_stream(a, ctx.converse_request(a, call.request, stream=True)),
            transcoder,
            sent=call.request,
        )
    response = await gw.call(
        ctx, lambda a: gw.dispatcher.converse(a, ctx.converse_request(a, call.request, stream=False))
    )
    completion = openai.converse_to_openai(
        response, model=requested, call=call, completion_id=completion_id, created=created
    )
    ctx.guardrail = outcome_of_converse(response.get("stopReason"), response.get("trace"))
    await gw.record(ctx, status=200, usage=TokenUsage.from_converse(response.get("usage")))
    return json_response(attach_trace(completion, ctx.guardrail), headers=ctx.response_headers())


async def _chat_via_invoke(
    gw: Gateway, ctx: RequestContext, body: dict[str, Any], options: openai.OpenAIOptions
) -> Response:
    """Families served by InvokeModel with their native body (Titan Text)."""
    assert ctx.plan is not None
    requested, family = ctx.plan.model.requested, ctx.plan.model.family
    call = native.openai_to_invoke(body, family, options)
    ctx.notes.update(call.notes)
    completion_id, created = openai.new_completion_id(), int(time.time())
    if call.stream:
        transcoder = NativeChatStreamTranscoder(
            model=requested,
            completion_id=completion_id,
            created=created,
            call=call,
            include_usage=_include_usage(body),
            family=family,
        )

        def open_(a: Attempt) -> Any:
            spec = ctx.guardrail_for(a)
            return gw.dispatcher.invoke_model_stream(
                a, with_stream_mode(call.body, spec), invoke_guardrail(spec)
            )

        return await gw.stream(ctx, open_, transcoder, sent=call.body)
    result = await gw.call(
        ctx, lambda a: gw.dispatcher.invoke_model(a, call.body, invoke_guardrail(ctx.guardrail_for(a)))
    )
    completion = native.invoke_to_openai(
        result.body,
        family=family,
        model=requested,
        call=call,
        completion_id=completion_id,
        created=created,
        input_tokens_header=result.input_tokens,
    )
    ctx.guardrail = native_outcome(result.body)
    if ctx.guardrail.intervened:  # the native body keeps the model's own stop reason
        completion["choices"][0]["finish_reason"] = "content_filter"
    usage = completion.get("usage") or {}
    await gw.record(
        ctx,
        status=200,
        usage=TokenUsage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
    )
    return json_response(attach_trace(completion, ctx.guardrail), headers=ctx.response_headers())


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


# -- OpenAI Embeddings ----------------------------------------------------------------------------
_EMBED_CONCURRENCY = 8


async def create_embeddings(gw: Gateway, ctx: RequestContext) -> Response:
    key = await gw.authenticate(ctx)
    body = await gw.read_body(ctx)
    plan = await gw.route(ctx, body.get("model"))
    requested = plan.model.requested
    await gw.reserve_budget(ctx, body)
    # Bedrock has no inline guardrail for embeddings: the input is checked first (masked or refused).
    body["input"] = await gw.guard_input(ctx, embeddings.input_texts(body))
    drop = _openai_options(gw, key.drop_unsupported_params).drop_unsupported_params
    embed_plan = embeddings.plan_embeddings(
        body, plan.model.family, model=requested, drop_unsupported_params=drop
    )
    ctx.notes.update(embed_plan.notes)
    results: list[Any] = [None] * len(embed_plan.requests)
    limiter = anyio.Semaphore(_EMBED_CONCURRENCY)

    async def one(index: int, native_body: EmbedRequest) -> None:
        async with limiter:
            results[index] = await gw.run(ctx, lambda a: gw.dispatcher.invoke_model(a, native_body))

    async def all_requests() -> None:
        async with anyio.create_task_group() as tg:
            for index, native_body in enumerate(embed_plan.requests):
                tg.start_soon(one, index, native_body)

    with collapse_excgroups():  # several sub-requests failed: report the first
        await unless_disconnected(ctx.request.receive, all_requests)
    payload = embeddings.embeddings_response(
        embed_plan, [r.body for r in results], model=requested, token_counts=[r.input_tokens for r in results]
    )
    tokens = int((payload.get("usage") or {}).get("prompt_tokens", 0))
    await gw.record(ctx, status=200, usage=TokenUsage(input_tokens=tokens))
    return json_response(payload, headers=ctx.response_headers())


# -- Models ---------------------------------------------------------------------------------------
async def list_models(gw: Gateway, ctx: RequestContext) -> Response:
    key = await gw.authenticate(ctx)
    await gw.admit(ctx)
    headers = ctx.request.headers
    aliases = await resolve_alias_store(gw.alias_source, ctx.request)
    providers = await gw.providers_of(ctx)
    origin = listing_origin(key, providers)
    account = await gw.discovery.account(*origin) if origin is not None else None
    payload = await list_models_payload(
        key,
        aliases,
        gw.catalogue,
        anthropic_shape="anthropic-version" in headers or "x-api-key" in headers,
        providers=providers,
        finder=gw.finder(key, providers),
        account=account,
    )
    await gw.record(ctx, status=200)
    return json_response(payload, headers=ctx.response_headers())


# -- helpers --------------------------------------------------------------------------------------
def _openai_options(gw: Gateway, per_key_drop: bool | None) -> openai.OpenAIOptions:
    cfg = gw.config
    drop = cfg.drop_unsupported_params if per_key_drop is None else per_key_drop
    return openai.OpenAIOptions(
        allow_url_fetch=cfg.allow_url_fetch,
        drop_unsupported_params=drop,
        max_cache_points=cfg.max_cache_points,
    )


async def _media(gw: Gateway, urls: list[str]) -> dict[str, tuple[bytes, str]] | None:
    if not urls or not gw.config.allow_url_fetch:
        return None
    return await fetch_media(urls, FetchRules.from_config(gw.config, gw.url_fetch_policy))


_OPENAI_PATHS = ("/v1/chat/completions", "/v1/embeddings", "/v1/models", "/v1/responses")
_ANTHROPIC_PATHS = ("/v1/messages", "/v1/messages/count_tokens")


def _dialect_of(request: Request) -> Dialect:
    """The dialect to answer an unrouted request in: the endpoint's own, else the client's headers."""
    path = request.url.path.rstrip("/")
    if path.endswith(_ANTHROPIC_PATHS):
        return "anthropic"
    if path.endswith(_OPENAI_PATHS):
        return "openai"
    return "anthropic" if "anthropic-version" in request.headers else "openai"


async def _not_found(request: Request, exc: Exception) -> Response:
    err = GatewayError(
        ErrorKind.NOT_FOUND, f"no such endpoint: {request.method} {request.url.path}", code="unknown_url"
    )
    return error_response(err, _dialect_of(request))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    err = GatewayError(
        ErrorKind.INVALID_REQUEST, f"{request.method} is not allowed on {request.url.path}", status=405
    )
    return error_response(err, _dialect_of(request))


async def _server_error(request: Request, exc: Exception) -> Response:
    err = GatewayError(ErrorKind.API_ERROR, "the gateway failed unexpectedly; the error was logged")
    return error_response(err, _dialect_of(request))


async def budget_status(app: Starlette, key: VirtualKeyConfig | str) -> list[BudgetStatus]:
    """What is left of every dollar budget ``key`` counts against (its own, then its groups').

    ``app`` is what :func:`create_gateway` returned; ``key`` a key from the config (by id) or from the
    host's own store.
    """
    gateway: Gateway = app.state.gateway
    if isinstance(key, str):
        found = next((k for k in gateway.config.virtual_keys if k.id == key), None)
        if found is None:
            raise KeyError(f"no virtual key {key!r} in the config; pass the VirtualKeyConfig itself")
        key = found
    return await gateway.budget_status(key)


def _import_hook(path: str) -> UsageHook:
    """The usage hook named in the config as ``module:function`` (for ``bedrock-mw serve``)."""
    module_name, _, name = path.partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"usage_hook {path!r} cannot be imported: {exc}") from None
    if not callable(hook):
        raise ConfigError(f"usage_hook {path!r} is not callable")
    return cast(UsageHook, hook)


def _metrics_endpoint(metrics: PrometheusMetrics) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return endpoint


def create_gateway(
    config: GatewayConfig | dict[str, Any] | str | os.PathLike[str],
    *,
    credential_store: CredentialStoreSource | None = None,
    alias_store: AliasStoreSource | None = None,
    usage_hook: UsageHook | None = None,
    key_resolver: KeyResolver | None = None,
    dispatcher: Dispatcher | None = None,
    limiter: Limiter | None = None,
    response_store: ResponseStore | None = None,
    budgets: BudgetLedger | None = None,
    url_fetch_policy: AddressPolicy | None = None,
) -> Starlette:
    """Build the mountable gateway application.

    ``config`` is a file path (JSON, TOML, YAML), a dict, or a validated :class:`GatewayConfig`.
    Stores are instances or per-request factories (callables taking the Starlette request).
    Upstream clients are created lazily, so the app also works with no ASGI lifespan (httpx's
    ASGI transport); when a lifespan runs, shutdown closes them.
    ``url_fetch_policy`` replaces the addresses ``allow_url_fetch`` may connect to (default: public
    unicast only, see docs/security.md); tests pass one that admits loopback.
    """
    cfg = load_config(config)
    if usage_hook is None and cfg.usage_hook is not None:
        usage_hook = _import_hook(cfg.usage_hook)
    gateway = Gateway(
        cfg,
        credential_store=credential_store,
        alias_store=alias_store,
        dispatcher=dispatcher,
        usage_hook=usage_hook,
        key_resolver=key_resolver,
        limiter=limiter,
        response_store=response_store,
        budgets=budgets,
        url_fetch_policy=url_fetch_policy,
    )
    readiness = Readiness(gateway)
    responses = ResponsesRoutes(cfg, gateway.response_store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    routes = [
        Route("/v1/messages", _endpoint(gateway, "anthropic", "messages", messages), methods=["POST"]),
        Route(
            "/v1/messages/count_tokens",
            _endpoint(gateway, "anthropic", "count_tokens", count_tokens),
            methods=["POST"],
        ),
        Route(
            "/v1/chat/completions",
            _endpoint(gateway, "openai", "chat_completions", chat_completions),
            methods=["POST"],
        ),
        Route(
            "/v1/embeddings", _endpoint(gateway, "openai", "embeddings", create_embeddings), methods=["POST"]
        ),
        Route("/v1/models", _endpoint(gateway, "openai", "models", list_models), methods=["GET"]),
        *responses.routes(gateway, _endpoint),
        Route(cfg.probes.readyz_path, readiness.readyz, methods=["GET"]),
        Route(cfg.probes.livez_path, readiness.livez, methods=["GET"]),
        *bedrock_api_routes(gateway, cfg.bedrock_api),
    ]
    metrics = next((o for o in gateway.observers if isinstance(o, PrometheusMetrics)), None)
    if metrics is not None:
        routes.append(Route(cfg.observability.metrics_path, _metrics_endpoint(metrics), methods=["GET"]))
    app = GatewayApplication(
        direct_type=ScopedEndpoint,
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _method_not_allowed, 500: _server_error},
    )
    app.state.gateway = gateway
    app.state.readiness = readiness
    return app

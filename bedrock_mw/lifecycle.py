"""The one scope that owns a request's resources, so every request ends the same way.

The route wrapper enters a :class:`RequestScope` around the whole exchange: the handler *and* the
sending of its response (a stream's body included). The pipeline hands what it acquires to the
request's context (the limit lease, every upstream stream it opens) and states the outcome it
reached (:meth:`RequestContext.end`, which settles at once, so the slot is free before the caller
sees the last byte); it never releases or records anything itself. Leaving the scope settles
whatever was not settled, however that happens (the client leaving before, during or after the
body, a client that stops reading, a deadline, cancellation, shutdown, or a bug). Settling happens
exactly once, in one order:

1. every upstream stream is closed (its connection is released at once);
2. the lease is released with the tokens used, counted from what was delivered when a stream
   ended early (the hook point for anything else settled per request, budgets included);
3. exactly one usage record is written: the stated outcome, else 499 for a client that vanished
   (or a cancelled request) and 500 for an unexpected exception.

Settling is shielded from cancellation and never raises, so a failing step cannot skip the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .dispatch import UpstreamError
from .errors import Dialect, ErrorKind, GatewayError
from .gateway import Gateway, Outcome, RequestContext, new_request_id
from .guidance import explain
from .http import ClientDisconnected, error_response
from .translate.types import TokenUsage
from .usage import UsageRecord

__all__ = ["Handler", "RequestScope", "ScopedEndpoint", "outcome_of_exit"]

log = logging.getLogger("bedrock_mw")

CLIENT_GONE = "client_disconnected"
Handler = Callable[[Gateway, RequestContext], Awaitable[Response]]


def outcome_of_exit(exc: BaseException | None, stated: Outcome | None) -> Outcome:
    """The outcome to record for a request leaving its scope with ``exc`` (None: normally)."""
    if exc is None:
        if stated is not None:
            return stated
        # A handler that returned without stating an outcome is a bug: never record it as a success.
        return Outcome(500, error_type="no_outcome")
    if isinstance(exc, ClientDisconnected | ClientDisconnect):
        return Outcome(499, error_type=CLIENT_GONE)
    if isinstance(exc, asyncio.CancelledError):
        return Outcome(499, error_type="cancelled")
    return Outcome(500, error_type="api_error")


class RequestScope:
    """``async with RequestScope(gateway, request, dialect, endpoint) as ctx``: settled once.

    The pipeline settles early through :meth:`RequestContext.end` once its outcome is final (so
    the slot is free before the caller sees the last byte); leaving the scope settles whatever
    was not. A client that left (:class:`ClientDisconnected`, Starlette's ``ClientDisconnect``)
    is swallowed once recorded: there is nobody to answer. Everything else propagates.
    """

    def __init__(self, gateway: Gateway, request: Request, dialect: Dialect, endpoint: str) -> None:
        self.gateway = gateway
        self.ctx = RequestContext(request, dialect, endpoint, new_request_id(request.headers))
        self.ctx.settler = self.settle
        self._settled = False

    async def __aenter__(self) -> RequestContext:
        return self.ctx

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            if not self._settled:
                outcome = outcome_of_exit(exc, self.ctx.outcome)
                if outcome.status == 500 and exc is not None:
                    log.error(
                        "request failed unexpectedly",
                        exc_info=(type(exc), exc, tb),
                        extra={"request_id": self.ctx.request_id},
                    )
                await self.settle(outcome)
            else:
                for stream in self.ctx.streams:  # settled early; anything opened since is closed too
                    stream.close()
        finally:
            # The context's settler is this scope's bound method: a reference cycle (scope -> ctx ->
            # settler -> scope) that would keep the whole request (its body, upstream response,
            # transcoder) alive until the garbage collector found it. Broken here, the request is
            # freed by reference counting the moment it ends.
            self.ctx.settler = None
        return isinstance(exc, ClientDisconnected | ClientDisconnect)

    async def settle(self, outcome: Outcome) -> None:
        """Close the request's upstream streams, release its lease, write its one usage record."""
        if self._settled:
            return
        self._settled = True
        with anyio.CancelScope(shield=True):
            await _settle(self.gateway, self.ctx, outcome)


class ScopedEndpoint:
    """One route as an ASGI app: the request's scope spans the handler and the whole response.

    The :class:`RequestScope` settles the request however it ends; this wrapper only turns errors
    into responses in the caller's dialect and states that outcome. (A class, not a function:
    Starlette treats a plain function endpoint as request -> response, and a response sent after
    it returns would be outside the scope.)
    """

    def __init__(self, gateway: Gateway, dialect: Dialect, name: str, handler: Handler) -> None:
        self.gateway, self.dialect, self.name, self.handler = gateway, dialect, name, handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        async with RequestScope(self.gateway, request, self.dialect, self.name) as ctx:
            try:
                response = await self.handler(self.gateway, ctx)
            except GatewayError as err:
                response = await refuse(ctx, err)
            except UpstreamError as err:  # a step outside the routing plan (never expected, still mapped)
                response = await refuse(ctx, explain(err))
            except (ClientDisconnected, ClientDisconnect):  # left while we read its body or waited
                await ctx.end(Outcome(499, error_type=CLIENT_GONE))
                response = Response(status_code=499)
            except Exception:
                log.exception("request failed unexpectedly", extra={"request_id": ctx.request_id})
                response = await refuse(ctx, _UNEXPECTED)
            await response(scope, receive, send)


_UNEXPECTED = GatewayError(ErrorKind.API_ERROR, "the gateway failed unexpectedly; the error was logged")


async def refuse(ctx: RequestContext, err: GatewayError) -> Response:
    """Settle the request with ``err``'s status and answer it in the caller's dialect."""
    await ctx.end(Outcome(err.status_for(ctx.dialect), error_type=err.kind.value))
    return error_response(err, ctx.dialect, ctx.response_headers())


async def _settle(gateway: Gateway, ctx: RequestContext, outcome: Outcome) -> None:
    for stream in ctx.streams:
        stream.close()
    usage = _usage(ctx, outcome)
    if ctx.lease is not None:
        lease, ctx.lease = ctx.lease, None
        try:
            await lease.release(
                used_tokens=usage.input_tokens
                + usage.output_tokens
                + usage.cache_read_input_tokens
                + usage.cache_write_input_tokens
            )
        except Exception:
            log.exception("releasing the limit lease failed", extra={"request_id": ctx.request_id})
    record = _record(gateway, ctx, outcome, usage)
    if ctx.budget_hold is not None:
        hold, ctx.budget_hold = ctx.budget_hold, None
        # A stream that ended early without usage figures was still billed for what Bedrock
        # generated: it keeps its whole reservation (settle(None)) rather than counting nothing.
        unknown = record.cost_usd == 0.0 and ctx.first_token_at is not None and outcome.status != 200
        try:
            await hold.settle(None if unknown else record.cost_usd)
        except Exception:
            log.exception("settling the budget hold failed", extra={"request_id": ctx.request_id})
    await write_record(gateway, record)


def _usage(ctx: RequestContext, outcome: Outcome) -> TokenUsage:
    if ctx.usage_source is None:
        return outcome.usage
    try:
        return ctx.usage_source()
    except Exception:
        log.exception("counting a stream's usage failed", extra={"request_id": ctx.request_id})
        return outcome.usage


def _record(gateway: Gateway, ctx: RequestContext, outcome: Outcome, usage: TokenUsage) -> UsageRecord:
    served = ctx.served_by
    spec = ctx.applied_guardrail()
    judged = ctx.guardrail if spec is not None else None
    return UsageRecord(
        request_id=ctx.request_id,
        key_id=ctx.key.id if ctx.key else None,
        endpoint=ctx.endpoint,
        model=ctx.plan.model.requested if ctx.plan else None,
        provider_id=served.provider.id if served else None,
        region=served.region if served else None,
        model_id=served.model_id if served else None,
        status=outcome.status,
        stream=ctx.stream,
        usage=usage,
        cost_usd=gateway._cost(ctx, usage),
        latency_s=time.perf_counter() - ctx.started,
        time_to_first_token_s=(ctx.first_token_at - ctx.started) if ctx.first_token_at else None,
        attempts=ctx.attempts,
        error_type=outcome.error_type,
        key_metadata=dict(ctx.key.metadata) if ctx.key else {},
        session_id=ctx.session_id,
        end_user=ctx.end_user,
        guardrail=f"{spec.identifier}:{spec.version}" if spec is not None else None,
        guardrail_action=judged.action if judged is not None else None,
        guardrail_trace=judged.trace if judged is not None else None,
    )


async def write_record(gateway: Gateway, record: UsageRecord) -> None:
    """Log the request and give its record to the observers and the host's hook (errors logged)."""
    if gateway.config.observability.access_log and log.isEnabledFor(logging.INFO):
        log.info(
            "request",
            extra={
                "request_id": record.request_id,
                "key_id": record.key_id,
                "endpoint": record.endpoint,
                "model": record.model,
                "provider": record.provider_id,
                "region": record.region,
                "status": record.status,
                "latency_ms": round(record.latency_s * 1000, 2),
                "attempts": record.attempts,
                "input_tokens": record.usage.input_tokens,
                "output_tokens": record.usage.output_tokens,
            },
        )
    for observer in gateway.observers:
        try:
            observer.observe(record)
        except Exception:
            log.exception("observer failed", extra={"request_id": record.request_id})
    if gateway.usage_hook is not None and record.key_id is not None:
        try:
            await gateway.usage_hook(record)
        except Exception:
            log.exception("usage hook failed", extra={"request_id": record.request_id})

"""The gateway's request pipeline, shared by every route.

A route reads as a straight line: authenticate → resolve the model and plan the route →
translate → dispatch (with fallback) → transcode → respond. This module holds the steps that are
the same for every dialect; ``app.py`` holds the routes.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .auth import authenticate
from .config import GatewayConfig, GuardrailConfig, ProviderConfig, VirtualKeyConfig
from .cost import PriceTable
from .dispatch import Dispatcher, UpstreamError, UpstreamStream, request_id_of
from .errors import Dialect, ErrorKind, GatewayError
from .guardrails import (
    REQUEST_HEADER,
    GuardrailOutcome,
    blocked_input_error,
    guardrail_required_error,
    input_verdict,
    resolve_guardrail,
    with_guardrail,
)
from .guidance import explain, explain_all
from .http import SSE_MEDIA_TYPE, SSEResponse, read_json, unless_disconnected
from .limits import (
    BudgetHold,
    BudgetLedger,
    BudgetStatus,
    Lease,
    Limiter,
    create_budgets,
    create_limiter,
    scopes_for,
)
from .media import AddressPolicy
from .observability import Observer, PrometheusMetrics, default_observers
from .response_store import ResponseStore, default_response_store
from .routing.access import admit
from .routing.discovery import ModelDiscovery
from .routing.model_ids import Catalogue, resolve_model
from .routing.plan import Attempt, RoutePlan, is_retryable
from .stores import (
    AliasStore,
    AliasStoreSource,
    CachingCredentialStore,
    CredentialStore,
    CredentialStoreSource,
    StaticAliasStore,
    StaticCredentialStore,
    resolve_alias_store,
    resolve_store,
)
from .stream import StreamTranscoder
from .stream.delivered import DeliveredUsage
from .translate.types import ConverseParams, TokenUsage
from .usage import KeyResolver, UsageHook

log = logging.getLogger("bedrock_mw")
T = TypeVar("T")
E = TypeVar("E")


@dataclass(slots=True)
class Outcome:
    """How a request ended, as the pipeline states it: the status, the usage and the error kind."""

    status: int
    usage: TokenUsage = field(default_factory=TokenUsage)
    error_type: str | None = None


@dataclass(slots=True)
class RequestContext:
    """Per-request state that the pipeline fills in as it goes.

    The resources here (``lease``, ``streams``) are owned by the request's
    :class:`~bedrock_mw.lifecycle.RequestScope`, which releases them when the request ends.
    """

    request: Request
    dialect: Dialect
    endpoint: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    key: VirtualKeyConfig | None = None
    credentials: CredentialStore | None = None
    plan: RoutePlan | None = None
    served_by: Attempt | None = None
    attempts: int = 0
    upstream_request_id: str | None = None
    notes: dict[str, str] = field(default_factory=dict)
    first_token_at: float | None = None
    lease: Lease | None = None
    budget_hold: BudgetHold | None = None
    end_user: str | None = None
    session_id: str | None = None
    # The guardrail each provider's attempts carry (by provider id; absent or None: none).
    guardrails: dict[str, GuardrailConfig | None] = field(default_factory=dict)
    guardrail: GuardrailOutcome | None = None

    def guardrail_for(self, attempt: Attempt) -> GuardrailConfig | None:
        """The guardrail this attempt carries, if any."""
        return self.guardrails.get(attempt.provider.id)

    def applied_guardrail(self) -> GuardrailConfig | None:
        """The guardrail that was applied: the serving attempt's, or the one that judged the input."""
        if self.served_by is not None:
            return self.guardrail_for(self.served_by)
        if self.guardrail is not None and self.plan is not None and self.plan.attempts:
            return self.guardrail_for(self.plan.attempts[0])
        return None

    def converse_request(self, attempt: Attempt, request: ConverseParams, *, stream: bool) -> ConverseParams:
        """The Converse(Stream) request for this attempt: with its guardrail attached, if it has one."""
        return with_guardrail(request, self.guardrails.get(attempt.provider.id), stream=stream)

    streams: list[UpstreamStream[Any]] = field(default_factory=list)
    stream: bool = False
    outcome: Outcome | None = None
    # For a stream: the usage so far (Bedrock's own counts, else an estimate of what was delivered).
    usage_source: Callable[[], TokenUsage] | None = None
    # Set by the request's scope: settles the request (streams, lease, record) once.
    settler: Callable[[Outcome], Awaitable[None]] | None = None

    async def end(self, outcome: Outcome) -> None:
        """State how the request ended and settle it now, before the caller sees the last byte.

        Settling first means a client that sends its next request the moment this one ends finds
        its slot free. Whatever is not ended this way is settled when the request's scope closes.
        """
        self.outcome = outcome
        if self.settler is not None:
            await self.settler(outcome)

    def response_headers(self) -> dict[str, str]:
        """Who served the request (provider, region, model id, attempts) plus translator notes."""
        headers = {"x-request-id": self.request_id, **self.notes}
        if self.served_by is not None:
            headers["x-bedrock-mw-provider"] = self.served_by.provider.id
            headers["x-bedrock-mw-region"] = self.served_by.region
            headers["x-bedrock-mw-model-id"] = self.served_by.model_id
        if self.attempts:
            headers["x-bedrock-mw-attempts"] = str(self.attempts)
        if self.upstream_request_id:
            headers["x-amzn-requestid"] = self.upstream_request_id
        if self.plan is not None and self.plan.skipped:
            headers["x-bedrock-mw-skipped"] = "; ".join(self.plan.skipped)[:1000]
        spec = self.guardrail_for(self.served_by) if self.served_by is not None else None
        if spec is not None:
            headers["x-bedrock-mw-guardrail"] = f"{spec.identifier}:{spec.version}"
            if self.guardrail is not None:  # known only for answers that were not streamed
                headers["x-bedrock-mw-guardrail-action"] = self.guardrail.action
        return headers


class Gateway:
    """Everything a request needs: config, stores, the dispatcher, the catalogue and the hooks."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        credential_store: CredentialStoreSource | None = None,
        alias_store: AliasStoreSource | None = None,
        dispatcher: Dispatcher | None = None,
        usage_hook: UsageHook | None = None,
        key_resolver: KeyResolver | None = None,
        limiter: Limiter | None = None,
        response_store: ResponseStore | None = None,
        budgets: BudgetLedger | None = None,
        url_fetch_policy: AddressPolicy | None = None,
    ) -> None:
        self.config = config
        ttl = config.store_cache_ttl_s
        if credential_store is None:
            credential_store = CachingCredentialStore(StaticCredentialStore(config), ttl)
        self.credential_source: CredentialStoreSource = credential_store
        self.alias_source: AliasStoreSource = (
            alias_store if alias_store is not None else StaticAliasStore(config)
        )
        self.dispatcher = dispatcher if dispatcher is not None else Dispatcher()
        self.catalogue = Catalogue(config.model_catalogue, config.arn_models)
        found = config.model_discovery
        self.discovery = ModelDiscovery(enabled=found.enabled, ttl_s=found.ttl_s, wait_s=found.wait_s)
        self.usage_hook = usage_hook
        self.key_resolver = key_resolver
        self.limiter: Limiter = limiter if limiter is not None else create_limiter(config.limits)
        self.response_store: ResponseStore = (
            response_store if response_store is not None else default_response_store(config)
        )
        self.url_fetch_policy = url_fetch_policy
        self.budgets: BudgetLedger = budgets if budgets is not None else create_budgets(config.limits)
        self.prices = PriceTable(config.prices)
        obs = config.observability
        self.observers: list[Observer] = default_observers(obs.metrics, obs.tracing)
        metrics = next((o for o in self.observers if isinstance(o, PrometheusMetrics)), None)
        self.open_streams: Any = metrics.open_streams if metrics is not None else None

    # -- authenticate -------------------------------------------------------------------------
    async def authenticate(self, ctx: RequestContext) -> VirtualKeyConfig:
        """The caller's virtual key (or the host user's key, through the host hook)."""
        store = await resolve_store(self.credential_source, ctx.request)
        ctx.credentials = store
        key: VirtualKeyConfig | None = None
        if self.key_resolver is not None:
            key = await self.key_resolver(ctx.request)
        if key is None:
            key = await authenticate(ctx.request.headers, store)
        elif key.disabled:
            raise GatewayError(ErrorKind.AUTHENTICATION, "this account's gateway key is disabled")
        ctx.key = key
        return key

    async def admit(self, ctx: RequestContext) -> None:
        """Take the key's limit lease (once); the request's scope releases it however it ends."""
        assert ctx.key is not None
        if ctx.lease is None:
            ctx.lease = await self.limiter.acquire(ctx.key)

    async def read_body(self, ctx: RequestContext) -> dict[str, Any]:
        """The JSON body, bounded in size and time; logged only when ``log_bodies`` is on."""
        limits = self.config.limits
        body: dict[str, Any] = await read_json(
            ctx.request,
            limits.max_body_bytes,
            idle_timeout_s=limits.body_idle_timeout_s,
            total_timeout_s=limits.body_timeout_s,
            max_depth=limits.max_json_depth,
        )
        ctx.end_user, ctx.session_id = attribution(body, ctx.request.headers)
        if self.config.observability.log_bodies and log.isEnabledFor(logging.INFO):
            log.info("request body", extra={"request_id": ctx.request_id, "body": body})
        return body

    # -- resolve alias and route ----------------------------------------------------------------
    async def route(self, ctx: RequestContext, model: Any, *, guarded: bool = True) -> RoutePlan:
        """Resolve the requested model for this key and plan the attempts (provider, region, model id).

        ``guarded`` routes (every one that runs a model) also settle each attempt's guardrail, and refuse
        a request that would reach Bedrock without the guardrail its key requires.
        """
        if not isinstance(model, str) or not model.strip():
            raise GatewayError(ErrorKind.INVALID_REQUEST, "model: a model name is required", param="model")
        key = ctx.key
        assert key is not None and ctx.credentials is not None
        aliases: AliasStore = await resolve_alias_store(self.alias_source, ctx.request)
        providers = await self.providers_of(ctx)
        ref = await resolve_model(model, key, aliases, self.catalogue, self.finder(key, providers))
        plan = admit(ref, key, providers)  # the same decision every model listing makes
        ctx.plan = plan
        if guarded:
            self._settle_guardrails(ctx, plan)
        # Admitted only now: a slow body or a refused model never holds one of the key's slots.
        await self.admit(ctx)
        return plan

    def finder(self, key: VirtualKeyConfig, providers: Sequence[ProviderConfig]) -> AccountFinder | None:
        """What resolution asks about names and ARNs the config lacks: the primary provider's account."""
        return AccountFinder(self.discovery, providers[0], key.default_region) if providers else None

    async def providers_of(self, ctx: RequestContext) -> list[ProviderConfig]:
        """The key's providers that exist, in the key's order (primary first)."""
        assert ctx.key is not None and ctx.credentials is not None
        providers: list[ProviderConfig] = []
        for provider_id in ctx.key.providers:
            provider = await ctx.credentials.get_provider(provider_id)
            if provider is not None:
                providers.append(provider)
        return providers

    def _settle_guardrails(self, ctx: RequestContext, plan: RoutePlan) -> None:
        key = ctx.key
        assert key is not None
        header = ctx.request.headers.get(REQUEST_HEADER)
        for attempt in plan.attempts:
            provider = attempt.provider
            if provider.id in ctx.guardrails:
                continue
            spec = resolve_guardrail(
                top=self.config.guardrail,
                provider=provider,
                key=key,
                alias=plan.model.alias_entry,
                request_header=header,
                key_id=key.id,
                allow_request=key.allow_request_guardrail,
            )
            if spec is not None and spec.identifier is None:
                raise guardrail_required_error(key.id, key.allow_request_guardrail)
            ctx.guardrails[provider.id] = spec

    async def reserve_budget(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        """Reserve the request's most expensive outcome against its key's and groups' budgets.

        Refused with 429 (``retry-after`` until the budget resets) when one is already spent. A
        model with no known price cannot be budgeted, so a key with a budget may not use one.
        """
        key, plan = ctx.key, ctx.plan
        assert key is not None and plan is not None
        scopes = scopes_for(self.config, key)
        if not scopes:
            return
        input_tokens = max(1, _body_size(ctx, body) // 3)  # at most ~one token per 3 bytes of JSON
        output_tokens = _max_output_tokens(body)
        costs = [
            self.prices.max_cost(plan.model.base_model_id, a.model_id, input_tokens, output_tokens)
            for a in plan.attempts
        ]
        if any(c is None for c in costs):
            raise GatewayError(
                ErrorKind.PERMISSION,
                f"virtual key {key.id!r} has a dollar budget and model {plan.model.base_model_id!r} has "
                "no known price, so its cost cannot be counted; add it to the config's prices",
                code="budget_unpriced_model",
            )
        ctx.budget_hold = await self.budgets.reserve(scopes, max(c or 0.0 for c in costs))

    async def budget_status(self, key: VirtualKeyConfig) -> list[BudgetStatus]:
        """What is left of every budget ``key`` counts against (its own, then its groups')."""
        return await self.budgets.status(scopes_for(self.config, key))

    async def guard_input(self, ctx: RequestContext, texts: list[str]) -> list[str]:
        """ApplyGuardrail on the input, for routes Bedrock offers no inline guardrail on (embeddings).

        The guardrail is the one the first attempt carries (falling over on the same failures as a
        model call). Blocked: a 400 with code ``content_filter``, nothing is sent on. Masked: the
        guardrail's masked texts replace the input. No guardrail: the texts as they are.
        """
        assert ctx.plan is not None
        failures: list[UpstreamError] = []
        for attempt in ctx.plan.attempts:
            spec = ctx.guardrail_for(attempt)
            if spec is None:
                return texts
            try:
                answer = await self.dispatcher.apply_guardrail(attempt, spec, texts)
            except UpstreamError as err:
                failures.append(err)
                if not is_retryable(err.status, err.code):
                    break
                continue
            ctx.guardrail, outputs = input_verdict(answer, texts)
            if outputs is None:
                raise blocked_input_error(spec, answer)
            return outputs
        raise explain_all(failures)

    # -- dispatch, with fallback ----------------------------------------------------------------
    async def run(self, ctx: RequestContext, call: Callable[[Attempt], Awaitable[T]]) -> T:
        """Try the plan's attempts in order; fall over on capacity, access and transport failures."""
        assert ctx.plan is not None
        failures: list[UpstreamError] = []
        for attempt in ctx.plan.attempts:
            ctx.attempts += 1
            try:
                result = await call(attempt)
            except UpstreamError as err:
                failures.append(err)
                if log.isEnabledFor(logging.INFO):
                    log.info(
                        "attempt failed",
                        extra={
                            "request_id": ctx.request_id,
                            "provider": attempt.provider.id,
                            "region": attempt.region,
                            "model_id": attempt.model_id,
                            "error": err.code,
                            "status": err.status,
                        },
                    )
                if err.request_id:
                    ctx.upstream_request_id = err.request_id
                if not is_retryable(err.status, err.code):
                    break
                continue
            ctx.served_by = attempt
            ctx.upstream_request_id = request_id_of(result) or ctx.upstream_request_id
            return result
        raise explain_all(failures)

    async def open_stream(
        self,
        ctx: RequestContext,
        opener: Callable[[Attempt], Awaitable[UpstreamStream[E]]],
        check_first: Callable[[Attempt, E], None] | None = None,
    ) -> tuple[UpstreamStream[E], E | None]:
        """Open a stream and wait for its first event, so a failure before it can still fall over.

        ``check_first`` may raise :class:`UpstreamError` for a first event that is a refusal (a raw
        stream's exception frame), so that it falls over as a refused call does.
        """

        async def first_event(attempt: Attempt) -> tuple[UpstreamStream[E], E | None]:
            stream = await opener(attempt)
            ctx.streams.append(stream)  # owned by the request's scope from here on
            try:
                first = await stream.first(attempt.provider.timeouts.first_byte_s)
                if check_first is not None and first is not None:
                    check_first(attempt, first)
            except BaseException:
                stream.close()  # a failed attempt's connection is freed before the next attempt
                raise
            if stream.request_id:
                ctx.upstream_request_id = stream.request_id
            return stream, first

        # A client that leaves while the first event is awaited frees everything at once.
        return await unless_disconnected(ctx.request.receive, lambda: self.run(ctx, first_event))

    async def call(self, ctx: RequestContext, call: Callable[[Attempt], Awaitable[T]]) -> T:
        """A non-streamed call through the plan, abandoned at once if the caller disconnects."""
        return await unless_disconnected(ctx.request.receive, lambda: self.run(ctx, call))

    async def stream(
        self,
        ctx: RequestContext,
        opener: Callable[[Attempt], Awaitable[UpstreamStream[E]]],
        transcoder: StreamTranscoder[E],
        media_type: str = SSE_MEDIA_TYPE,
        *,
        sent: Any = None,
    ) -> Response:
        """Open a stream through the plan (falling over before its first event) and relay it as SSE.

        ``sent`` is the request as sent upstream: if the stream ends before Bedrock reports usage,
        input tokens are estimated from its text (output from the deltas relayed).
        """
        upstream, first = await self.open_stream(ctx, opener)
        return self.sse(ctx, upstream, first, transcoder, media_type, sent=sent)

    def sse(
        self,
        ctx: RequestContext,
        upstream: UpstreamStream[E],
        first: E | None,
        transcoder: StreamTranscoder[E],
        media_type: str = SSE_MEDIA_TYPE,
        *,
        sent: Any = None,
    ) -> Response:
        """The response relaying an open stream (see :meth:`stream` for ``sent``)."""
        ctx.stream = True  # a stream that never opened is answered (and recorded) as a plain error
        assert ctx.served_by is not None
        return SSEResponse(
            self.relay(ctx, upstream, first, transcoder, DeliveredUsage(sent)),
            ctx.response_headers(),
            media_type=media_type,
            stall_timeout_s=ctx.served_by.provider.timeouts.idle_s,
        )

    async def relay(
        self,
        ctx: RequestContext,
        stream: UpstreamStream[E],
        first: E | None,
        transcoder: StreamTranscoder[E],
        delivered: DeliveredUsage | None = None,
    ) -> AsyncIterator[bytes]:
        """Transcode an open stream event by event and state the outcome (the scope closes it)."""
        ctx.stream = True
        counter = delivered if delivered is not None else DeliveredUsage()
        ctx.usage_source = lambda: counter.usage(transcoder.usage)
        observe = counter.observe
        gauge = self.open_streams
        if gauge is not None:
            gauge.inc()
        try:
            if first is not None:
                ctx.first_token_at = time.perf_counter()
                observe(first)
                yield transcoder.feed(first)
            feed = transcoder.feed
            # What one read completed is transcoded and leaves together: nothing in it waits for more.
            async for batch in stream.batches():
                if len(batch) == 1:
                    observe(batch[0])
                    yield feed(batch[0])
                    continue
                out: list[bytes] = []
                try:
                    for event in batch:
                        observe(event)
                        out.append(feed(event))
                except Exception:
                    if out:
                        yield b"".join(out)  # what came before a failing event still leaves first
                    raise
                yield b"".join(out)
            counter.finished()
            outcome, last = Outcome(200), transcoder.finish()
        except UpstreamError as err:
            explained = explain(err)
            outcome = Outcome(explained.http_status, error_type=explained.kind.value)
            last = transcoder.fail(explained)
        except GatewayError as err:
            outcome, last = Outcome(err.http_status, error_type=err.kind.value), transcoder.fail(err)
        except Exception:
            # Our bug, mid-stream: logged, recorded as a 500, and told to the caller in its dialect.
            log.exception("relaying a stream failed", extra={"request_id": ctx.request_id})
            outcome = Outcome(500, error_type=ErrorKind.API_ERROR.value)
            last = transcoder.fail(
                GatewayError(ErrorKind.API_ERROR, "the gateway failed mid-stream; the error was logged")
            )
        finally:
            if gauge is not None:
                gauge.dec()  # however the relay ends: finished, failed, or closed by its owner
        ctx.guardrail = getattr(transcoder, "guardrail", None)
        await ctx.end(outcome)
        yield last

    # -- respond --------------------------------------------------------------------------------
    async def record(
        self,
        ctx: RequestContext,
        *,
        status: int,
        usage: TokenUsage | None = None,
        stream: bool = False,
        error_type: str | None = None,
    ) -> None:
        """State how the request ended; its scope settles it (lease, streams, one usage record)."""
        ctx.stream = ctx.stream or stream
        await ctx.end(Outcome(status, usage or TokenUsage(), error_type))

    def _cost(self, ctx: RequestContext, usage: TokenUsage) -> float | None:
        if not (
            usage.input_tokens
            or usage.output_tokens
            or usage.cache_read_input_tokens
            or usage.cache_write_input_tokens
        ):
            return 0.0  # nothing was used: refused, failed or free (CountTokens, listings)
        if ctx.plan is None or ctx.served_by is None:
            return None
        return self.prices.cost(ctx.plan.model.base_model_id, ctx.served_by.model_id, usage)

    async def aclose(self) -> None:
        """Close every upstream client, the limiter, the response store and the budgets ledger."""
        await self.discovery.aclose()
        await self.dispatcher.aclose()
        await self.limiter.aclose()
        await self.response_store.aclose()
        await self.budgets.aclose()


_DEFAULT_MAX_OUTPUT = 4096


def _max_output_tokens(body: dict[str, Any]) -> int:
    """The most output a request allows itself (Anthropic, Chat Completions and Responses spellings)."""
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return _DEFAULT_MAX_OUTPUT


def _body_size(ctx: RequestContext, body: dict[str, Any]) -> int:
    length = ctx.request.headers.get("content-length")
    if length is not None and length.isdigit():
        return int(length)
    return len(orjson.dumps(body))


@dataclass(slots=True)
class AccountFinder:
    """A :class:`~routing.model_ids.ModelFinder` asking the primary provider's account."""

    discovery: ModelDiscovery
    provider: ProviderConfig
    default_region: str | None

    async def model_for_name(self, name: str, region: str | None) -> str | None:
        """The base id the primary provider's account offers under ``name`` in the first attempt's region."""
        where = region or self.default_region or self.provider.region
        account = await self.discovery.account(self.provider, where)
        return account.model_for_name(name) if account is not None else None

    async def model_behind(self, arn: str, region: str) -> str | None:
        """The base model behind an application-profile ARN, per the primary provider's account."""
        return await self.discovery.model_behind(self.provider, region, arn)

    async def regions_behind(self, arn: str, region: str) -> frozenset[str] | None:
        """The regions an application-profile ARN sends requests to, per the primary provider's account."""
        return await self.discovery.regions_behind(self.provider, region, arn)


_ATTRIBUTION_MAX = 256
SESSION_HEADER = "x-claude-code-session-id"


def _bounded(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value[:_ATTRIBUTION_MAX]


def attribution(body: Any, headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``(end_user, session_id)`` as the caller states them (never raises; values bounded)."""
    end_user: str | None = None
    session: str | None = None
    if isinstance(body, dict):
        metadata = body.get("metadata")
        if isinstance(metadata, dict):
            end_user = _bounded(metadata.get("user_id"))
        if end_user is None:
            end_user = _bounded(body.get("user"))  # OpenAI's end-user field
    header = headers.get(SESSION_HEADER)
    if header and header.isascii() and header.isprintable():
        session = header[:_ATTRIBUTION_MAX]
    elif end_user is not None and end_user.startswith("{"):
        # Claude Code's user_id is a JSON object naming its session; read it only when the header is absent.
        try:
            parsed = orjson.loads(end_user)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            session = _bounded(parsed.get("session_id"))
    return end_user, session


def new_request_id(headers: Mapping[str, str]) -> str:
    """The caller's ``x-request-id`` when it is sane, else a new one."""
    given = headers.get("x-request-id")
    if given and len(given) <= 128 and given.isascii() and given.isprintable():
        return given
    return "req_" + secrets.token_hex(12)

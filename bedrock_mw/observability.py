"""Metrics and traces, each switched on only when its library is installed.

Both are fed from the finished :class:`UsageRecord`, after the response, so they cost nothing on
the request path. Prometheus metrics need ``prometheus_client`` (extra ``metrics``); traces need
``opentelemetry-api`` and follow the OpenTelemetry GenAI semantic conventions. Neither records
prompt bodies or secrets.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from .usage import UsageRecord

# prometheus_client reads this at import time; ``serve --workers N`` sets it before workers start.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_OPERATIONS = {
    "messages": "chat",
    "chat_completions": "chat",
    "embeddings": "embeddings",
    "count_tokens": "count_tokens",
    "bedrock.Converse": "chat",
    "bedrock.ConverseStream": "chat",
    "bedrock.InvokeModel": "chat",
    "bedrock.InvokeModelWithResponseStream": "chat",
    "bedrock.CountTokens": "count_tokens",
}


class Observer(Protocol):
    """Receives every finished request."""

    def observe(self, record: UsageRecord) -> None: ...


class _Families:
    """The gateway's metric families, registered in one registry."""

    def __init__(self, registry: Any) -> None:
        import prometheus_client as prom

        self.registry = registry
        labels = ("endpoint", "status", "provider", "region", "model", "key")
        self.requests = prom.Counter(
            "bedrock_mw_requests", "Requests served, by outcome", labels, registry=registry
        )
        self.tokens = prom.Counter(
            "bedrock_mw_tokens",
            "Tokens by type",
            ("type", "provider", "region", "model", "key"),
            registry=registry,
        )
        self.latency = prom.Histogram(
            "bedrock_mw_request_seconds",
            "End-to-end latency",
            ("endpoint", "provider"),
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.ttft = prom.Histogram(
            "bedrock_mw_time_to_first_token_seconds",
            "Time to first streamed event",
            ("endpoint", "provider"),
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        )
        self.attempts = prom.Counter(
            "bedrock_mw_upstream_attempts",
            "Bedrock attempts made (fallbacks included)",
            ("endpoint",),
            registry=registry,
        )
        self.fallbacks = prom.Counter(
            "bedrock_mw_fallbacks",
            "Requests answered by a fallback attempt, by the provider that answered",
            ("endpoint", "provider"),
            registry=registry,
        )
        self.cost = prom.Counter(
            "bedrock_mw_cost_usd",
            "What requests cost in USD at the price table's rates (requests of unknown price not counted)",
            ("key", "model"),
            registry=registry,
        )
        # livesum: under several workers, the sum over the workers that are alive.
        self.open_streams = prom.Gauge(
            "bedrock_mw_open_streams",
            "Streams being relayed to callers right now",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.refusals = prom.Counter(
            "bedrock_mw_refusals",
            "Requests refused with 429 by the gateway's own limits or budgets, by reason",
            ("endpoint", "key", "reason"),
            registry=registry,
        )


# Multiprocess mode: the one set of families of this process (see PrometheusMetrics), made once.
_PROCESS_FAMILIES: _Families | None = None


def _process_families() -> _Families:
    global _PROCESS_FAMILIES
    if _PROCESS_FAMILIES is None:
        import prometheus_client as prom

        _PROCESS_FAMILIES = _Families(prom.CollectorRegistry())
        # This process's live-only values (the open-streams gauge) leave the shared sums when the
        # process leaves, not when a gateway closes: another gateway of the process may still be
        # relaying streams, or be built later, and both write through the same per-process file.
        atexit.register(_mark_process_dead)
    return _PROCESS_FAMILIES


def _mark_process_dead() -> None:
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):  # the directory went first (a temporary one, cleaned up)
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class PrometheusMetrics:
    """Request, token, latency and time-to-first-token metrics in a Prometheus registry.

    Under ``bedrock-mw serve --workers N`` each worker is its own process; with
    ``PROMETHEUS_MULTIPROC_DIR`` set (``serve`` sets it), prometheus_client writes every value to a
    per-process file in that directory and :meth:`render` sums all workers' files, so whichever
    worker answers a scrape reports the whole server.

    In that mode a value lives in the process's file, keyed by the metric and its labels, not by the
    object that holds it: every gateway of one process (a host mounting two, a sub-app rebuilt after
    its lifespan ended) therefore shares one set of families, so their counts add up instead of each
    overwriting the other's, and the process's live-only values are dropped when it exits.
    """

    def __init__(self, registry: Any = None) -> None:
        import prometheus_client as prom

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if self.multiprocess:
            families = _process_families()
        else:
            families = _Families(registry if registry is not None else prom.CollectorRegistry())
        self.registry = families.registry
        self._children: dict[tuple[Any, ...], Any] = {}
        self.requests = families.requests
        self.tokens = families.tokens
        self.latency = families.latency
        self.ttft = families.ttft
        self.attempts = families.attempts
        self.fallbacks = families.fallbacks
        self.cost = families.cost
        self.open_streams = families.open_streams
        self.refusals = families.refusals

    def _child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once per label set.

        The children are the ones prometheus_client keeps anyway (this holds no more of them);
        its ``labels()`` checks and converts the values and takes a lock on every call.
        """
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def observe(self, record: UsageRecord) -> None:
        provider, region, model = record.provider_id or "", record.region or "", record.model_id or ""
        key = record.key_id or ""
        child = self._child
        child(self.requests, record.endpoint, str(record.status), provider, region, model, key).inc()
        usage = record.usage
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_input_tokens),
            ("cache_write", usage.cache_write_input_tokens),
        ):
            if count:
                child(self.tokens, kind, provider, region, model, key).inc(count)
        if record.cost_usd:
            child(self.cost, key, model).inc(record.cost_usd)
        child(self.latency, record.endpoint, provider).observe(record.latency_s)
        if record.time_to_first_token_s is not None:
            child(self.ttft, record.endpoint, provider).observe(record.time_to_first_token_s)
        if record.attempts:
            child(self.attempts, record.endpoint).inc(record.attempts)
            if record.attempts > 1 and provider:
                child(self.fallbacks, record.endpoint, provider).inc()
        if record.status == 429 and not record.attempts:
            # Bedrock was never called: the gateway refused it itself (a limit or budget).
            child(self.refusals, record.endpoint, key, record.error_type or "rate_limit").inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type (every worker's values under multiprocess mode)."""
        import prometheus_client as prom

        if not self.multiprocess:
            return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        registry = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return prom.generate_latest(registry), prom.CONTENT_TYPE_LATEST


class GenAITracer:
    """One OpenTelemetry span per request, with ``gen_ai.*`` attributes, created after the fact."""

    def __init__(self, tracer: Any = None) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer if tracer is not None else trace.get_tracer("bedrock_mw")
        # With no TracerProvider configured, the API's tracer is a no-op that still costs attribute
        # building and a span object per request: skip it until a real provider is set.
        self._live = tracer is not None

    def _tracing(self) -> bool:
        if not self._live:
            provider = self._trace.get_tracer_provider()
            # A provider once set stays set, so the verdict is cached only when it is yes.
            self._live = not isinstance(
                provider, self._trace.ProxyTracerProvider | self._trace.NoOpTracerProvider
            )
        return self._live

    def observe(self, record: UsageRecord) -> None:
        if not self._tracing():
            return
        operation = _OPERATIONS.get(record.endpoint, record.endpoint)
        end_ns = time.time_ns()
        start_ns = end_ns - int(record.latency_s * 1e9)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "aws.bedrock",
            "gen_ai.system": "aws.bedrock",
            "gen_ai.request.model": record.model or "",
            "gen_ai.response.model": record.model_id or "",
            "gen_ai.usage.input_tokens": record.usage.input_tokens,
            "gen_ai.usage.output_tokens": record.usage.output_tokens,
            "http.response.status_code": record.status,
            "aws.region": record.region or "",
            "bedrock_mw.provider": record.provider_id or "",
            "bedrock_mw.attempts": record.attempts,
            "bedrock_mw.request_id": record.request_id,
        }
        if record.usage.cache_read_input_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = record.usage.cache_read_input_tokens
        if record.usage.cache_write_input_tokens:
            attributes["gen_ai.usage.cache_creation.input_tokens"] = record.usage.cache_write_input_tokens
        if record.error_type:
            attributes["error.type"] = record.error_type
        if record.session_id:
            attributes["session.id"] = record.session_id
        if record.end_user:
            attributes["enduser.id"] = record.end_user
        span = self._tracer.start_span(
            f"{operation} {record.model or ''}".strip(),
            kind=self._trace.SpanKind.CLIENT,
            start_time=start_ns,
            attributes=attributes,
        )
        if record.status >= 400:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, record.error_type or ""))
        span.end(end_time=end_ns)


def default_observers(metrics: bool, tracing: bool) -> list[Observer]:
    """The observers whose libraries are installed and which the config switches on."""
    observers: list[Observer] = []
    if metrics:
        try:
            observers.append(PrometheusMetrics())
        except ImportError:
            logging.getLogger("bedrock_mw").warning(
                "observability.metrics is on but prometheus_client is not installed: "
                "pip install 'bedrock-mw[metrics]'"
            )
    if tracing:
        with contextlib.suppress(ImportError):  # tracing is on by default: only when installed
            observers.append(GenAITracer())
    return observers


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log line, with the structured fields the gateway attaches (never secrets)."""

    _SKIP = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in self._SKIP})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()

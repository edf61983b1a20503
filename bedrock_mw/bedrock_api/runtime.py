"""Bedrock Runtime's own operations, passed through: the caller's body bytes out, Bedrock's bytes back.

Each call reads as the other routes do (authenticate → route → dispatch → relay), minus translation:
the request body is read as bytes and parsed only when a rule needs to change it (betas Bedrock
would refuse), and the answer, or the event stream frame by frame, goes back as Bedrock sent it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
from starlette.responses import Response

from ..dispatch import Destination, RawResponse, UpstreamError
from ..errors import ErrorKind, GatewayError, bedrock_status
from ..gateway import Gateway, RequestContext
from ..guardrails import (
    ACTION_FIELD,
    GuardrailOutcome,
    converse_guardrail_config,
    invoke_guardrail_headers,
    native_outcome,
    outcome_of_converse,
    with_stream_mode,
)
from ..http import SSEResponse, read_bytes
from ..http.body import check_depth
from ..limits.budgets import scopes_for
from ..routing.plan import Attempt
from ..stream.passthrough import EventStreamRelay, StreamOperation, stream_refusal
from ..translate.types import TokenUsage
from .auth import authenticate_bedrock_caller
from .body import lower_betas

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import TokenUsageTypeDef

EVENTSTREAM = "application/vnd.amazon.eventstream"


@dataclass(frozen=True, slots=True)
class Operation:
    """One Bedrock Runtime operation: its name (as IAM and botocore spell it) and URL suffix."""

    name: str
    path: str
    stream: bool = False


OPERATIONS: dict[str, Operation] = {
    op.path: op
    for op in (
        Operation("Converse", "converse"),
        Operation("ConverseStream", "converse-stream", stream=True),
        Operation("InvokeModel", "invoke"),
        Operation("InvokeModelWithResponseStream", "invoke-with-response-stream", stream=True),
        Operation("CountTokens", "count-tokens"),
    )
}

# Request headers botocore's model puts on these operations; they are forwarded (and signed) as sent.
_FORWARDED: dict[bytes, str] = {
    name.lower().encode("latin-1"): name
    for name in (
        "Content-Type",
        "Accept",
        "X-Amzn-Bedrock-Accept",
        "X-Amzn-Bedrock-Trace",
        "X-Amzn-Bedrock-GuardrailIdentifier",
        "X-Amzn-Bedrock-GuardrailVersion",
        "X-Amzn-Bedrock-PerformanceConfig-Latency",
        "X-Amzn-Bedrock-Service-Tier",
        "X-Amzn-Bedrock-Request-Metadata",
    )
}


def _forwarded_headers(ctx: RequestContext) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    # One pass over the raw ASGI headers (names arrive lower-cased) instead of a lookup per name.
    for raw_name, raw_value in ctx.request.scope["headers"]:
        name = _FORWARDED.get(raw_name)
        if name is not None:
            headers[name] = raw_value.decode("latin-1")
    return headers


def _relayed_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """Bedrock's answer headers the caller's SDK reads (content type, token counts, latency, tier)."""
    return {
        name: value
        for name, value in upstream.items()
        if name.startswith("x-amzn-bedrock-") or name == "content-type"
    }


async def runtime_call(gw: Gateway, ctx: RequestContext, model_id: str, op: Operation) -> Response:
    """Serve one Bedrock Runtime operation for ``model_id`` (as the SDK sent it, URL-decoded)."""
    await authenticate_bedrock_caller(gw, ctx)
    limits = gw.config.limits
    body = await read_bytes(
        ctx.request,
        limits.max_body_bytes,
        idle_timeout_s=limits.body_idle_timeout_s,
        total_timeout_s=limits.body_timeout_s,
    )
    plan = await gw.route(ctx, model_id)
    if op.name in ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"):
        body = lower_betas(
            body, gw.config.supported_betas, ctx.notes, max_depth=gw.config.limits.max_json_depth
        )
    headers = _forwarded_headers(ctx)
    if op.name != "CountTokens":
        await _reserve_budget(gw, ctx, op, body)
    guarded = _guarded(ctx, op, body, headers, gw.config.limits.max_json_depth)
    if op.stream:
        return await _stream(gw, ctx, op, guarded)
    if op.name == "CountTokens":
        # CountTokens takes base model ids only: a profile, an ARN or an alias counts on its base model.
        base = plan.model.base_model_id

        def target(a: Attempt) -> Destination | Attempt:
            return Destination(a.provider, a.region, base)
    else:

        def target(a: Attempt) -> Destination | Attempt:
            return a

    answer = await gw.call(ctx, lambda a: gw.dispatcher.send_raw(target(a), op.name, *guarded(a)))
    usage, ctx.guardrail = _answer_facts(op, answer)
    await gw.record(ctx, status=200, usage=usage)
    relayed = {**_relayed_headers(answer.headers), **ctx.response_headers()}
    return Response(answer.body, 200, relayed)


async def _stream(gw: Gateway, ctx: RequestContext, op: Operation, guarded: Guarded) -> Response:
    name: StreamOperation = (
        "ConverseStream" if op.name == "ConverseStream" else "InvokeModelWithResponseStream"
    )
    upstream, first = await gw.open_stream(
        ctx, lambda a: gw.dispatcher.open_raw(a, op.name, *guarded(a)), _refusal_check(op.name)
    )
    relayed = {**_relayed_headers(upstream.headers), **ctx.response_headers()}
    relayed.pop("content-type", None)
    relay = gw.relay(ctx, upstream, first, EventStreamRelay(name))
    return SSEResponse(relay, relayed, media_type=EVENTSTREAM)


Guarded = Callable[[Attempt], tuple[bytes, dict[str, str]]]


def _guarded(
    ctx: RequestContext, op: Operation, body: bytes, headers: dict[str, str], max_depth: int
) -> Guarded:
    """Each attempt's body and headers, carrying the guardrail its key, alias or provider settles on.

    InvokeModel takes the guardrail in headers, so the body still goes byte for byte - unless the
    guardrail sets a ``stream_mode``, which InvokeModelWithResponseStream takes in the body
    (``amazon-bedrock-guardrailConfig``); Converse takes the guardrail in the body (``guardrailConfig``).
    Those are the only changes the pass-through makes to a body. A guardrail the caller named itself
    is kept unless the gateway's configuration names one.
    """
    if op.name == "CountTokens":
        return lambda a: (body, headers)
    rewritten: dict[tuple[str, str, str], bytes] = {}

    def for_attempt(a: Attempt) -> tuple[bytes, dict[str, str]]:
        spec = ctx.guardrail_for(a)
        if spec is None or spec.identifier is None:
            return body, headers
        cache_key = (spec.identifier, spec.version or "", spec.stream_mode or "")
        if op.name.startswith("InvokeModel"):
            guarded = {**headers, **invoke_guardrail_headers(spec)}
            if not op.stream or spec.stream_mode is None:
                return body, guarded
            if cache_key not in rewritten:
                rewritten[cache_key] = _rewritten(body, lambda b: with_stream_mode(b, spec), max_depth)
            return rewritten[cache_key], guarded
        if cache_key not in rewritten:
            rewritten[cache_key] = _rewritten(
                body,
                lambda b: {**b, "guardrailConfig": converse_guardrail_config(spec, stream=op.stream)},
                max_depth,
            )
        return rewritten[cache_key], headers

    return for_attempt


def _rewritten(body: bytes, edit: Callable[[dict[str, Any]], dict[str, Any]], max_depth: int) -> bytes:
    """The body with ``edit`` applied to its JSON object (a body that is not one goes as it came)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body  # Bedrock answers a body that is not JSON with its own ValidationException
    if not isinstance(parsed, dict):
        return body
    check_depth(body, parsed, max_depth)  # written again below: orjson writes fewer levels than it reads
    return orjson.dumps(edit(parsed))


async def _reserve_budget(gw: Gateway, ctx: RequestContext, op: Operation, body: bytes) -> None:
    """Reserve against the key's dollar budgets like the other routes (the body parsed only then)."""
    assert ctx.key is not None
    if not scopes_for(gw.config, ctx.key):
        return
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    if op.name.startswith("Converse"):
        config = parsed.get("inferenceConfig")
        max_tokens = config.get("maxTokens") if isinstance(config, dict) else None
        parsed = {"max_tokens": max_tokens}
    await gw.reserve_budget(ctx, parsed)


def _refusal_check(operation: str) -> Callable[[Attempt, bytes], None]:
    """Raise a stream's first frame as a refusal when it is an exception (so the plan falls over)."""

    def check(attempt: Attempt, frame: bytes) -> None:
        refusal = stream_refusal(frame)
        if refusal is not None:
            code, message = refusal
            raise UpstreamError(
                code,
                message,
                bedrock_status(code),
                operation,
                attempt.provider.id,
                attempt.region,
                attempt.model_id,
            )

    return check


def _answer_facts(op: Operation, answer: RawResponse) -> tuple[TokenUsage, GuardrailOutcome | None]:
    """Token counts and the guardrail's verdict of a non-streamed answer, which is relayed as it came.

    InvokeModel counts in headers and says ``amazon-bedrock-guardrailAction`` in the body (parsed only
    when it holds that member); Converse has ``usage``, ``stopReason`` and ``trace`` in its body.
    """
    if op.name == "InvokeModel":
        usage = TokenUsage(
            _header_int(answer.headers, "x-amzn-bedrock-input-token-count"),
            _header_int(answer.headers, "x-amzn-bedrock-output-token-count"),
            _header_int(answer.headers, "x-amzn-bedrock-cache-read-input-token-count"),
            _header_int(answer.headers, "x-amzn-bedrock-cache-write-input-token-count"),
        )
        if ACTION_FIELD.encode() not in answer.body:
            return usage, None
        parsed = _json_object(answer.body)
        return usage, native_outcome(parsed) if parsed is not None else None
    if op.name == "Converse":
        parsed = _json_object(answer.body)
        if parsed is None:
            return TokenUsage(), None
        return converse_usage(parsed), outcome_of_converse(parsed.get("stopReason"), parsed.get("trace"))
    return TokenUsage(), None


def converse_usage(answer: Mapping[str, Any]) -> TokenUsage:
    """The ``usage`` member of a Converse answer."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return TokenUsage()
    return TokenUsage.from_converse(cast("TokenUsageTypeDef", usage))


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _header_int(headers: Mapping[str, str], name: str) -> int:
    value = headers.get(name, "")
    return int(value) if value.isdigit() else 0


def unknown_operation(path: str) -> GatewayError:
    """Bedrock's answer to a path it does not serve."""
    return GatewayError(
        ErrorKind.NOT_FOUND,
        f"no Bedrock operation at {path}; this gateway serves POST /model/{{modelId}}/"
        + "|".join(OPERATIONS)
        + " and GET /inference-profiles",
        code="UnknownOperationException",
    )

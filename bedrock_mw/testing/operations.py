"""The five Bedrock Runtime operations: a parsed call in, a reply (JSON or frames) out. No I/O."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .auth import Caller
from .converse_rules import (
    CONVERSE_FIELDS,
    COUNT_TOKENS_CONVERSE_FIELDS,
    check_fields,
    validate_converse,
    validate_converse_body,
)
from .converse_stream import converse_stream_events
from .embeddings import cohere_embedding, titan_embedding
from .errors import validation_error
from .eventstream import encode_event
from .faults import Fault
from .guardrails import (
    ActiveGuardrail,
    guard_converse,
    guard_prompt,
    native_guardrail_members,
    with_native_guardrail,
    with_stream_trace,
)
from .models import ResolvedModel
from .native_anthropic import anthropic_message, anthropic_stream, anthropic_to_converse
from .native_mistral import (
    is_chat,
    mistral_chat_response,
    mistral_chat_stream,
    mistral_chat_to_converse,
    mistral_text_response,
    mistral_text_stream,
    mistral_text_to_converse,
)
from .native_nova import nova_response, nova_stream, nova_to_converse
from .native_text import (
    PromptAnswer,
    answer_llama,
    answer_titan,
    llama_response,
    llama_stream,
    prompt_of,
    titan_response,
    titan_stream,
)
from .prompt_cache import PromptCache
from .responder import Answer, answer_converse
from .tokens import plan_input

Json = dict[str, Any]
Headers = list[tuple[bytes, bytes]]
JSON_TYPE = b"application/json"
_NO_NATIVE = "The emulator does not implement the native InvokeModel body of this model family; use Converse."


@dataclass(frozen=True)
class Call:
    """One authenticated call to a model."""

    operation: str
    caller: Caller
    model: ResolvedModel
    body: Any
    request_id: str
    started: float
    guardrail: ActiveGuardrail | None = None


@dataclass(frozen=True)
class JsonReply:
    body: bytes
    headers: Headers


@dataclass(frozen=True)
class StreamReply:
    frames: Iterator[bytes]
    headers: Headers
    fault: Fault | None = None


Reply = JsonReply | StreamReply


def _latency_ms(call: Call) -> int:
    return max(1, int((time.monotonic() - call.started) * 1000))


def _object(body: Any, what: str = "request body") -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise validation_error(f"Malformed input request: {what} must be a JSON object.")
    return body


def _guarded_answer(
    call: Call, request: Mapping[str, Any], cache: PromptCache, streaming: bool
) -> tuple[Answer, Json | None]:
    """The answer, through the call's guardrail when it has one, and the guardrail trace."""
    validate_converse(request, call.model, streaming)
    plan = plan_input(request)
    scope = (call.caller.account_id, call.caller.region, call.model.base_id)

    def answer_of() -> Answer:
        return answer_converse(request, plan, cache.apply(scope, plan))

    if call.guardrail is None:
        return answer_of(), None
    return guard_converse(call.guardrail, request, answer_of, streaming=streaming)


def converse(call: Call, cache: PromptCache) -> Reply:
    request = _object(call.body)
    check_fields(request, CONVERSE_FIELDS)
    validate_converse_body(request, call.model)
    answer, trace = _guarded_answer(call, request, cache, streaming=False)
    response: Json = {
        "output": {"message": {"role": "assistant", "content": answer.content}},
        "stopReason": answer.stop_reason,
        "usage": answer.usage,
        "metrics": {"latencyMs": _latency_ms(call)},
    }
    if answer.additional_fields is not None:
        response["additionalModelResponseFields"] = answer.additional_fields
    if trace is not None:
        response["trace"] = trace
    return JsonReply(orjson.dumps(response), [(b"content-type", JSON_TYPE)])


def converse_stream(call: Call, cache: PromptCache) -> Reply:
    request = _object(call.body)
    check_fields(request, CONVERSE_FIELDS)
    validate_converse_body(request, call.model)
    answer, trace = _guarded_answer(call, request, cache, streaming=True)
    events = with_stream_trace(converse_stream_events(answer, _latency_ms(call)), trace)
    return StreamReply((encode_event(name, payload) for name, payload in events), [])


def _metrics(call: Call, input_tokens: int, output_tokens: int) -> Json:
    latency = _latency_ms(call)
    return {
        "inputTokenCount": input_tokens,
        "outputTokenCount": output_tokens,
        "invocationLatency": latency,
        "firstByteLatency": latency,
    }


def _token_headers(input_tokens: int, output_tokens: int, latency: int) -> Headers:
    return [
        (b"x-amzn-bedrock-input-token-count", str(input_tokens).encode()),
        (b"x-amzn-bedrock-output-token-count", str(output_tokens).encode()),
        (b"x-amzn-bedrock-invocation-latency", str(latency).encode()),
    ]


@dataclass(frozen=True)
class _Native:
    """A native call's non-stream body, its stream chunks, and its token counts."""

    body: Json | None
    chunks: Callable[[Json], Iterator[Json]] | None
    input_tokens: int
    output_tokens: int


def _prompt_native(
    call: Call,
    answer: PromptAnswer,
    render: Callable[[PromptAnswer], Json],
    stream: Callable[[PromptAnswer, Json], Iterator[Json]],
    streaming: bool,
) -> _Native:
    """A Titan or Llama answer, through the call's guardrail when it has one (as on Anthropic bodies)."""
    if call.guardrail is None:
        return _Native(render(answer), lambda m: stream(answer, m), answer.input_tokens, answer.output_tokens)
    reply = answer.reply
    guarded = guard_prompt(
        call.guardrail, prompt_of(call.body), reply.text, reply.stop_reason, streaming=streaming
    )
    stop = reply.stop_reason if guarded.model_ran else "end_turn"
    answer = PromptAnswer(
        replace(reply, text=guarded.text, stop_reason=stop),
        answer.input_tokens if guarded.model_ran else 0,
        guarded.model_ran,
    )
    members = native_guardrail_members(guarded.intervened, guarded.trace)
    return _Native(
        {**render(answer), **members},
        lambda m: with_native_guardrail(stream(answer, m), members),
        answer.input_tokens,
        answer.output_tokens,
    )


def _answered(
    answer: Answer, render: Callable[[Answer], Json], stream: Callable[[Answer, Json], Iterator[Json]]
) -> _Native:
    usage = answer.usage
    return _Native(render(answer), lambda m: stream(answer, m), usage["inputTokens"], usage["outputTokens"])


def _conversed(
    call: Call,
    request: Mapping[str, Any],
    cache: PromptCache,
    streaming: bool,
    render: Callable[[Answer], Json],
    stream: Callable[[Answer, Json], Iterator[Json]],
) -> _Native:
    """A native body answered through its Converse form, and through the call's guardrail if any."""
    answer, trace = _guarded_answer(call, request, cache, streaming)
    if call.guardrail is None:
        return _answered(answer, render, stream)
    return _guarded_native(answer, trace, render, stream)


def _native(call: Call, cache: PromptCache, streaming: bool) -> _Native:
    family = call.model.rule.family
    body = call.body
    if family == "anthropic":
        request = anthropic_to_converse(body, call.model.rule.sampling_exclusive)
        base = call.model.base_id
        return _conversed(
            call,
            request,
            cache,
            streaming,
            lambda a: anthropic_message(a, base),
            lambda a, m: anthropic_stream(a, base, m),
        )
    if family == "nova":
        request = nova_to_converse(body)
        validate_converse_body(request, call.model)
        return _conversed(call, request, cache, streaming, nova_response, nova_stream)
    if family == "mistral" and is_chat(body):
        request = mistral_chat_to_converse(body)
        return _conversed(call, request, cache, streaming, mistral_chat_response, mistral_chat_stream)
    if family == "mistral":
        request = mistral_text_to_converse(body)
        return _conversed(call, request, cache, streaming, mistral_text_response, mistral_text_stream)
    if family == "titan-text":
        return _prompt_native(call, answer_titan(body), titan_response, titan_stream, streaming)
    if family == "llama":
        return _prompt_native(call, answer_llama(body), llama_response, llama_stream, streaming)
    if family in ("titan-embed-v1", "titan-embed-v2") and not streaming:
        response, tokens = titan_embedding(body, v2=family == "titan-embed-v2")
        return _Native(response, None, tokens, 0)
    if family == "cohere-embed" and not streaming:
        response, tokens = cohere_embedding(body, call.request_id)
        return _Native(response, None, tokens, 0)
    if call.model.rule.embedding:
        raise validation_error("The model is unsupported for streaming.")
    raise validation_error(_NO_NATIVE)


def _guarded_native(
    answer: Answer,
    trace: Json | None,
    render: Callable[[Answer], Json],
    stream: Callable[[Answer, Json], Iterator[Json]],
) -> _Native:
    """A native answer that went through a guardrail: the model's own stop reason stays, and
    ``amazon-bedrock-guardrailAction`` (with the trace when tracing) says what the guardrail did:
    in the body, or on the stream's last chunk."""
    intervened = answer.stop_reason == "guardrail_intervened"
    if intervened:
        answer = replace(answer, stop_reason="end_turn")
    members = native_guardrail_members(intervened, trace)
    return _Native(
        {**render(answer), **members},
        lambda m: with_native_guardrail(stream(answer, m), members),
        answer.usage["inputTokens"],
        answer.usage["outputTokens"],
    )


def invoke(call: Call, cache: PromptCache) -> Reply:
    native = _native(call, cache, streaming=False)
    headers = [
        (b"content-type", JSON_TYPE),
        *_token_headers(native.input_tokens, native.output_tokens, _latency_ms(call)),
    ]
    return JsonReply(orjson.dumps(native.body), headers)


def invoke_stream(call: Call, cache: PromptCache) -> Reply:
    native = _native(call, cache, streaming=True)
    assert native.chunks is not None  # _native raises for families without a stream
    chunks = native.chunks(_metrics(call, native.input_tokens, native.output_tokens))
    frames = (encode_event("chunk", {"bytes": base64.b64encode(orjson.dumps(c)).decode()}) for c in chunks)
    return StreamReply(frames, [(b"x-amzn-bedrock-content-type", JSON_TYPE)])


# CountTokens takes base Anthropic model ids only: other families, inference-profile ids and ARNs all
# get this reply (maximhq/bifrost#2169 quotes it for `us.anthropic.claude-sonnet-4-6`).
NO_TOKEN_COUNTING = "The provided model doesn't support counting tokens."


def _native_input_tokens(call: Call, raw: str) -> int:
    try:
        body = orjson.loads(base64.b64decode(raw, validate=True))
    except (ValueError, orjson.JSONDecodeError):
        raise validation_error(
            "Malformed input request: invokeModel.body is not valid JSON, "
            "please reformat your input and try again."
        ) from None
    request = anthropic_to_converse(body, call.model.rule.sampling_exclusive)
    validate_converse(request, call.model, streaming=False)
    return plan_input(request).total


def count_tokens(call: Call, cache: PromptCache) -> Reply:
    """Exactly the inputTokens Converse/InvokeModel would report for the same input, uncached."""
    model = call.model
    if model.rule.family != "anthropic" or model.geo is not None or model.arn_kind is not None:
        raise validation_error(NO_TOKEN_COUNTING)
    body = _object(call.body)
    check_fields(body, frozenset({"input"}))
    source = _object(body["input"], "input")  # the shape check made `input` a one-member union
    if "converse" in source:
        request = _object(source["converse"], "input.converse")
        check_fields(request, COUNT_TOKENS_CONVERSE_FIELDS)
        validate_converse_body(request, model)
        validate_converse(request, model, streaming=False)
        tokens = plan_input(request).total
    else:
        tokens = _native_input_tokens(call, source["invokeModel"]["body"])
    return JsonReply(orjson.dumps({"inputTokens": tokens}), [(b"content-type", JSON_TYPE)])


HANDLERS: dict[str, Callable[[Call, PromptCache], Reply]] = {
    "converse": converse,
    "converse-stream": converse_stream,
    "invoke": invoke,
    "invoke-with-response-stream": invoke_stream,
    "count-tokens": count_tokens,
}

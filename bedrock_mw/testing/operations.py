"""The five Bedrock Runtime operations: a parsed call in, a reply (JSON or frames) out. No I/O."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .auth import Caller
from .converse_rules import CONVERSE_FIELDS, COUNT_TOKENS_CONVERSE_FIELDS, check_fields, validate_converse
from .converse_stream import converse_stream_events
from .embeddings import cohere_embedding, titan_embedding
from .errors import validation_error
from .eventstream import encode_event
from .faults import Fault
from .models import ResolvedModel
from .native_anthropic import anthropic_message, anthropic_stream, anthropic_to_converse
from .native_text import (
    PromptAnswer,
    answer_llama,
    answer_titan,
    llama_response,
    llama_stream,
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


def _answer(call: Call, request: Mapping[str, Any], cache: PromptCache, streaming: bool) -> Answer:
    validate_converse(request, call.model, streaming)
    plan = plan_input(request)
    scope = (call.caller.account_id, call.caller.region, call.model.base_id)
    return answer_converse(request, plan, cache.apply(scope, plan))


def converse(call: Call, cache: PromptCache) -> Reply:
    request = _object(call.body)
    check_fields(request, CONVERSE_FIELDS)
    answer = _answer(call, request, cache, streaming=False)
    response: Json = {
        "output": {"message": {"role": "assistant", "content": answer.content}},
        "stopReason": answer.stop_reason,
        "usage": answer.usage,
        "metrics": {"latencyMs": _latency_ms(call)},
    }
    if answer.additional_fields is not None:
        response["additionalModelResponseFields"] = answer.additional_fields
    return JsonReply(orjson.dumps(response), [(b"content-type", JSON_TYPE)])


def converse_stream(call: Call, cache: PromptCache) -> Reply:
    request = _object(call.body)
    check_fields(request, CONVERSE_FIELDS)
    answer = _answer(call, request, cache, streaming=True)
    events = converse_stream_events(answer, _latency_ms(call))
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


def _prompt_native(answer: PromptAnswer, render: Callable[[PromptAnswer], Json], stream: Any) -> _Native:
    return _Native(render(answer), lambda m: stream(answer, m), answer.input_tokens, answer.output_tokens)


def _native(call: Call, cache: PromptCache, streaming: bool) -> _Native:
    body = _object(call.body)
    family = call.model.rule.family
    if family == "anthropic":
        answer = _answer(call, anthropic_to_converse(body), cache, streaming)
        base = call.model.base_id
        return _Native(
            anthropic_message(answer, base),
            lambda m: anthropic_stream(answer, base, m),
            answer.usage["inputTokens"],
            answer.usage["outputTokens"],
        )
    if family == "titan-text":
        return _prompt_native(answer_titan(body), titan_response, titan_stream)
    if family == "llama":
        return _prompt_native(answer_llama(body), llama_response, llama_stream)
    if family in ("titan-embed-v1", "titan-embed-v2") and not streaming:
        response, tokens = titan_embedding(body, v2=family == "titan-embed-v2")
        return _Native(response, None, tokens, 0)
    if family == "cohere-embed" and not streaming:
        response, tokens = cohere_embedding(body, call.request_id)
        return _Native(response, None, tokens, 0)
    if call.model.rule.embedding:
        raise validation_error("The model is unsupported for streaming.")
    raise validation_error(_NO_NATIVE)


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


def _native_input_tokens(call: Call, raw: Any) -> int:
    try:
        body = orjson.loads(base64.b64decode(str(raw), validate=True))
    except (ValueError, orjson.JSONDecodeError):
        raise validation_error(
            "Malformed input request: invokeModel.body is not valid base64 JSON."
        ) from None
    body = _object(body, "invokeModel.body")
    family = call.model.rule.family
    if family == "anthropic":
        request = anthropic_to_converse(body)
        validate_converse(request, call.model, streaming=False)
        return plan_input(request).total
    if family == "titan-text":
        return answer_titan(body).input_tokens
    if family == "llama":
        return answer_llama(body).input_tokens
    raise validation_error(_NO_NATIVE)


def count_tokens(call: Call, cache: PromptCache) -> Reply:
    """Exactly the inputTokens Converse/InvokeModel would report for the same input, uncached."""
    body = _object(call.body)
    check_fields(body, frozenset({"input"}))
    source = _object(body.get("input"), "input")
    if len(source) != 1:
        raise validation_error("input must contain exactly one of converse or invokeModel.")
    if "converse" in source:
        request = _object(source["converse"], "input.converse")
        check_fields(request, COUNT_TOKENS_CONVERSE_FIELDS)
        validate_converse(request, call.model, streaming=False)
        tokens = plan_input(request).total
    elif "invokeModel" in source:
        tokens = _native_input_tokens(call, _object(source["invokeModel"], "input.invokeModel").get("body"))
    else:
        raise validation_error("input must contain exactly one of converse or invokeModel.")
    return JsonReply(orjson.dumps({"inputTokens": tokens}), [(b"content-type", JSON_TYPE)])


HANDLERS: dict[str, Callable[[Call, PromptCache], Reply]] = {
    "converse": converse,
    "converse-stream": converse_stream,
    "invoke": invoke,
    "invoke-with-response-stream": invoke_stream,
    "count-tokens": count_tokens,
}

"""The OpenAI chat parameters every translator shares: options, sampling, refusal of the unsupported.

A parameter Bedrock cannot honour is refused with a 400 naming it, unless the caller opted into
dropping unsupported parameters; dropped ones are listed in the ``x-bedrock-mw-dropped-params``
response header. See ``docs/openai.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import invalid
from ..types import JSONObject

DROPPED_PARAMS_HEADER = "x-bedrock-mw-dropped-params"

# Parameters Bedrock has no counterpart for, each with the values that ask for nothing (so a client
# sending the OpenAI default is not refused).
UNSUPPORTED_PARAMS: dict[str, tuple[object, ...]] = {
    "seed": (),
    "logit_bias": ({},),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "modalities": (["text"],),
    "audio": (),
    "prediction": (),
    "web_search_options": (),
    "functions": ([],),
    "function_call": (),
    "verbosity": (),
    "moderation": (),
    "parallel_tool_calls": (True,),
}
# Parameters read by the translators, plus advisory ones accepted and ignored (see docs/openai.md).
KNOWN_PARAMS = frozenset({
    "messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "n",
    "stream", "stream_options", "tools", "tool_choice", "response_format",
    "reasoning_effort", "metadata", "service_tier", "user", "store", "safety_identifier",
    "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options",
})  # fmt: skip

# reasoning_effort → Claude extended-thinking budget (Claude's minimum budget is 1024).
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    """Per-deployment choices for the OpenAI dialect."""

    allow_url_fetch: bool = False
    drop_unsupported_params: bool = False
    max_cache_points: int = 4


@dataclass(frozen=True, slots=True)
class ChatParams:
    """The sampling and framing parameters shared by the Converse and native translators."""

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    dropped: tuple[str, ...]


def require_object(body: Any) -> JSONObject:
    """The request body as a dict, or a 400."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def read_chat_params(body: JSONObject, options: OpenAIOptions) -> ChatParams:
    """Validate the parameters every chat translator shares; refuse or drop the unsupported ones."""
    dropped = []
    for name, value in body.items():
        if name in KNOWN_PARAMS:
            continue
        if name in UNSUPPORTED_PARAMS and (value is None or value in UNSUPPORTED_PARAMS[name]):
            continue
        dropped.append(name)
    if dropped and not options.drop_unsupported_params:
        names = ", ".join(dropped)
        raise invalid(f"unsupported parameter(s) on Bedrock: {names}", param=dropped[0])

    n = body.get("n")
    if n is not None and n != 1:
        raise invalid("n must be 1: Bedrock returns one choice", param="n")
    max_tokens = _positive_int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _positive_int(body, "max_tokens")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream must be a boolean", param="stream")
    stream_options = body.get("stream_options")
    include_usage = False
    if stream_options is not None:
        if not isinstance(stream_options, dict):
            raise invalid("stream_options must be an object", param="stream_options")
        include_usage = stream_options.get("include_usage") is True
    return ChatParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        stop=_stop(body.get("stop")),
        stream=bool(stream),
        include_usage=include_usage,
        dropped=tuple(dropped),
    )


def _positive_int(body: JSONObject, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"{name} must be a positive integer", param=name)
    return value


def _number(body: JSONObject, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise invalid(f"{name} must be a number between {low:g} and {high:g}", param=name)
    return value


def _stop(stop: object) -> tuple[str, ...]:
    if stop is None:
        return ()
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or len(sequences) > 4:
        raise invalid("stop must be a string or an array of at most 4 strings", param="stop")
    for i, sequence in enumerate(sequences):
        if not isinstance(sequence, str) or not sequence:
            raise invalid("stop sequences must be non-empty strings", param=f"stop[{i}]")
    return tuple(sequences)

"""InvokeModel with Anthropic's Messages body: translated to Converse shapes and back.

Going through the Converse shapes means native and Converse calls share one set of answers,
token counts and cache behaviour.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from .anthropic_rules import check_anthropic_body
from .converse_stream import iter_text_deltas
from .native_schema import malformed
from .responder import Answer

ANTHROPIC_VERSION = "bedrock-2023-05-31"
_STOP_REASONS = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
                 "stop_sequence": "stop_sequence"}  # fmt: skip
Json = dict[str, Any]


def _cache_point(block: Mapping[str, Any]) -> list[Json]:
    control = block.get("cache_control")
    if not isinstance(control, Mapping):
        return []
    point: Json = {"type": "default"}
    if "ttl" in control:
        point["ttl"] = control["ttl"]
    return [{"cachePoint": point}]


def _result_content(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}]
    return [
        {"text": str(p.get("text", ""))} if p.get("type") == "text" else {"json": p} for p in content or []
    ]


def _block(block: Mapping[str, Any]) -> Json:
    kind = block["type"]
    if kind == "text":
        return {"text": str(block.get("text", ""))}
    if kind == "tool_use":
        return {
            "toolUse": {"toolUseId": block.get("id"), "name": block.get("name"), "input": block.get("input")}
        }
    if kind == "tool_result":
        result = {"toolUseId": block.get("tool_use_id"), "content": _result_content(block.get("content"))}
        return {"toolResult": result}
    if kind == "thinking":
        text = {"text": block.get("thinking", ""), "signature": block.get("signature", "")}
        return {"reasoningContent": {"reasoningText": text}}
    return {str(kind): {k: v for k, v in block.items() if k not in ("type", "cache_control")}}


def _blocks(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}]
    out: list[Json] = []
    for block in content or []:
        out.append(_block(block))
        out.extend(_cache_point(block))
    return out


def _tools(body: Mapping[str, Any]) -> Json | None:
    tools: list[Json] = []
    for tool in body.get("tools") or []:
        spec = {"name": tool.get("name"), "inputSchema": {"json": tool.get("input_schema", {})}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        tools.append({"toolSpec": spec})
        tools.extend(_cache_point(tool))
    if not tools:
        return None
    config: Json = {"tools": tools}
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") in ("auto", "any", "tool"):
        config["toolChoice"] = (
            {"tool": {"name": choice.get("name")}} if choice["type"] == "tool" else {choice["type"]: {}}
        )
    return config


def anthropic_to_converse(raw: Any, sampling_exclusive: bool = False) -> Json:
    """A Converse-shaped request equivalent to an Anthropic Messages body, once Bedrock's rules pass."""
    body = check_anthropic_body(raw, sampling_exclusive)
    if body["anthropic_version"] != ANTHROPIC_VERSION:
        raise malformed(f"anthropic_version: must be {ANTHROPIC_VERSION}")
    request: Json = {
        "messages": [{"role": m["role"], "content": _blocks(m["content"])} for m in body["messages"]],
        "inferenceConfig": {
            "maxTokens": body["max_tokens"],
            "stopSequences": body.get("stop_sequences") or [],
        },
        "additionalModelResponseFieldPaths": ["/stop_sequence"],
    }
    if body.get("system"):
        request["system"] = _blocks(body["system"])
    tools = _tools(body)
    if tools:
        request["toolConfig"] = tools
    if body.get("thinking"):
        request["additionalModelRequestFields"] = {"thinking": body["thinking"]}
    return request


def model_name(base_id: str) -> str:
    """`anthropic.claude-3-5-haiku-20241022-v1:0` → `claude-3-5-haiku-20241022`."""
    return re.sub(r"-v\d+(?::\d+)?$", "", base_id.removeprefix("anthropic."))


def _content(block: Mapping[str, Any]) -> Json:
    if "toolUse" in block:
        use = block["toolUse"]
        native_id = "toolu_bdrk_" + use["toolUseId"].removeprefix("tooluse_")
        return {"type": "tool_use", "id": native_id, "name": use["name"], "input": use["input"]}
    if "reasoningContent" in block:
        text = block["reasoningContent"]["reasoningText"]
        return {"type": "thinking", "thinking": text["text"], "signature": text["signature"]}
    return {"type": "text", "text": block["text"]}


def _usage(answer: Answer) -> Json:
    return {
        "input_tokens": answer.usage["inputTokens"],
        # An input a guardrail blocked never reached the model or its cache: no cache counts.
        "cache_creation_input_tokens": answer.usage.get("cacheWriteInputTokens", 0),
        "cache_read_input_tokens": answer.usage.get("cacheReadInputTokens", 0),
        "output_tokens": answer.usage["outputTokens"],
    }


def _message_id(answer: Answer) -> str:
    return "msg_bdrk_" + hashlib.sha256(repr(answer.content).encode()).hexdigest()[:24]


def anthropic_message(answer: Answer, base_id: str) -> Json:
    """The Anthropic Messages response body."""
    return {
        "id": _message_id(answer),
        "type": "message",
        "role": "assistant",
        "model": model_name(base_id),
        "content": [_content(b) for b in answer.content],
        "stop_reason": _STOP_REASONS.get(answer.stop_reason, answer.stop_reason),
        "stop_sequence": answer.stop_sequence,
        "usage": _usage(answer),
    }


def _block_events(index: int, block: Json, per_delta: int) -> Iterator[Json]:
    start = dict(block)
    if block["type"] == "text":
        start["text"] = ""
        deltas: Iterable[Json] = (
            {"type": "text_delta", "text": t} for t in iter_text_deltas(block["text"], per_delta)
        )
    elif block["type"] == "thinking":
        start.update(thinking="", signature="")
        thinking = (
            {"type": "thinking_delta", "thinking": t} for t in iter_text_deltas(block["thinking"], per_delta)
        )
        deltas = itertools.chain(thinking, [{"type": "signature_delta", "signature": block["signature"]}])
    else:
        start["input"] = {}
        deltas = [{"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}]
    yield {"type": "content_block_start", "index": index, "content_block": start}
    for delta in deltas:
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    yield {"type": "content_block_stop", "index": index}


def anthropic_stream(answer: Answer, base_id: str, metrics: Json) -> Iterator[Json]:
    """Anthropic's native stream events; the last carries Bedrock's invocation metrics."""
    message = anthropic_message(answer, base_id)
    start = dict(message, content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = dict(message["usage"], output_tokens=1)
    yield {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block, answer.words_per_delta)
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    yield {"type": "message_delta", "delta": delta, "usage": {"output_tokens": answer.usage["outputTokens"]}}
    yield {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics}

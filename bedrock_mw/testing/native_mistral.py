"""InvokeModel with Mistral AI's native bodies: text completion (`prompt`) and chat (`messages`).

Shapes from AWS's Bedrock user guide, "Mistral AI text completion" and "Mistral AI chat completion":
  * text: request `{"prompt", "max_tokens", "stop", "temperature", "top_p", "top_k"}`, response
    `{"outputs": [{"text", "stop_reason"}]}` with `stop_reason` `stop` or `length`; stream chunks of
    the same shape, `stop_reason` null until the last;
  * chat: request `{"messages": [{"role": system|user|assistant|tool, "content", "tool_calls",
    "tool_call_id"}], "tools", "tool_choice": auto|any|none, "max_tokens", "temperature", "top_p"}`,
    response `{"choices": [{"index": 0, "message": {"role": "assistant", "content", "tool_calls"?},
    "stop_reason": stop|length|tool_calls}]}`; stream chunks carry `choices[0].message` deltas.
The reply follows the Converse responder, so "use <tool>" and the trigger phrases work here too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from .converse_stream import iter_text_deltas, text_deltas, with_last
from .native_schema import STRINGS, arr, check_native, integer, number, obj, string
from .native_text import prompt_text
from .responder import Answer

TEXT_SCHEMA = obj(
    {
        "prompt": string(),
        "max_tokens": integer(minimum=1),
        "stop": STRINGS,
        "temperature": number(0, 1),
        "top_p": number(0, 1),
        "top_k": integer(minimum=0),
    },
    required=("prompt",),
    closed=True,
)
_FUNCTION_CALL = obj({"name": string(), "arguments": string()}, required=("name", "arguments"))
_TOOL_CALL = obj({"id": string(), "type": string(), "function": _FUNCTION_CALL}, required=("function",))
_MESSAGE = obj(
    {
        "role": string("system", "user", "assistant", "tool"),
        "content": string(),
        "tool_calls": arr(_TOOL_CALL),
        "tool_call_id": string(),
        "name": string(),
    },
    required=("role",),
)
_TOOL = obj(
    {
        "type": string("function"),
        "function": obj({"name": string(), "description": string(), "parameters": obj()}, required=("name",)),
    },
    required=("function",),
)
CHAT_SCHEMA = obj(
    {
        "messages": arr(_MESSAGE, min_items=1),
        "tools": arr(_TOOL),
        "tool_choice": string("auto", "any", "none"),
        "max_tokens": integer(minimum=1),
        "temperature": number(0, 1),
        "top_p": number(0, 1),
    },
    required=("messages",),
    closed=True,
)
_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
Json = dict[str, Any]


def is_chat(body: Any) -> bool:
    """Chat form when the body has `messages`, text-completion form otherwise."""
    return isinstance(body, Mapping) and "messages" in body


def mistral_text_to_converse(raw: Any) -> Json:
    """The text-completion body as a one-message Converse request (the prompt's [INST] text)."""
    body = check_native(raw, TEXT_SCHEMA)
    text = prompt_text(body["prompt"]) or body["prompt"] or "(empty prompt)"
    request: Json = {"messages": [{"role": "user", "content": [{"text": text}]}]}
    inference: Json = {"stopSequences": body.get("stop") or []}
    if "max_tokens" in body:
        inference["maxTokens"] = body["max_tokens"]
    request["inferenceConfig"] = inference
    return request


def _chat_content(message: Mapping[str, Any]) -> list[Json]:
    role = message["role"]
    if role == "tool":
        result = {
            "toolUseId": message.get("tool_call_id") or "call",
            "content": [{"text": message.get("content") or ""}],
        }
        return [{"toolResult": result}]
    blocks: list[Json] = [{"text": message["content"]}] if message.get("content") else []
    for call in message.get("tool_calls") or []:
        try:
            arguments = orjson.loads(call["function"]["arguments"])
        except orjson.JSONDecodeError:
            arguments = {}
        use = {"toolUseId": call.get("id") or "call", "name": call["function"]["name"], "input": arguments}
        blocks.append({"toolUse": use})
    return blocks


def mistral_chat_to_converse(raw: Any) -> Json:
    """The chat body as a Converse request: system messages lifted out, tool messages as results."""
    body = check_native(raw, CHAT_SCHEMA)
    system = [{"text": m["content"]} for m in body["messages"] if m["role"] == "system" and m.get("content")]
    messages: list[Json] = []
    for message in body["messages"]:
        if message["role"] == "system":
            continue
        role = "user" if message["role"] in ("user", "tool") else "assistant"
        content = _chat_content(message)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(content)
        else:
            messages.append({"role": role, "content": content})
    request: Json = {"messages": messages}
    if system:
        request["system"] = system
    tools = [
        {
            "toolSpec": {
                "name": t["function"]["name"],
                "inputSchema": {"json": t["function"].get("parameters") or {"type": "object"}},
            }
        }
        for t in body.get("tools") or []
    ]
    if tools and body.get("tool_choice") != "none":
        request["toolConfig"] = {"tools": tools}
        if body.get("tool_choice") == "any":
            request["toolConfig"]["toolChoice"] = {"any": {}}
    if "max_tokens" in body:
        request["inferenceConfig"] = {"maxTokens": body["max_tokens"]}
    return request


def _text(answer: Answer) -> str:
    return "".join(block["text"] for block in answer.content if "text" in block)


def _tool_calls(answer: Answer) -> list[Json]:
    return [
        {
            "id": b["toolUse"]["toolUseId"],
            "function": {
                "name": b["toolUse"]["name"],
                "arguments": orjson.dumps(b["toolUse"]["input"]).decode(),
            },
        }
        for b in answer.content
        if "toolUse" in b
    ]


def mistral_text_response(answer: Answer) -> Json:
    return {"outputs": [{"text": _text(answer), "stop_reason": _REASONS[answer.stop_reason]}]}


def mistral_chat_response(answer: Answer) -> Json:
    message: Json = {"role": "assistant", "content": _text(answer)}
    calls = _tool_calls(answer)
    if calls:
        message["tool_calls"] = calls
    return {"choices": [{"index": 0, "message": message, "stop_reason": _REASONS[answer.stop_reason]}]}


def mistral_text_stream(answer: Answer, metrics: Json) -> Iterator[Json]:
    """Text-completion chunks; the last has the stop reason and the invocation metrics."""
    for piece, last in with_last(iter_text_deltas(_text(answer), answer.words_per_delta)):
        chunk: Json = {
            "outputs": [{"text": piece, "stop_reason": _REASONS[answer.stop_reason] if last else None}]
        }
        if last:
            chunk["amazon-bedrock-invocationMetrics"] = metrics
        yield chunk


def mistral_chat_stream(answer: Answer, metrics: Json) -> Iterator[Json]:
    """Chat chunks: text deltas, then tool calls; the last has the stop reason and metrics."""
    deltas: list[Json] = [
        {"role": "assistant", "content": p} for p in text_deltas(_text(answer), answer.words_per_delta)
    ]
    calls = _tool_calls(answer)
    if calls:
        deltas.append({"role": "assistant", "content": "", "tool_calls": calls})
    for index, delta in enumerate(deltas):
        last = index == len(deltas) - 1
        choice = {"index": 0, "message": delta, "stop_reason": _REASONS[answer.stop_reason] if last else None}
        chunk: Json = {"choices": [choice]}
        if last:
            chunk["amazon-bedrock-invocationMetrics"] = metrics
        yield chunk

"""Deterministic Converse answers, so tests can predict every byte.

Rules (also in docs/emulator.md):
  * reply text is "Echo: " + the text blocks of the last user message joined with a space;
  * if that message carries toolResult blocks: "Tool results: " + their texts (JSON compact) joined;
  * "emit N words" in the user text → the reply is N lorem-ipsum words (3 words per stream delta);
    "emit N events" → N words, one word per stream delta (so exactly N text deltas);
  * tools: toolChoice `tool` → that tool, `any` → the first tool, otherwise "use <name>" in the user
    text picks a tool; the call's input is built from the tool's schema (schema_example.py) and an
    auto choice is preceded by the text "Calling <name>."; stopReason `tool_use`;
  * thinking on → first a reasoning block "Thinking about: <user text>" with an HMAC signature;
  * `outputConfig.textFormat` of type json_schema → the reply is the schema's example instance (JSON);
  * a document with `citations.enabled` → a `citationsContent` block citing its first sentence
    (citations.py);
  * stop sequences cut the text before the earliest match (stopReason `stop_sequence`), then
    maxTokens keeps the first maxTokens words (stopReason `max_tokens`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .citations import citation_block
from .prompt_cache import CacheUsage
from .schema_example import example_for_schema
from .thinking import sign_thinking, thinking_config
from .tokens import InputPlan, json_tokens, words

_EMIT = re.compile(r"\bemit (\d+) (words|events)\b", re.IGNORECASE)
_USE_TOOL = re.compile(r"\buse ([A-Za-z0-9_-]+)")
_WORD_END = re.compile(r"\S+")
MAX_EMIT_WORDS = 200_000
LOREM = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
)
Block = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """A model answer in Converse shapes, with its usage."""

    content: list[Block]
    stop_reason: str
    usage: dict[str, int]
    additional_fields: dict[str, Any] | None = None
    words_per_delta: int = 3
    stop_sequence: str | None = field(default=None)


def last_user_message(messages: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    return next((m for m in reversed(messages) if m.get("role") == "user"), {"content": []})


def user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text blocks of the last user message, joined with a space."""
    content = last_user_message(messages).get("content") or []
    return " ".join(str(b["text"]) for b in content if "text" in b)


def _tool_result_text(block: Mapping[str, Any]) -> str:
    parts = []
    for part in block["toolResult"].get("content") or []:
        if "text" in part:
            parts.append(str(part["text"]))
        elif "json" in part:
            parts.append(orjson.dumps(part["json"], option=orjson.OPT_SORT_KEYS).decode())
        else:
            parts.append("[" + next(iter(part), "content") + "]")
    return " ".join(parts)


# Filler answers are immutable and the same for the same count, so concurrent streams share one
# string: 2,000 streams of a 200,000-word answer held 1.2 MB each (docs/emulator.md, Memory).
@functools.lru_cache(maxsize=8)
def lorem(count: int) -> str:
    """`count` deterministic filler words."""
    count = min(count, MAX_EMIT_WORDS)
    return " ".join(LOREM[i % len(LOREM)] for i in range(count))


def tool_use_id(name: str, seed: str) -> str:
    digest = hashlib.sha256(f"{name}\0{seed}".encode()).digest()
    return "tooluse_" + base64.urlsafe_b64encode(digest).decode()[:22]


def _chosen_tool(request: Mapping[str, Any], text: str) -> tuple[Mapping[str, Any], bool] | None:
    config = request.get("toolConfig") or {}
    specs = [t["toolSpec"] for t in config.get("tools") or [] if "toolSpec" in t]
    if not specs:
        return None
    by_name = {str(s.get("name")): s for s in specs}
    choice = config.get("toolChoice") or {}
    if "tool" in choice:
        spec = by_name.get(str(choice["tool"].get("name")))
        return (spec, False) if spec else None
    if "any" in choice:
        return specs[0], False
    for match in _USE_TOOL.finditer(text):
        if match.group(1) in by_name:
            return by_name[match.group(1)], True
    return None


def _cut(text: str, stop_sequences: Sequence[str]) -> tuple[str, str | None]:
    hits = [(text.find(s), s) for s in stop_sequences if s and s in text]
    if not hits:
        return text, None
    position, matched = min(hits)
    return text[:position], matched


@functools.lru_cache(maxsize=8)  # shared like lorem(): the same long answer cut at the same length
def _truncate(text: str, max_words: int) -> tuple[str, bool]:
    if words(text) <= max_words:
        return text, False
    ends = [m.end() for m in _WORD_END.finditer(text)]
    return (text[: ends[max_words - 1]] if max_words > 0 else ""), True


@dataclass(frozen=True)
class TextReply:
    """Generated text after stop sequences and max-token truncation."""

    text: str
    stop_reason: str
    stop_sequence: str | None
    words_per_delta: int


def compose_text(prompt: str, max_tokens: int | None, stop_sequences: Sequence[str]) -> TextReply:
    """The reply text for a prompt: echo or trigger phrase, then stop sequences, then max tokens."""
    per_delta = 3
    emit = _EMIT.search(prompt)
    if emit:
        reply = lorem(int(emit.group(1)))
        per_delta = 1 if emit.group(2).lower() == "events" else 3
    else:
        reply = "Echo: " + prompt
    reply, matched = _cut(reply, stop_sequences)
    stop_reason = "stop_sequence" if matched else "end_turn"
    if max_tokens is not None:
        reply, truncated = _truncate(reply, max_tokens)
        if truncated:
            stop_reason = "max_tokens"
    return TextReply(reply, stop_reason, matched, per_delta)


def output_tokens(content: Sequence[Block]) -> int:
    """Output tokens: words of text and reasoning, plus JSON tokens of tool inputs."""
    total = 0
    for block in content:
        if "text" in block:
            total += words(block["text"])
        elif "reasoningContent" in block:
            total += words(block["reasoningContent"]["reasoningText"]["text"])
        elif "toolUse" in block:
            total += json_tokens(block["toolUse"]["input"])
        elif "citationsContent" in block:
            total += sum(words(part["text"]) for part in block["citationsContent"]["content"])
    return total


def make_usage(plan: InputPlan, cache: CacheUsage, output: int) -> dict[str, int]:
    """Bedrock usage: inputTokens excludes cached tokens; totalTokens includes them."""
    uncached = plan.total - cache.read - cache.write
    return {
        "inputTokens": uncached,
        "outputTokens": output,
        "totalTokens": uncached + output + cache.read + cache.write,
        "cacheReadInputTokens": cache.read,
        "cacheWriteInputTokens": cache.write,
    }


def _structured_output_schema(request: Mapping[str, Any]) -> Any:
    """The JSON schema of ``outputConfig.textFormat`` when the request asks for structured output."""
    text_format = (request.get("outputConfig") or {}).get("textFormat") or {}
    if text_format.get("type") != "json_schema":
        return None
    raw = ((text_format.get("structure") or {}).get("jsonSchema") or {}).get("schema")
    try:
        return orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        return None


def answer_converse(request: Mapping[str, Any], plan: InputPlan, cache: CacheUsage) -> Answer:
    """The emulator's answer to a (validated) Converse-shaped request."""
    messages: Sequence[Mapping[str, Any]] = request.get("messages") or []
    text = user_text(messages)
    content: list[Block] = []
    if thinking_config(request) is not None:
        thought = "Thinking about: " + text
        content.append(
            {"reasoningContent": {"reasoningText": {"text": thought, "signature": sign_thinking(thought)}}}
        )
    results = [b for b in last_user_message(messages).get("content") or [] if "toolResult" in b]
    tool = None if results else _chosen_tool(request, text)
    stop_reason, matched, per_delta = "end_turn", None, 3
    if results:
        content.append({"text": "Tool results: " + " ".join(_tool_result_text(b) for b in results)})
    elif tool is not None:
        spec, auto = tool
        name = str(spec.get("name"))
        if auto:
            content.append({"text": f"Calling {name}."})
        tool_input = example_for_schema((spec.get("inputSchema") or {}).get("json"))
        content.append(
            {
                "toolUse": {
                    "toolUseId": tool_use_id(name, f"{len(messages)}\0{text}"),
                    "name": name,
                    "input": tool_input,
                }
            }
        )
        stop_reason = "tool_use"
    elif (schema := _structured_output_schema(request)) is not None:
        # Structured output: the reply is the schema's example instance, as JSON text.
        content.append({"text": orjson.dumps(example_for_schema(schema)).decode()})
    elif (cited := citation_block(messages)) is not None:
        content.append(cited)
    else:
        inference = request.get("inferenceConfig") or {}
        max_tokens = inference.get("maxTokens")
        reply = compose_text(
            text, max_tokens if isinstance(max_tokens, int) else None, inference.get("stopSequences") or []
        )
        stop_reason, matched, per_delta = reply.stop_reason, reply.stop_sequence, reply.words_per_delta
        content.append({"text": reply.text})
    additional = None
    if "/stop_sequence" in (request.get("additionalModelResponseFieldPaths") or []):
        additional = {"stop_sequence": matched}
    usage = make_usage(plan, cache, output_tokens(content))
    return Answer(content, stop_reason, usage, additional, per_delta, matched)

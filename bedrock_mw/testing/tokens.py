"""Deterministic token accounting, shared by Converse usage and CountTokens.

Rules (documented in docs/emulator.md):
  * a text's tokens = its number of whitespace-separated words;
  * a JSON value's tokens = words of every string in it (keys included) + 1 per number/bool/null;
  * input = tools' specs + system blocks + per message (1 for the role + its blocks) + 3 overhead;
  * a toolUse block counts its name and input, a toolResult its content, a reasoning block its text.
The walk also records every cachePoint: the tokens before it and a digest of the canonical JSON
of everything before it (tools, then system, then messages, as Anthropic orders its cache).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

REQUEST_OVERHEAD = 3
MESSAGE_OVERHEAD = 1
TTL_SECONDS = {"5m": 300, "1h": 3600}


def words(text: str) -> int:
    """Tokens of a text: its whitespace-separated words."""
    return len(text.split())


def json_tokens(value: Any) -> int:
    """Tokens of a JSON value: words of each string (keys too), 1 per other scalar."""
    if isinstance(value, str):
        return words(value)
    if isinstance(value, Mapping):
        return sum(words(str(k)) + json_tokens(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(json_tokens(v) for v in value)
    return 1


def block_tokens(block: Mapping[str, Any]) -> int:
    """Tokens of one Converse content block (cachePoints count 0)."""
    if "text" in block:
        return words(str(block["text"]))
    if "toolUse" in block:
        use = block["toolUse"]
        return words(str(use.get("name", ""))) + json_tokens(use.get("input"))
    if "toolResult" in block:
        return sum(
            words(str(part["text"])) if "text" in part else json_tokens(part)
            for part in block["toolResult"].get("content", [])
        )
    if "reasoningContent" in block:
        return words(str(block["reasoningContent"].get("reasoningText", {}).get("text", "")))
    if "cachePoint" in block:
        return 0
    return json_tokens(block)


@dataclass(frozen=True)
class CacheBoundary:
    """A cachePoint: how many input tokens precede it and what they hash to."""

    tokens: int
    digest: str
    ttl_s: int


@dataclass(frozen=True)
class InputPlan:
    """Total input tokens of a Converse-shaped request and its cache boundaries."""

    total: int
    boundaries: tuple[CacheBoundary, ...]


class _Walker:
    def __init__(self) -> None:
        self.tokens = 0
        self.hasher = hashlib.sha256()
        self.boundaries: list[CacheBoundary] = []

    def feed(self, item: Any, tokens: int) -> None:
        self.hasher.update(orjson.dumps(item, option=orjson.OPT_SORT_KEYS) + b"\n")
        self.tokens += tokens

    def blocks(self, blocks: Iterable[Mapping[str, Any]], counter: Any) -> None:
        for block in blocks:
            if "cachePoint" in block:
                ttl = TTL_SECONDS.get(str(block["cachePoint"].get("ttl", "5m")), 300)
                self.boundaries.append(CacheBoundary(self.tokens, self.hasher.hexdigest(), ttl))
            else:
                self.feed(block, counter(block))


def _tool_tokens(tool: Mapping[str, Any]) -> int:
    return json_tokens(tool.get("toolSpec", tool))


def plan_input(request: Mapping[str, Any]) -> InputPlan:
    """Walk tools → system → messages once, counting tokens and noting cache boundaries."""
    walker = _Walker()
    tools = (request.get("toolConfig") or {}).get("tools", [])
    walker.blocks(tools, _tool_tokens)
    walker.blocks(request.get("system") or [], block_tokens)
    for message in request.get("messages") or []:
        walker.feed({"role": message.get("role")}, MESSAGE_OVERHEAD)
        walker.blocks(message.get("content") or [], block_tokens)
    return InputPlan(walker.tokens + REQUEST_OVERHEAD, tuple(walker.boundaries))


def count_cache_points(request: Mapping[str, Any]) -> int:
    """How many cachePoint blocks a Converse-shaped request carries."""
    groups: list[Iterable[Mapping[str, Any]]] = [
        (request.get("toolConfig") or {}).get("tools", []),
        request.get("system") or [],
        *((m.get("content") or []) for m in request.get("messages") or []),
    ]
    return sum(1 for group in groups for block in group if "cachePoint" in block)

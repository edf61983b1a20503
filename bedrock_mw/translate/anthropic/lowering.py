"""Lower what Anthropic's Messages API accepts and Bedrock's Claude does not, before either upstream API.

Pure and shared by both paths (Converse and native InvokeModel): the input is the caller's body, the
output is an Anthropic body Bedrock's Claude takes, plus what was changed, for the response headers.
Every rule and its reason is in docs/anthropic.md ("Lowering"). In short:

* unknown top-level fields are dropped and named (or refused, for hosts that want strictness);
* mid-conversation ``role: "system"`` turns become user-role text at the same position, wrapped in
  ``<system-reminder>`` tags, so the cached prefix before them is unchanged and roles alternate;
* ``tool_addition`` / ``tool_removal`` blocks become notes at their position; a tool added by value
  is declared at the end of ``tools`` (tools by reference are declared already);
* a turn's ``clear_at: "next_user_message"`` drops the turn once a later user turn exists;
* a turn's ``output_config.effort`` becomes the request's effort (the last one wins);
* adaptive thinking on a model older than adaptive thinking becomes extended thinking with a budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..types import JSONObject
from .content import as_dict, as_list, as_str, fail
from .shapes import TextBlockParam

NOTE_LOWERED = "x-bedrock-mw-lowered"

# Top-level fields the translators understand (the rest are a newer client's: dropped and named).
KNOWN_FIELDS = frozenset(
    {
        "model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "top_k",
        "metadata", "stream", "service_tier", "tools", "tool_choice", "thinking", "output_config",
        "cache_control", "context_management", "diagnostics", "user_profile_id", "workspace_id",
        "container", "mcp_servers", "inference_geo", "speed",
    }
)  # fmt: skip
_SYSTEM_TURN_FIELDS = frozenset({"role", "content", "output_config", "clear_at"})
REMINDER_OPEN = "<system-reminder>\n"
REMINDER_CLOSE = "\n</system-reminder>"
# Adaptive thinking exists from the 4.6 generation on; older Claude models take a budget instead.
_GENERATION = re.compile(
    r"anthropic\.claude-(?:(?:opus|sonnet|haiku)-(\d+)(?:-(\d)(?!\d))?|(\d+)-(\d)-|(\d+)-[a-z])"
)
_ADAPTIVE_FROM = (4, 6)
# The share of max_tokens an adaptive request's thinking may use on an older model, by effort.
_BUDGET_SHARE = {"low": 0.25, "medium": 0.5, "high": 0.75, "xhigh": 0.8, "max": 0.8}
MIN_BUDGET = 1024


@dataclass(slots=True)
class Lowered:
    """The body to translate and what was changed on the way (for the response headers)."""

    body: JSONObject
    ignored: list[str] = field(default_factory=list)
    lowered: list[str] = field(default_factory=list)


def claude_generation(base_model_id: str) -> tuple[int, int] | None:
    """``(major, minor)`` of a Claude base model id (``anthropic.claude-opus-4-7`` → ``(4, 7)``)."""
    match = _GENERATION.match(base_model_id)
    if match is None:
        return None
    if match[1] is not None:
        return int(match[1]), int(match[2] or 0)
    if match[3] is not None:
        return int(match[3]), int(match[4])
    return int(match[5]), 0


def takes_adaptive_thinking(base_model_id: str) -> bool:
    """Whether Bedrock's model takes ``thinking: {"type": "adaptive"}`` (unknown models: yes)."""
    generation = claude_generation(base_model_id)
    return generation is None or generation >= _ADAPTIVE_FROM


def lower_request(
    body: Any, *, base_model_id: str = "", reject_unknown_fields: bool = False, counting: bool = False
) -> Lowered:
    """The caller's body with everything Bedrock's Claude cannot take lowered (the body is not changed)."""
    source = as_dict(body, "body")
    out = Lowered(dict(source))
    for key in source:
        if key not in KNOWN_FIELDS:
            if reject_unknown_fields:
                raise fail(key, "unknown field")
            del out.body[key]
            out.ignored.append(key)
    messages = source.get("messages")
    if isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "system" for m in messages
    ):
        _lower_system_turns(out, messages)
    _lower_thinking(out, base_model_id if not counting else "")  # a count has no budget to fit
    return out


# -- mid-conversation system turns ------------------------------------------------------------
@dataclass(slots=True)
class _Turns:
    """The conversation being rebuilt with user and assistant roles only."""

    messages: list[JSONObject] = field(default_factory=list)
    # Indexes (in ``messages``) of user turns that received lowered blocks, to order tool results first.
    touched: set[int] = field(default_factory=set)

    def add(self, role: str, blocks: list[Any], *, lowered: bool) -> None:
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == role:
            last["content"] = _as_blocks(last["content"]) + blocks  # Anthropic merges same-role turns too
        else:
            self.messages.append({"role": role, "content": blocks})
        if lowered:
            self.touched.add(len(self.messages) - 1)


def _as_blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content) if isinstance(content, list) else [content]


def _lower_system_turns(out: Lowered, messages: list[Any]) -> None:
    turns = _Turns()
    given = out.body.get("tools")
    tools: list[Any] = list(given) if isinstance(given, list) else []
    declared = {t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)}
    counts = {"system-turn": 0, "tool_addition": 0, "tool_removal": 0, "clear_at": 0}
    effort: str | None = None
    users = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]
    last_user = users[-1] if users else -1
    for i, raw in enumerate(messages):
        message = as_dict(raw, f"messages.{i}")
        if message.get("role") != "system":
            turns.add(str(message.get("role")), _as_blocks(message.get("content")), lowered=False)
            extra = {k: v for k, v in message.items() if k not in ("role", "content")}
            if extra:
                turns.messages[-1].update(extra)  # the translator names unknown message fields
            continue
        path = f"messages.{i}"
        for key in message:
            if key not in _SYSTEM_TURN_FIELDS:
                raise fail(f"{path}.{key}", "unknown field")
        clear_at = message.get("clear_at")
        if clear_at is not None and clear_at != "next_user_message":
            raise fail(f"{path}.clear_at", "must be 'next_user_message'")
        config = message.get("output_config")
        if config is not None:
            config = as_dict(config, f"{path}.output_config")
            if set(config) - {"effort"}:
                raise fail(f"{path}.output_config.{sorted(set(config) - {'effort'})[0]}", "unknown field")
            if config.get("effort") is not None:
                effort = as_str(config["effort"], f"{path}.output_config.effort")
        if clear_at is not None and i < last_user:
            counts["clear_at"] += 1  # cleared: it renders nothing once a later user turn exists
            continue
        blocks = _system_blocks(message.get("content"), path, tools, declared, counts)
        counts["system-turn"] += 1
        if blocks:
            turns.add("user", blocks, lowered=True)
    for index in turns.touched:
        content = turns.messages[index]["content"]
        results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:  # tool results must lead the user turn that answers a tool call
            turns.messages[index]["content"] = results + [b for b in content if b not in results]
    out.body["messages"] = turns.messages
    if tools:
        out.body["tools"] = tools
    out.lowered.extend(f"{name}:{n}" for name, n in counts.items() if n)
    if effort is not None:
        top = out.body.get("output_config")
        merged = dict(top) if isinstance(top, dict) else {}
        merged["effort"] = effort
        out.body["output_config"] = merged
        out.lowered.append(f"per-turn-effort:{effort}")


def _reminder(text: str) -> str:
    return REMINDER_OPEN + text + REMINDER_CLOSE


def _system_blocks(
    content: Any, path: str, tools: list[Any], declared: set[Any], counts: dict[str, int]
) -> list[TextBlockParam]:
    """The user-role blocks a system turn's content becomes."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": _reminder(content)}] if content.strip() else []
    out: list[TextBlockParam] = []
    for j, item in enumerate(as_list(content, f"{path}.content")):
        bpath = f"{path}.content.{j}"
        block = as_dict(item, bpath)
        kind = block.get("type")
        text: str
        if kind == "text":
            text = as_str(block.get("text"), f"{bpath}.text")
            if not text.strip():
                continue
            text = _reminder(text)
        elif kind in ("tool_addition", "tool_removal"):
            counts[kind] += 1
            name = _tool_change(block, bpath, tools, declared, adding=kind == "tool_addition")
            text = _reminder(
                f"The tool `{name}` is now available."
                if kind == "tool_addition"
                else f"The tool `{name}` is no longer available; do not call it."
            )
        else:
            raise fail(f"{bpath}.type", "a system turn may hold text, tool_addition and tool_removal blocks")
        lowered: TextBlockParam = {"type": "text", "text": text}
        if block.get("cache_control") is not None:
            lowered["cache_control"] = block["cache_control"]
        out.append(lowered)
    return out


def _tool_change(block: JSONObject, path: str, tools: list[Any], declared: set[Any], *, adding: bool) -> str:
    """The tool's name; a tool added by value is declared at the end of ``tools``."""
    tool = as_dict(block.get("tool"), f"{path}.tool")
    if tool.get("type") == "tool_definition":
        if not adding:
            raise fail(f"{path}.tool.type", "a tool_removal names its tool by reference")
        definition = as_dict(tool.get("definition"), f"{path}.tool.definition")
        name = as_str(definition.get("name"), f"{path}.tool.definition.name")
        if name not in declared:
            declared.add(name)
            tools.append(definition)
        return name
    if tool.get("name") is None:  # an MCP toolset reference names its server instead
        return as_str(tool.get("server_name") or tool.get("mcp_server_name"), f"{path}.tool.name")
    return as_str(tool.get("name"), f"{path}.tool.name")


# -- thinking -------------------------------------------------------------------------------
def _lower_thinking(out: Lowered, base_model_id: str) -> None:
    thinking = out.body.get("thinking")
    if not isinstance(thinking, dict):
        return
    changed = dict(thinking)
    if "display" in changed:
        # Bedrock's thinking shape has no display choice: summarised thinking comes back, named here.
        del changed["display"]
        out.ignored.append("thinking.display")
    if changed.get("type") == "adaptive" and base_model_id and not takes_adaptive_thinking(base_model_id):
        max_tokens = out.body.get("max_tokens")
        config = out.body.get("output_config")
        effort = config.get("effort") if isinstance(config, dict) else None
        share = _BUDGET_SHARE.get(effort if isinstance(effort, str) else "high", 0.75)
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > MIN_BUDGET:
            budget = max(MIN_BUDGET, min(int(max_tokens * share), max_tokens - 1))
            changed = {"type": "enabled", "budget_tokens": budget}
            out.lowered.append(f"thinking:adaptive->enabled({budget})")
        else:
            changed = {"type": "disabled"}
            out.lowered.append("thinking:adaptive->disabled")
    out.body["thinking"] = changed

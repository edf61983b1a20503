"""Anthropic Messages requests as Bedrock InvokeModel bodies: the caller's body, passed through.

Claude on Bedrock takes Anthropic's own body on InvokeModel, so this path translates almost nothing:
``model`` and ``stream`` leave the body, ``anthropic_version: "bedrock-2023-05-31"`` joins it, the
``anthropic-beta`` header becomes ``anthropic_beta`` (filtered to the flags Bedrock takes), and what
Bedrock would refuse as extraneous is lowered or dropped and named (docs/anthropic.md, "Native path").
Content blocks are Bedrock's to judge: they go as sent, so features Converse cannot carry (Anthropic-
defined client tools, tool search, search results with citations, context management) keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ...routing.families import ModelFamily
from .betas import CONTEXT_MANAGEMENT, parse_beta_header, split_betas
from .content import as_bool, as_dict, as_int, as_list, as_str, fail
from .lowering import NOTE_LOWERED, lower_request
from .request import (
    BILLING_HEADER_PREFIX,
    NOTE_DROPPED_BETAS,
    NOTE_IGNORED,
    NOTE_SYNTHESIZED_TOOLS,
    AnthropicOptions,
)

if TYPE_CHECKING:
    from ..types import JSONObject, JSONValue
    from .shapes import InvokeBody

ANTHROPIC_VERSION = "bedrock-2023-05-31"
# The top-level keys Bedrock's Anthropic body schema accepts (shapes.InvokeBody's); any other key is
# refused as extraneous.
BEDROCK_FIELDS = frozenset(
    {
        "anthropic_version", "anthropic_beta", "max_tokens", "system", "messages", "temperature", "top_p",
        "top_k", "tools", "tool_choice", "stop_sequences", "thinking", "metadata", "output_config",
        "context_management",
    }
)  # fmt: skip
# Fields with no Bedrock counterpart that change nothing the model sees.
_QUIET_FIELDS = frozenset({"diagnostics", "user_profile_id", "workspace_id", "service_tier", "cache_control"})
# Fields with no Bedrock counterpart that would change the answer: refused unless empty.
_REFUSED_FIELDS = {
    "container": "containers (code execution) run on Anthropic's servers, not on Bedrock",
    "mcp_servers": "the MCP connector runs on Anthropic's servers, not on Bedrock",
    "inference_geo": "the gateway chooses the Bedrock region; inference_geo cannot be honoured",
}
# Tool fields Bedrock's schema takes; the rest are dropped (tools.<field>), some only without a beta.
_TOOL_FIELDS = frozenset({"type", "name", "description", "input_schema", "cache_control"})
_TOOL_FIELDS_BY_BETA = {
    "defer_loading": "tool-search-tool-2025-10-19",
    "input_examples": "tool-examples-2025-10-29",
}
# Server tools run on Anthropic's side; Bedrock runs none of them.
_SERVER_TOOL_PREFIXES = ("web_search_", "web_fetch_", "code_execution_", "mcp_toolset", "memory_")
_TOOL_SEARCH_PREFIX = "tool_search_tool_"
SYNTHESIZED_DESCRIPTION = "A tool used earlier in this conversation."


@dataclass(slots=True)
class NativeCall:
    """A translated InvokeModel(-WithResponseStream) call: the body to send, and what was changed."""

    body: InvokeBody
    stream: bool = False
    notes: dict[str, str] = field(default_factory=dict)


def anthropic_to_invoke(
    body: Any,
    family: ModelFamily,
    options: AnthropicOptions,
    *,
    beta_header: str | None = None,
    model_id: str = "",
    counting: bool = False,
) -> NativeCall:
    """The InvokeModel body for an Anthropic Messages (or count_tokens) body on a Claude model."""
    low = lower_request(
        body, base_model_id=model_id, reject_unknown_fields=options.reject_unknown_fields, counting=counting
    )
    source = low.body
    ignored = list(low.ignored)
    notes: dict[str, str] = {}
    out: JSONObject = {"anthropic_version": ANTHROPIC_VERSION}
    betas, dropped = split_betas(parse_beta_header(beta_header), options.supported_betas)
    if betas:
        out["anthropic_beta"] = betas
    if dropped:
        notes[NOTE_DROPPED_BETAS] = ",".join(dropped)
    for key, value in source.items():
        if key in BEDROCK_FIELDS:
            out[key] = value
        elif key in _REFUSED_FIELDS:
            if value not in (None, [], {}, ""):
                raise fail(key, _REFUSED_FIELDS[key])
        elif key == "speed":
            if value not in (None, "standard"):
                raise fail(key, "fast mode is not available through Bedrock")
        elif key in _QUIET_FIELDS:
            ignored.append(key)
        # model and stream are the route's, not the body's
    stream = source.get("stream")
    if counting:
        out["max_tokens"] = 1  # CountTokens wants a complete body; a count does not depend on it
        # Nor on sampling or a thinking budget (which would have to stay below that max_tokens).
        for key in ("stop_sequences", "temperature", "top_p", "top_k", "metadata", "thinking"):
            out.pop(key, None)
    else:
        as_int(out.get("max_tokens"), "max_tokens", minimum=1)
    body = cast("InvokeBody", out)  # the caller's members Bedrock's schema takes, as sent
    _check_messages(body)
    top = source.get("cache_control")
    if top is not None:
        _mark_last_block(body, as_dict(top, "cache_control"))
        ignored.remove("cache_control")
    _system(body)
    _tools(body, set(betas), ignored)
    _synthesized_tools(body, notes)
    _metadata(body, ignored)
    if "context_management" in body and CONTEXT_MANAGEMENT not in betas:
        del body["context_management"]
        ignored.append("context_management")
    if ignored:
        notes[NOTE_IGNORED] = ",".join(dict.fromkeys(ignored))
    if low.lowered:
        notes[NOTE_LOWERED] = ",".join(low.lowered)
    return NativeCall(body, stream=False if stream is None else as_bool(stream, "stream"), notes=notes)


def _check_messages(body: InvokeBody) -> None:
    # Bedrock judges content; the gateway only checks what would make its own steps fail.
    messages = as_list(body.get("messages"), "messages")
    if not messages:
        raise fail("messages", "must contain at least one message")
    for i, message in enumerate(messages):
        role = as_dict(message, f"messages.{i}").get("role")
        if role not in ("user", "assistant"):
            raise fail(f"messages.{i}.role", "must be 'user', 'assistant' or 'system'")


def _mark_last_block(body: InvokeBody, control: Mapping[str, JSONValue]) -> None:
    """Top-level ``cache_control`` is Anthropic's automatic caching: a mark on the last block."""
    last = body["messages"][-1]
    content = last.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    blocks = [dict(b) if isinstance(b, dict) else b for b in as_list(content, "messages.content")]
    if blocks and isinstance(blocks[-1], dict) and "cache_control" not in blocks[-1]:
        blocks[-1]["cache_control"] = dict(control)
    body["messages"] = [*body["messages"][:-1], {**last, "content": blocks}]


def _system(body: InvokeBody) -> None:
    # Claude Code's per-session billing line would stop sessions sharing a cache (as on Converse).
    system = body.get("system")
    if isinstance(system, list):
        kept = [
            b
            for b in system
            if not (isinstance(b, dict) and str(b.get("text", "")).startswith(BILLING_HEADER_PREFIX))
        ]
        if kept:
            body["system"] = kept
        else:
            del body["system"]


def _tools(body: InvokeBody, betas: set[str], ignored: list[str]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    searching = (
        any(
            isinstance(t, dict) and str(t.get("type", "")).startswith(_TOOL_SEARCH_PREFIX)
            for t in as_list(tools, "tools")
        )
        and _TOOL_FIELDS_BY_BETA["defer_loading"] in betas
    )
    kept: list[JSONObject] = []
    for j, item in enumerate(tools):
        tool = as_dict(item, f"tools.{j}")
        kind = str(tool.get("type") or "")
        if kind.startswith(_SERVER_TOOL_PREFIXES):
            ignored.append(f"tools.{as_str(tool.get('name', kind), f'tools.{j}.name')}")
            continue  # a server tool Bedrock does not run: the model is simply not offered it
        if kind.startswith(_TOOL_SEARCH_PREFIX) and not searching:
            ignored.append(f"tools.{tool.get('name', kind)}")
            continue
        clean: JSONObject = {}  # the tool as sent, less what Bedrock would refuse
        for key, value in tool.items():
            beta = _TOOL_FIELDS_BY_BETA.get(key)
            if key in _TOOL_FIELDS or (kind and kind != "custom" and beta is None):
                clean[key] = value  # an Anthropic-defined tool's own fields go as sent
            elif beta is not None and beta in betas and (key != "defer_loading" or searching):
                clean[key] = value
            else:
                ignored.append(f"tools.{key}")
        kept.append(clean)
    if kept:
        body["tools"] = kept
    else:
        del body["tools"]
        body.pop("tool_choice", None)


def _synthesized_tools(body: InvokeBody, notes: dict[str, str]) -> None:
    """Bedrock refuses tool history without tools (Claude Code's compaction): declare the tools it names."""
    if body.get("tools"):
        return
    names: dict[str, None] = {}
    results = False
    for message in body["messages"]:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                names.setdefault(block["name"], None)
            results = results or block.get("type") == "tool_result"
    if not names and not results:
        return
    body["tools"] = [
        {"name": name, "description": SYNTHESIZED_DESCRIPTION, "input_schema": {"type": "object"}}
        for name in names or {"tool": None}
    ]
    notes[NOTE_SYNTHESIZED_TOOLS] = ",".join(t["name"] for t in body["tools"])


def _metadata(body: InvokeBody, ignored: list[str]) -> None:
    metadata = body.get("metadata")
    if metadata is None:
        return
    metadata = as_dict(metadata, "metadata")
    extra = [k for k in metadata if k != "user_id"]
    ignored.extend(f"metadata.{k}" for k in extra)
    kept = {k: v for k, v in metadata.items() if k == "user_id" and v is not None}
    if kept:
        body["metadata"] = kept
    else:
        del body["metadata"]

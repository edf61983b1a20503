"""Anthropic tool definitions and tool_choice to Converse ``toolConfig``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..bedrock import TOOL_NAME, TOOL_NAME_RULE, object_schema, tool_spec
from .content import (
    ContentContext,
    as_bool,
    as_dict,
    as_list,
    as_str,
    fail,
    is_claude,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ToolChoiceTypeDef,
        ToolConfigurationTypeDef,
        ToolTypeDef,
    )

    from ..types import JSONObject
    from .shapes import ToolChoice

FORCED_TOOL_WITH_THINKING = "Thinking may not be enabled when tool_choice forces tool use."
_TOOL_FIELDS = frozenset({"type", "name", "description", "input_schema", "cache_control", "strict"})
_STRIPPED_TOOL_FIELDS = frozenset(
    {"defer_loading", "input_examples", "allowed_callers", "eager_input_streaming"}
)


def tool_config(
    body: JSONObject, ctx: ContentContext, thinking: bool, ignored: list[str]
) -> tuple[ToolConfigurationTypeDef | None, ToolChoice | None]:
    """Converse ``toolConfig`` and, when parallel tool use is disabled, the Anthropic tool_choice to pass."""
    raw_tools = body.get("tools")
    tools: list[ToolTypeDef] = []
    names: set[str] = set()
    for j, item in enumerate([] if raw_tools is None else as_list(raw_tools, "tools")):
        tools.extend(_tool(item, f"tools.{j}", ctx, names, ignored))
    if tools and not ctx.family.tools:
        raise fail("tools", f"model family '{ctx.family.name}' does not support tools")
    raw_choice = body.get("tool_choice")
    if raw_choice is None:
        return ({"tools": tools} if tools else None), None
    choice = as_dict(raw_choice, "tool_choice")
    kind = choice.get("type")
    converse_choice: ToolChoiceTypeDef
    if kind == "auto":
        converse_choice = {"auto": {}}
    elif kind == "any":
        converse_choice = {"any": {}}
    elif kind == "tool":
        name = as_str(choice.get("name"), "tool_choice.name")
        if name not in names:
            raise fail("tool_choice.name", f"no tool named {name!r} in tools")
        converse_choice = {"tool": {"name": name}}
    elif kind == "none":
        # Converse has no "none": tools stay declared (history may use them), no choice is sent.
        return ({"tools": tools} if tools else None), None
    else:
        raise fail("tool_choice.type", "must be 'auto', 'any', 'tool' or 'none'")
    if thinking and kind in ("any", "tool"):
        raise fail("tool_choice", FORCED_TOOL_WITH_THINKING)
    allowed = {"type", "disable_parallel_tool_use"} | ({"name"} if kind == "tool" else set())
    extra = set(choice) - allowed
    if extra:
        raise fail(f"tool_choice.{sorted(extra)[0]}", "unknown field")
    if not tools:
        if kind == "auto":
            return None, None
        raise fail("tool_choice", "forces tool use but no tools are given")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and as_bool(disable, "tool_choice.disable_parallel_tool_use"):
        if not is_claude(ctx.family):
            ignored.append("tool_choice.disable_parallel_tool_use")
            return {"tools": tools, "toolChoice": converse_choice}, None
        # Converse cannot say it; Claude on Bedrock takes its native tool_choice in the additional fields.
        # Sending both would conflict, so the native form replaces Converse's toolChoice.
        native: ToolChoice = {"type": kind, "disable_parallel_tool_use": True}
        if kind == "tool":
            native["name"] = choice["name"]
        return {"tools": tools}, native
    return {"tools": tools, "toolChoice": converse_choice}, None


def _tool(
    item: Any, path: str, ctx: ContentContext, names: set[str], ignored: list[str]
) -> list[ToolTypeDef]:
    tool = as_dict(item, path)
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise fail(
            f"{path}.type",
            f"Anthropic-defined tool {kind!r} has no Bedrock Converse counterpart; declare a custom tool",
        )
    for key in tool:
        if key in _STRIPPED_TOOL_FIELDS:
            ignored.append(f"tools.{key}")
        elif key not in _TOOL_FIELDS:
            raise fail(f"{path}.{key}", "unknown field")
    name = as_str(tool.get("name"), f"{path}.name")
    if not TOOL_NAME.fullmatch(name):
        raise fail(f"{path}.name", TOOL_NAME_RULE)
    if name in names:
        raise fail(f"{path}.name", f"tool names must be unique; {name!r} is repeated")
    names.add(name)
    description = tool.get("description")
    strict = tool.get("strict")
    out: list[ToolTypeDef] = [
        tool_spec(
            name,
            object_schema(as_dict(tool.get("input_schema"), f"{path}.input_schema"), f"{path}.input_schema"),
            None if description is None else as_str(description, f"{path}.description"),
            strict=None if strict is None else as_bool(strict, f"{path}.strict"),
        )
    ]
    point = ctx.cache_point(tool.get("cache_control"), f"{path}.cache_control")
    if point is not None:
        out.append({"cachePoint": point})
    return out

"""Lowering what Anthropic accepts and Bedrock's Claude does not: golden cases, then through Converse."""

from __future__ import annotations

from typing import Any

import pytest
from test_anthropic_helpers import CLAUDE, assert_valid, body

from bedrock_mw.errors import GatewayError
from bedrock_mw.translate.anthropic import (
    AnthropicOptions,
    anthropic_count_tokens_request,
    anthropic_to_converse,
)
from bedrock_mw.translate.anthropic.lowering import (
    claude_generation,
    lower_request,
    takes_adaptive_thinking,
)

EPHEMERAL = {"type": "ephemeral"}
TOOL = {"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}
GREP = {"name": "Grep", "description": "Search files", "input_schema": {"type": "object"}}


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def system(*blocks: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "system", "content": list(blocks), **extra}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


def reminder(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": f"<system-reminder>\n{t}\n</system-reminder>", **extra}


USE = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "contents"}

# (name, body, expected messages after lowering, expected lowered note items)
MESSAGE_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], list[str]]] = [
    (
        "a system turn after a user turn joins that turn, cache mark kept, placement kept",
        body(messages=[user(text("hi")), system(text("# Environment", cache_control=EPHEMERAL))]),
        [user(text("hi"), reminder("# Environment", cache_control=EPHEMERAL))],
        ["system-turn:1"],
    ),
    (
        "a system turn between assistant and user turns leads the next user turn",
        body(messages=[user(text("a")), assistant(text("b")), system(text("s")), user(text("c"))]),
        [user(text("a")), assistant(text("b")), user(reminder("s"), text("c"))],
        ["system-turn:1"],
    ),
    (
        "tool results stay first in the user turn a system turn joins",
        body(messages=[user(text("a")), assistant(USE), system(text("s")), user(RESULT)]),
        [user(text("a")), assistant(USE), user(RESULT, reminder("s"))],
        ["system-turn:1"],
    ),
    (
        "a string system turn is one reminder",
        body(messages=[user(text("a")), {"role": "system", "content": "be brief"}]),
        [user(text("a"), reminder("be brief"))],
        ["system-turn:1"],
    ),
    (
        "a system turn first in the conversation is a user turn",
        body(messages=[system(text("s")), user(text("a"))]),
        [user(reminder("s"), text("a"))],
        ["system-turn:1"],
    ),
    (
        "a cleared system turn drops once a later user turn exists",
        body(
            messages=[
                user(text("a")),
                system(text("old"), clear_at="next_user_message"),
                assistant(text("b")),
                user(text("c")),
                system(text("new"), clear_at="next_user_message"),
            ]
        ),
        [user(text("a")), assistant(text("b")), user(text("c"), reminder("new"))],
        ["system-turn:1", "clear_at:1"],
    ),
    (
        "an effort-only system turn adds no content",
        body(messages=[user(text("a")), system(output_config={"effort": "low"})]),
        [user(text("a"))],
        ["system-turn:1", "per-turn-effort:low"],
    ),
]


@pytest.mark.parametrize(("name", "b", "messages", "notes"), MESSAGE_CASES, ids=[c[0] for c in MESSAGE_CASES])
def test_system_turns_are_lowered_to_user_text(
    name: str, b: dict[str, Any], messages: list[dict[str, Any]], notes: list[str]
) -> None:
    low = lower_request(b)
    assert low.body["messages"] == messages
    assert low.lowered == notes
    assert b["messages"][-1]["role"] in ("system", "user")  # the caller's body is not changed


def test_per_turn_effort_becomes_the_request_effort_last_one_winning() -> None:
    b = body(
        output_config={"effort": "high"},
        messages=[
            user(text("a")),
            system(text("x"), output_config={"effort": "medium"}),
            assistant(text("b")),
            system(output_config={"effort": "low"}),
            user(text("c")),
        ],
    )
    low = lower_request(b)
    assert low.body["output_config"] == {"effort": "low"}
    assert b["output_config"] == {"effort": "high"}


def test_tool_addition_by_reference_is_a_note_and_tools_stay_as_sent() -> None:
    add = {"type": "tool_addition", "tool": {"type": "tool_reference", "name": "Grep"}}
    low = lower_request(body(tools=[TOOL, GREP], messages=[user(text("a")), system(add)]))
    assert low.body["tools"] == [TOOL, GREP]
    assert low.body["messages"] == [user(text("a"), reminder("The tool `Grep` is now available."))]
    assert low.lowered == ["system-turn:1", "tool_addition:1"]


def test_tool_addition_by_value_declares_the_tool_at_the_end_of_tools() -> None:
    add = {"type": "tool_addition", "tool": {"type": "tool_definition", "definition": GREP}}
    low = lower_request(body(tools=[TOOL], messages=[user(text("a")), system(add)]))
    assert low.body["tools"] == [TOOL, GREP]


def test_tool_addition_by_value_declares_tools_when_none_were_sent() -> None:
    add = {"type": "tool_addition", "tool": {"type": "tool_definition", "definition": GREP}}
    low = lower_request(body(messages=[user(text("a")), system(add)]))
    assert low.body["tools"] == [GREP]


def test_tool_removal_keeps_the_tool_declared_and_tells_the_model() -> None:
    remove = {"type": "tool_removal", "tool": {"type": "tool_reference", "name": "Read"}}
    low = lower_request(
        body(tools=[TOOL], messages=[user(text("a")), assistant(USE), user(RESULT), system(remove)])
    )
    assert low.body["tools"] == [TOOL]  # history calls it, and the cached prefix keeps it
    assert low.body["messages"][-1] == user(
        RESULT, reminder("The tool `Read` is no longer available; do not call it.")
    )


def test_unknown_top_level_fields_are_dropped_and_named() -> None:
    low = lower_request(body(fancy_new_option={"x": 1}, other=2))
    assert "fancy_new_option" not in low.body and "other" not in low.body
    assert low.ignored == ["fancy_new_option", "other"]


def test_unknown_top_level_fields_are_refused_when_the_host_is_strict() -> None:
    with pytest.raises(GatewayError) as caught:
        lower_request(body(fancy_new_option=1), reject_unknown_fields=True)
    assert caught.value.param == "fancy_new_option"


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        (system(text("x"), colour="red"), "messages.1.colour"),
        (system(text("x"), clear_at="tomorrow"), "messages.1.clear_at"),
        (system({"type": "image"}), "messages.1.content.0.type"),
        (system(text("x"), output_config={"format": {}}), "messages.1.output_config.format"),
        (
            system({"type": "tool_removal", "tool": {"type": "tool_definition", "definition": GREP}}),
            "messages.1.content.0.tool.type",
        ),
    ],
)
def test_malformed_system_turns_are_refused_naming_the_field(bad: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        lower_request(body(messages=[user(text("a")), bad]))
    assert caught.value.param == param


def test_thinking_display_is_dropped_and_named() -> None:
    low = lower_request(
        body(thinking={"type": "adaptive", "display": "omitted"}), base_model_id="anthropic.claude-opus-4-7"
    )
    assert low.body["thinking"] == {"type": "adaptive"}
    assert "thinking.display" in low.ignored


@pytest.mark.parametrize(("effort", "budget"), [(None, 6000), ("low", 2000), ("medium", 4000), ("max", 6400)])
def test_adaptive_thinking_on_an_older_claude_becomes_a_budget(effort: str | None, budget: int) -> None:
    b = body(max_tokens=8000, thinking={"type": "adaptive"})
    if effort:
        b["output_config"] = {"effort": effort}
    low = lower_request(b, base_model_id="anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert low.body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert low.lowered == [f"thinking:adaptive->enabled({budget})"]


def test_a_count_drops_display_and_keeps_adaptive_thinking() -> None:
    b = body(thinking={"type": "adaptive", "display": "omitted"})
    low = lower_request(b, base_model_id="anthropic.claude-sonnet-4-5-20250929-v1:0", counting=True)
    assert low.body["thinking"] == {"type": "adaptive"}
    assert low.ignored == ["thinking.display"]


def test_adaptive_thinking_with_too_few_tokens_for_a_budget_is_turned_off() -> None:
    b = body(max_tokens=1000, thinking={"type": "adaptive"})
    low = lower_request(b, base_model_id="anthropic.claude-sonnet-4-20250514-v1:0")
    assert low.body["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize(
    ("model_id", "generation", "adaptive"),
    [
        ("anthropic.claude-opus-4-7", (4, 7), True),
        ("anthropic.claude-sonnet-4-6", (4, 6), True),
        ("anthropic.claude-opus-5-5", (5, 5), True),
        ("anthropic.claude-opus-5", (5, 0), True),
        ("anthropic.claude-opus-4-5-20251101-v1:0", (4, 5), False),
        ("anthropic.claude-sonnet-4-20250514-v1:0", (4, 0), False),
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", (3, 7), False),
        ("anthropic.claude-3-haiku-20240307-v1:0", (3, 0), False),
        ("amazon.nova-pro-v1:0", None, True),
    ],
)
def test_claude_generation_decides_adaptive_thinking(
    model_id: str, generation: tuple[int, int] | None, adaptive: bool
) -> None:
    assert claude_generation(model_id) == generation
    assert takes_adaptive_thinking(model_id) is adaptive


# -- through the Converse translator ---------------------------------------------------------------
CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-opus-5-5",
    "max_tokens": 32000,
    "system": [text("You are Claude Code.", cache_control=EPHEMERAL)],
    "messages": [
        user(text("fix the bug", cache_control=EPHEMERAL)),
        {
            "role": "system",
            "content": [text("# Environment\ncwd: /repo", cache_control=EPHEMERAL)],
            "output_config": {"effort": "medium"},
        },
        system({"type": "tool_addition", "tool": {"type": "tool_definition", "definition": GREP}}),
    ],
    "tools": [dict(TOOL, defer_loading=True)],
    "thinking": {"type": "adaptive", "display": "omitted"},
    "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "brand_new_sdk_field": True,
}
CLAUDE_CODE_BETAS = (
    "claude-code-20250219,mid-conversation-tool-changes-2026-07-01,per-turn-control-2026-07-01,"
    "effort-2025-11-24,context-management-2025-06-27"
)


def test_a_claude_code_request_translates_to_a_valid_converse_call() -> None:
    call = anthropic_to_converse(
        CLAUDE_CODE_BODY,
        CLAUDE,
        AnthropicOptions(),
        beta_header=CLAUDE_CODE_BETAS,
        model_id="anthropic.claude-opus-5-5",
    )
    assert_valid("Converse", {"modelId": "m", **call.request})
    request = call.request
    assert [m["role"] for m in request["messages"]] == ["user"]
    content = request["messages"][0]["content"]
    assert content[0] == {"text": "fix the bug"}
    assert "cachePoint" in content[1]  # the caller's own mark stays right after its block
    assert content[2]["text"].startswith("<system-reminder>\n# Environment")
    assert [t["toolSpec"]["name"] for t in request["toolConfig"]["tools"]] == ["Read", "Grep"]
    assert request["outputConfig"] == {"effort": "medium"}
    assert request["additionalModelRequestFields"]["thinking"] == {"type": "adaptive"}
    ignored = call.notes["x-bedrock-mw-ignored-params"].split(",")
    assert {"brand_new_sdk_field", "thinking.display", "tools.defer_loading"} <= set(ignored)
    assert call.notes["x-bedrock-mw-lowered"] == "system-turn:2,tool_addition:1,per-turn-effort:medium"


def test_count_tokens_lowers_the_same_way() -> None:
    request = anthropic_count_tokens_request(
        CLAUDE_CODE_BODY, CLAUDE, AnthropicOptions(), beta_header=CLAUDE_CODE_BETAS
    )
    assert_valid("CountTokens", {"modelId": "m", "input": request})
    assert [m["role"] for m in request["converse"]["messages"]] == ["user"]


def test_the_strict_option_reaches_the_converse_translator() -> None:
    with pytest.raises(GatewayError):
        anthropic_to_converse(body(extra=1), CLAUDE, AnthropicOptions(reject_unknown_fields=True))


def test_system_turns_with_malformed_tool_names_leave_the_names_to_the_translator() -> None:
    # Found by tests/ops/test_adversarial.py: a list as a tool name made the lowering raise TypeError.
    bad_tools = [{"name": None}, {"name": []}]
    low = lower_request(body(messages=[user(text("hi")), system(text("be brief"))], tools=bad_tools))
    assert low.body["tools"] == bad_tools
    with pytest.raises(GatewayError) as caught:
        anthropic_to_converse(low.body, CLAUDE, AnthropicOptions())
    assert caught.value.param == "tools.0.name"

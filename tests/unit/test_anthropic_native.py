"""Anthropic Messages bodies as native InvokeModel bodies: what passes as sent and what is lowered."""

from __future__ import annotations

from typing import Any

import pytest
from test_anthropic_helpers import CLAUDE, body

from bedrock_mw.errors import GatewayError
from bedrock_mw.translate.anthropic import AnthropicOptions
from bedrock_mw.translate.anthropic.native import BEDROCK_FIELDS, anthropic_to_invoke
from bedrock_mw.translate.anthropic.shapes import InvokeBody

OPTIONS = AnthropicOptions()
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
TOOL = {"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}


def invoke(b: dict[str, Any], betas: str | None = None, **kw: Any) -> Any:
    return anthropic_to_invoke(
        b, CLAUDE, OPTIONS, beta_header=betas, model_id=kw.pop("model_id", SONNET_45), **kw
    )


def test_the_typed_invoke_body_names_exactly_the_members_bedrock_takes() -> None:
    assert InvokeBody.__required_keys__ | InvokeBody.__optional_keys__ == BEDROCK_FIELDS


def test_the_body_passes_through_without_model_and_stream_with_the_bedrock_version() -> None:
    b = body(stream=True, system="Be brief.", temperature=0.5, stop_sequences=["END"])
    call = invoke(b)
    assert call.stream is True
    assert call.body == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "Hello"}],
        "system": "Be brief.",
        "temperature": 0.5,
        "stop_sequences": ["END"],
    }
    assert call.notes == {}


def test_betas_move_into_the_body_filtered_to_bedrocks_list() -> None:
    call = invoke(body(), "interleaved-thinking-2025-05-14,claude-code-20250219")
    assert call.body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    assert call.notes["x-bedrock-mw-dropped-betas"] == "claude-code-20250219"


@pytest.mark.parametrize(
    ("field", "value"),
    [("brand_new", {"x": 1}), ("service_tier", "auto"), ("diagnostics", {}), ("workspace_id", "w")],
)
def test_fields_bedrock_would_call_extraneous_are_dropped_and_named(field: str, value: Any) -> None:
    call = invoke(body(**{field: value}))
    assert set(call.body) <= BEDROCK_FIELDS and field not in call.body
    assert field in call.notes["x-bedrock-mw-ignored-params"].split(",")


def test_fields_that_would_change_the_answer_are_refused() -> None:
    with pytest.raises(GatewayError) as caught:
        invoke(body(container="c1"))
    assert caught.value.param == "container"


def test_top_level_cache_control_marks_the_last_block() -> None:
    call = invoke(body(cache_control={"type": "ephemeral"}))
    assert call.body["messages"][-1]["content"] == [
        {"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}
    ]
    assert "cache_control" not in call.body


def test_claude_codes_billing_line_leaves_the_system_prompt() -> None:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    ]
    assert invoke(body(system=system)).body["system"] == system[1:]


def test_deferred_tools_stay_deferred_with_tool_search_and_its_beta() -> None:
    search = {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}
    deferred = dict(TOOL, defer_loading=True)
    call = invoke(body(tools=[search, deferred]), "tool-search-tool-2025-10-19")
    assert call.body["tools"] == [search, deferred]


def test_deferred_tools_load_up_front_without_tool_search() -> None:
    call = invoke(body(tools=[dict(TOOL, defer_loading=True)]), "advanced-tool-use-2025-11-20")
    assert call.body["tools"] == [TOOL]
    assert "tools.defer_loading" in call.notes["x-bedrock-mw-ignored-params"]


def test_anthropic_defined_client_tools_pass_as_sent_and_server_tools_are_left_out() -> None:
    bash = {"type": "bash_20250124", "name": "bash"}
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    call = invoke(body(tools=[bash, web, TOOL]))
    assert call.body["tools"] == [bash, TOOL]
    assert "tools.web_search" in call.notes["x-bedrock-mw-ignored-params"]


def test_temperature_and_top_p_together_pass_as_sent() -> None:
    # Anthropic's own API refuses the pair on the models Bedrock refuses it on: nothing to lower.
    call = invoke(body(temperature=0.5, top_p=0.9))
    assert (call.body["temperature"], call.body["top_p"]) == (0.5, 0.9)


def test_metadata_keeps_only_user_id() -> None:
    call = invoke(body(metadata={"user_id": "u1", "tenant": "t"}))
    assert call.body["metadata"] == {"user_id": "u1"}
    assert "metadata.tenant" in call.notes["x-bedrock-mw-ignored-params"]


def test_context_management_needs_its_beta() -> None:
    edits = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    assert (
        invoke(body(context_management=edits), "context-management-2025-06-27").body["context_management"]
        == edits
    )
    assert "context_management" not in invoke(body(context_management=edits)).body


def test_lowering_runs_first_mid_conversation_system_turns_become_user_text() -> None:
    b = body(messages=[{"role": "user", "content": "a"}, {"role": "system", "content": "be brief"}])
    call = invoke(b)
    assert [m["role"] for m in call.body["messages"]] == ["user"]
    assert call.notes["x-bedrock-mw-lowered"] == "system-turn:1"


def test_a_count_tokens_body_is_complete_and_unaffected_by_sampling() -> None:
    b = body(
        temperature=0.2,
        top_k=5,
        metadata={"user_id": "u"},
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    del b["max_tokens"]
    call = invoke(b, counting=True)
    assert call.body["max_tokens"] == 1
    assert not {"temperature", "top_k", "metadata", "thinking"} & set(call.body)


def test_a_missing_max_tokens_is_refused_before_bedrock() -> None:
    b = body()
    del b["max_tokens"]
    with pytest.raises(GatewayError) as caught:
        invoke(b)
    assert caught.value.param == "max_tokens"


def test_tool_history_without_tools_declares_the_tools_it_names() -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}
    b = body(
        messages=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [result]},
        ]
    )
    call = invoke(b)
    assert [t["name"] for t in call.body["tools"]] == ["Read"]
    assert call.notes["x-bedrock-mw-synthesized-tools"] == "Read"

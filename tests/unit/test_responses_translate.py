"""Responses request → Converse (docs/responses.md), golden cases; and the answer → response object."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bedrock_mw.errors import GatewayError
from bedrock_mw.routing.families import family_of
from bedrock_mw.translate.openai import OpenAIOptions
from bedrock_mw.translate.responses import (
    ReasoningSeal,
    ResponseHead,
    ResponsesOptions,
    converse_to_response,
    responses_to_converse,
)

CLAUDE = family_of("anthropic.claude-sonnet-4-5-20250929-v1:0")
NOVA = family_of("amazon.nova-lite-v1:0")
SEAL = ReasoningSeal("test-secret")
OPTIONS = ResponsesOptions()
TOOL = {"type": "function", "name": "get", "parameters": {"type": "object", "properties": {}}}


def translate(body: dict[str, Any], family: Any = CLAUDE, **kw: Any) -> Any:
    return responses_to_converse({"model": "m", **body}, family, OPTIONS, SEAL, **kw)


GOLDEN: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "a string input is one user turn",
        {"input": "Hi"},
        {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]},
    ),
    (
        "instructions become the system prompt; sampling maps to inferenceConfig (newer Claude: no topP)",
        {
            "input": "Hi",
            "instructions": "Be terse.",
            "max_output_tokens": 64,
            "temperature": 0.5,
            "top_p": 0.9,
        },
        {
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "system": [{"text": "Be terse."}],
            "inferenceConfig": {"maxTokens": 64, "temperature": 0.5},
        },
    ),
    (
        "input_text parts and an assistant message with output_text",
        {
            "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "A"}]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "B"}]},
                {"role": "user", "content": "C"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": [{"text": "A"}]},
                {"role": "assistant", "content": [{"text": "B"}]},
                {"role": "user", "content": [{"text": "C"}]},
            ]
        },
    ),
    (
        "function_call and function_call_output items become toolUse and toolResult",
        {
            "input": [
                {"role": "user", "content": "weather?"},
                {"type": "function_call", "call_id": "c1", "name": "get", "arguments": '{"a": 1}'},
                {"type": "function_call", "call_id": "c2", "name": "get", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "two"}],
                },
            ],
            "tools": [TOOL],
            "tool_choice": {"type": "function", "name": "get"},
        },
        {
            "messages": [
                {"role": "user", "content": [{"text": "weather?"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"toolUse": {"toolUseId": "c1", "name": "get", "input": {"a": 1}}},
                        {"toolUse": {"toolUseId": "c2", "name": "get", "input": {}}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"toolResult": {"toolUseId": "c1", "content": [{"text": "one"}]}},
                        {"toolResult": {"toolUseId": "c2", "content": [{"text": "two"}]}},
                    ],
                },
            ],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get",
                            "inputSchema": {"json": {"type": "object", "properties": {}}},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": "get"}},
            },
        },
    ),
    (
        "reasoning effort turns on Claude's thinking with a budget",
        {"input": "Hi", "reasoning": {"effort": "low", "summary": "auto"}},
        {
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "inferenceConfig": {"maxTokens": 2048 + 4096},
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 2048}},
        },
    ),
    (
        "text.format json_schema is native structured output",
        {
            "input": "Hi",
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
        },
        {
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "outputConfig": {
                "textFormat": {
                    "type": "json_schema",
                    "structure": {"jsonSchema": {"schema": '{"type":"object"}', "name": "out"}},
                }
            },
        },
    ),
    (
        "metadata becomes requestMetadata",
        {"input": "Hi", "metadata": {"team": "a"}},
        {"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "requestMetadata": {"team": "a"}},
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_requests(name: str, body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert translate(body).converse.request == expected


def test_a_sealed_reasoning_item_is_restored_at_the_start_of_its_assistant_turn() -> None:
    block = {"reasoningContent": {"reasoningText": {"text": "thinking", "signature": "sig"}}}
    body = {
        "input": [
            {"role": "user", "content": "Hi"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": SEAL.seal([block])},
            {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
        "tools": [TOOL],
    }
    turns = translate(body).converse.request["messages"]
    assert turns[1]["content"][0] == block
    assert "toolUse" in turns[1]["content"][1]


def test_a_redacted_reasoning_block_survives_the_seal() -> None:
    block = {"reasoningContent": {"redactedContent": b"\x00\x01opaque"}}
    assert SEAL.open(SEAL.seal([block]), "p") == [block]


def test_another_gateways_seal_is_refused() -> None:
    sealed = ReasoningSeal("other-secret").seal([{"reasoningContent": {"reasoningText": {"text": "x"}}}])
    with pytest.raises(GatewayError) as caught:
        SEAL.open(sealed, "input[1].encrypted_content")
    assert caught.value.param == "input[1].encrypted_content"


def test_a_tampered_seal_is_refused() -> None:
    sealed = SEAL.seal([{"reasoningContent": {"reasoningText": {"text": "x", "signature": "s"}}}])
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(GatewayError):
        SEAL.open(tampered, "p")


def test_a_reasoning_item_without_encrypted_content_is_left_out() -> None:
    body = {
        "input": [
            {"role": "user", "content": "Hi"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}]},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Again"},
        ]
    }
    assert translate(body).converse.request["messages"][1] == {
        "role": "assistant",
        "content": [{"text": "Hello"}],
    }


def test_history_comes_before_the_new_input() -> None:
    history = [{"type": "message", "role": "user", "content": "A"}, {"role": "assistant", "content": "B"}]
    turns = translate({"input": "C"}, history=history).converse.request["messages"]
    assert [t["content"][0]["text"] for t in turns] == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": "Hi", "tools": [{"type": "web_search"}]}, "tools[0].type", "'web_search'"),
        ({"input": "Hi", "tools": [{"type": "custom", "name": "x"}]}, "tools[0].type", "'custom'"),
        ({"input": [{"type": "local_shell_call"}]}, "input[0].type", "'local_shell_call'"),
        ({"input": "Hi", "tool_choice": {"type": "web_search_preview"}}, "tool_choice", "web_search_preview"),
        ({"input": "Hi", "background": True}, "background", "background"),
        ({"input": 3}, "input", "string"),
        ({"input": "Hi", "max_output_tokens": 0}, "max_output_tokens", "positive"),
        ({"input": "Hi", "reasoning": {"effort": "huge"}}, "reasoning.effort", "reasoning.effort"),
        ({"input": "Hi", "text": {"format": {"type": "xml"}}}, "text.format.type", "json_schema"),
        ({"input": "Hi", "truncation": "sometimes"}, "truncation", "auto"),
        (
            {
                "input": [
                    {"role": "user", "content": "Hi"},
                    {"type": "function_call_output", "call_id": "x", "output": "o"},
                ]
            },
            "input[1].call_id",
            "input[1]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].image_url",
            "file_id",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_callers_field(body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(GatewayError) as caught:
        translate(body)
    assert caught.value.http_status == 400
    assert caught.value.param == param
    assert words in caught.value.message


def test_unknown_fields_are_named_and_refused_when_the_host_is_strict() -> None:
    call = translate({"input": "Hi", "brand_new": 1, "parallel_tool_calls": False, "truncation": "auto"})
    assert call.notes["x-bedrock-mw-ignored-params"] == "brand_new"
    assert call.notes["x-bedrock-mw-dropped-params"] == "parallel_tool_calls,truncation"
    strict = ResponsesOptions(openai=OpenAIOptions(), reject_unknown_fields=True)
    with pytest.raises(GatewayError):
        responses_to_converse({"model": "m", "input": "Hi", "brand_new": 1}, CLAUDE, strict, SEAL)


def test_include_and_store_are_read() -> None:
    call = translate({"input": "Hi", "include": ["reasoning.encrypted_content"], "store": False})
    assert call.include_encrypted and not call.store
    assert translate({"input": "Hi"}).store


def test_a_converse_answer_becomes_items_in_block_order_with_usage() -> None:
    call = translate({"input": "Hi", "tools": [TOOL]})
    head = ResponseHead(model="m", echo=call.echo, id="resp_1", created_at=5)
    answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                    {"text": "Calling."},
                    {"toolUse": {"toolUseId": "t1", "name": "get", "input": {"a": 1}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, "cacheReadInputTokens": 4},
    }
    response, kept = converse_to_response(answer, head, call, SEAL)
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["output"][0]["summary"] == [{"type": "summary_text", "text": "hmm"}]
    assert response["output"][0]["encrypted_content"] is None  # not included: not shown
    assert (
        SEAL.open(kept[0]["encrypted_content"], "p")[0]["reasoningContent"]["reasoningText"]["signature"]
        == "s"
    )
    assert response["output"][2]["call_id"] == "t1" and response["output"][2]["arguments"] == '{"a":1}'
    assert response["usage"] == {
        "input_tokens": 14,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 19,
    }
    assert response["status"] == "completed" and response["tool_choice"] == "auto"


def test_strict_reaches_the_tool_spec_where_the_family_enforces_schemas_and_is_named_where_not() -> None:
    strict_tool = {**TOOL, "strict": True}
    spec = translate({"input": "Hi", "tools": [strict_tool]}).converse.request["toolConfig"]["tools"][0]
    assert spec["toolSpec"]["strict"] is True
    llama = family_of("meta.llama3-1-70b-instruct-v1:0")
    call = translate({"input": "Hi", "tools": [strict_tool]}, family=llama)
    assert "strict" not in call.converse.request["toolConfig"]["tools"][0]["toolSpec"]
    assert call.notes["x-bedrock-mw-dropped-params"] == "strict"


def test_thinking_is_turned_off_and_named_when_the_last_tool_turn_has_no_thinking_to_replay() -> None:
    """The Agents SDK sends reasoning items back without encrypted_content: Claude would refuse."""
    body = {
        "input": [
            {"role": "user", "content": "Hi"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
        "tools": [TOOL],
        "reasoning": {"effort": "low"},
    }
    call = translate(body)
    assert "additionalModelRequestFields" not in call.converse.request
    assert call.notes["x-bedrock-mw-lowered"] == "thinking:off(no-thinking-block-to-replay)"


def test_thinking_stays_on_when_the_sealed_thinking_is_replayed() -> None:
    block = {"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}}
    body = {
        "input": [
            {"role": "user", "content": "Hi"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": SEAL.seal([block])},
            {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
        "tools": [TOOL],
        "reasoning": {"effort": "low"},
    }
    call = translate(body)
    assert call.converse.request["additionalModelRequestFields"]["thinking"]["type"] == "enabled"
    assert "x-bedrock-mw-lowered" not in call.notes


def test_images_in_tool_outputs_follow_all_the_tool_results_of_their_turn() -> None:
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    body = {
        "input": [
            {"role": "user", "content": "look"},
            {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "get", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [{"type": "input_text", "text": "shot"}, {"type": "input_image", "image_url": png}],
            },
            {"type": "function_call_output", "call_id": "c2", "output": "done"},
        ],
        "tools": [TOOL],
    }
    call = translate(body)
    last = call.converse.request["messages"][-1]["content"]
    assert [next(iter(block)) for block in last] == ["toolResult", "toolResult", "image"]
    assert last[0]["toolResult"]["content"][0] == {"text": "shot"}
    assert "image" in last[0]["toolResult"]["content"][1]["text"]
    assert last[2]["image"]["format"] == "png"
    assert call.notes["x-bedrock-mw-lowered"] == "tool-output-images:1"


def test_a_reasoning_item_id_names_its_response() -> None:
    from bedrock_mw.translate.responses import response_of_reasoning_id

    head = ResponseHead(model="m", echo={}, id="resp_abc123")
    assert response_of_reasoning_id(head.reasoning_id(3)) == "resp_abc123"
    assert response_of_reasoning_id("rs_somebody_else") is None
    assert response_of_reasoning_id("msg_1") is None and response_of_reasoning_id(None) is None

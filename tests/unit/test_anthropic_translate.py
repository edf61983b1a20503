"""Golden cases for Anthropic Messages <-> Converse translation (requests, refusals, responses)."""

from __future__ import annotations

import string
from typing import Any

import pytest
from test_anthropic_helpers import (
    CLAUDE,
    CLAUDE_3,
    LLAMA,
    MISTRAL,
    NOVA,
    PDF,
    PDF_B64,
    PNG,
    PNG_B64,
    assert_valid,
    body,
)

from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.families import ModelFamily
from bedrock_mw.translate.anthropic import (
    AnthropicOptions,
    anthropic_count_tokens_request,
    anthropic_to_converse,
    converse_to_anthropic,
    image_urls,
    new_message_id,
)
from bedrock_mw.translate.anthropic.betas import DEFAULT_SUPPORTED_BETAS, parse_beta_header, split_betas
from bedrock_mw.translate.types import ConverseCall

OPTIONS = AnthropicOptions()


def translate(b: Any, family: ModelFamily = CLAUDE, **kw: Any) -> ConverseCall:
    options = kw.pop("options", OPTIONS)
    call = anthropic_to_converse(b, family, options, **kw)
    assert_valid("Converse", {"modelId": "m", **call.request})
    return call


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


EPHEMERAL = {"type": "ephemeral"}
POINT = {"cachePoint": {"type": "default"}}
TOOL = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}

# -- requests: golden cases ------------------------------------------------------------------------

# (name, body, key of the Converse request to compare, its expected value)
REQUEST_CASES: list[tuple[str, dict[str, Any], str, Any]] = [
    (
        "string content becomes one text block",
        body(),
        "messages",
        [{"role": "user", "content": [{"text": "Hello"}]}],
    ),
    ("max_tokens becomes inferenceConfig.maxTokens", body(), "inferenceConfig", {"maxTokens": 1000}),
    (
        "sampling parameters go to inferenceConfig",
        body(temperature=0.5, top_p=0.9, stop_sequences=["END", "STOP"]),
        "inferenceConfig",
        {"maxTokens": 1000, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END", "STOP"]},
    ),
    (
        "stop sequences ask Bedrock which one matched",
        body(stop_sequences=["END"]),
        "additionalModelResponseFieldPaths",
        ["/stop_sequence"],
    ),
    ("top_k goes to the additional fields", body(top_k=5), "additionalModelRequestFields", {"top_k": 5}),
    ("string system becomes one system entry", body(system="Be brief"), "system", [{"text": "Be brief"}]),
    (
        "system blocks keep order and cache marks",
        body(system=[text("A", cache_control=EPHEMERAL), text("B")]),
        "system",
        [{"text": "A"}, POINT, {"text": "B"}],
    ),
    (
        "Claude Code's billing header system block is dropped with its cache mark",
        body(
            system=[text("x-anthropic-billing-header: cc_version=1", cache_control=EPHEMERAL), text("Rules")]
        ),
        "system",
        [{"text": "Rules"}],
    ),
    ("blank system text is dropped", body(system=[text("  "), text("S")]), "system", [{"text": "S"}]),
    (
        "consecutive same-role turns are merged",
        body(messages=[user(text("a")), {"role": "user", "content": "b"}, assistant(text("c"))]),
        "messages",
        [
            {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
            {"role": "assistant", "content": [{"text": "c"}]},
        ],
    ),
    (
        "blank text blocks are dropped",
        body(messages=[user(text(""), text("x"), text(" \n"))]),
        "messages",
        [{"role": "user", "content": [{"text": "x"}]}],
    ),
    (
        "cache_control on a content block inserts a cache point after it",
        body(messages=[user(text("a", cache_control={"type": "ephemeral", "ttl": "1h"}), text("b"))]),
        "messages",
        [
            {
                "role": "user",
                "content": [{"text": "a"}, {"cachePoint": {"type": "default", "ttl": "1h"}}, {"text": "b"}],
            }
        ],
    ),
    (
        "top-level cache_control marks the end of the last message",
        body(cache_control=EPHEMERAL),
        "messages",
        [{"role": "user", "content": [{"text": "Hello"}, POINT]}],
    ),
    (
        "base64 image becomes bytes",
        body(
            messages=[
                user(
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    }
                )
            ]
        ),
        "messages",
        [{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": PNG}}}]}],
    ),
    (
        "PDF document gets a default name",
        body(
            messages=[
                user(
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
                    }
                )
            ]
        ),
        "messages",
        [
            {
                "role": "user",
                "content": [{"document": {"format": "pdf", "name": "document-1", "source": {"bytes": PDF}}}],
            }
        ],
    ),
    (
        "text document titles are sanitised and made unique",
        body(
            messages=[
                user(
                    {
                        "type": "document",
                        "title": "Q3 report.txt!!",
                        "context": "finance",
                        "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
                    },
                    {
                        "type": "document",
                        "title": "Q3 report.txt",
                        "source": {"type": "content", "content": "yo"},
                    },
                )
            ]
        ),
        "messages",
        [
            {
                "role": "user",
                "content": [
                    {
                        "document": {
                            "format": "txt",
                            "name": "Q3 report txt",
                            "source": {"bytes": b"hi"},
                            "context": "finance",
                        }
                    },
                    {
                        "document": {
                            "format": "txt",
                            "name": "Q3 report txt (2)",
                            "source": {"content": [{"text": "yo"}]},
                        }
                    },
                ],
            }
        ],
    ),
    (
        "tool use, tool result and thinking blocks",
        body(
            messages=[
                user(text("weather?")),
                assistant(
                    {"type": "thinking", "thinking": "let me", "signature": "c2ln"},
                    {"type": "redacted_thinking", "data": "AAEC"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ),
                user(
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": True,
                        "content": [
                            text("boom"),
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/gif", "data": PNG_B64},
                            },
                        ],
                    },
                ),
            ],
            tools=[TOOL],
        ),
        "messages",
        [
            {"role": "user", "content": [{"text": "weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "let me", "signature": "c2ln"}}},
                    {"reasoningContent": {"redactedContent": b"\x00\x01\x02"}},
                    {"toolUse": {"toolUseId": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "toolu_1", "content": [{"text": "sunny"}]}},
                    {
                        "toolResult": {
                            "toolUseId": "toolu_2",
                            "status": "error",
                            "content": [
                                {"text": "boom"},
                                {"image": {"format": "gif", "source": {"bytes": PNG}}},
                            ],
                        }
                    },
                ],
            },
        ],
    ),
    (
        "a cache mark inside a tool result becomes one point after it",
        body(
            messages=[
                user(
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [text("x", cache_control=EPHEMERAL)],
                    }
                )
            ],
            tools=[TOOL],
        ),
        "messages",
        [
            {
                "role": "user",
                "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "x"}]}}, POINT],
            }
        ],
    ),
    (
        "an empty tool result has empty content",
        body(messages=[user({"type": "tool_result", "tool_use_id": "t1", "content": ""})], tools=[TOOL]),
        "messages",
        [{"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": []}}]}],
    ),
    (
        "search results pass through",
        body(messages=[user({"type": "search_result", "source": "s", "title": "t", "content": [text("c")]})]),
        "messages",
        [
            {
                "role": "user",
                "content": [{"searchResult": {"source": "s", "title": "t", "content": [{"text": "c"}]}}],
            }
        ],
    ),
    (
        "tools become toolSpecs; defer_loading is stripped; cache marks follow the tool",
        body(tools=[{**TOOL, "defer_loading": True, "cache_control": EPHEMERAL, "strict": True}]),
        "toolConfig",
        {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather",
                        "inputSchema": {"json": {"type": "object"}},
                        "strict": True,
                    }
                },
                POINT,
            ]
        },
    ),
    (
        "tool_choice auto",
        body(tools=[TOOL], tool_choice={"type": "auto"}),
        "toolConfig",
        {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather",
                        "inputSchema": {"json": {"type": "object"}},
                    }
                }
            ],
            "toolChoice": {"auto": {}},
        },
    ),
    (
        "tool_choice any",
        body(tools=[TOOL], tool_choice={"type": "any"}),
        "toolConfig",
        {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather",
                        "inputSchema": {"json": {"type": "object"}},
                    }
                }
            ],
            "toolChoice": {"any": {}},
        },
    ),
    (
        "tool_choice tool",
        body(tools=[TOOL], tool_choice={"type": "tool", "name": "get_weather"}),
        "toolConfig",
        {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather",
                        "inputSchema": {"json": {"type": "object"}},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": "get_weather"}},
        },
    ),
    (
        "tool_choice none keeps the tools and sends no choice",
        body(tools=[TOOL], tool_choice={"type": "none"}),
        "toolConfig",
        {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather",
                        "inputSchema": {"json": {"type": "object"}},
                    }
                }
            ]
        },
    ),
    (
        "disable_parallel_tool_use sends Claude's native tool_choice instead",
        body(tools=[TOOL], tool_choice={"type": "any", "disable_parallel_tool_use": True}),
        "additionalModelRequestFields",
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
    ),
    (
        "tool history without tools declares the tools it names",
        body(
            messages=[
                user(text("q")),
                assistant({"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}),
                user({"type": "tool_result", "tool_use_id": "t1", "content": "ok"}, text("summarise")),
            ]
        ),
        "toolConfig",
        {
            "tools": [
                {
                    "toolSpec": {
                        "name": "Bash",
                        "description": "A tool used earlier in this conversation.",
                        "inputSchema": {"json": {"type": "object"}},
                    }
                }
            ]
        },
    ),
    (
        "manual thinking",
        body(
            max_tokens=2000,
            thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"},
            temperature=1,
        ),
        "additionalModelRequestFields",
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    ),
    (
        "adaptive thinking with effort",
        body(thinking={"type": "adaptive"}, output_config={"effort": "high"}),
        "additionalModelRequestFields",
        {"thinking": {"type": "adaptive"}},
    ),
    (
        "effort goes to Converse outputConfig",
        body(output_config={"effort": "low"}),
        "outputConfig",
        {"effort": "low"},
    ),
    (
        "a JSON schema format becomes outputConfig.textFormat",
        body(output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}}),
        "outputConfig",
        {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": '{"type":"object"}'}}}},
    ),
    (
        "metadata.user_id becomes request metadata",
        body(metadata={"user_id": "u-1 {x}"}),
        "requestMetadata",
        {"user_id": "u-1 _x_"},
    ),
    (
        "service_tier standard_only is Bedrock's default tier",
        body(service_tier="standard_only"),
        "serviceTier",
        {"type": "default"},
    ),
]


@pytest.mark.parametrize(("name", "b", "key", "expected"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_request_translation(name: str, b: dict[str, Any], key: str, expected: Any) -> None:
    assert translate(b).request[key] == expected


def test_minimal_request_is_exactly_messages_and_inference_config() -> None:
    call = translate(body())
    assert call.request == {
        "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        "inferenceConfig": {"maxTokens": 1000},
    }
    assert call.stream is False and call.stop_sequences == () and call.notes == {}


def test_stream_flag_and_stop_sequences_are_carried() -> None:
    call = translate(body(stream=True, stop_sequences=["X"]))
    assert call.stream is True and call.stop_sequences == ("X",)


def test_service_tier_auto_sends_no_tier() -> None:
    assert "serviceTier" not in translate(body(service_tier="auto")).request


def test_no_cache_points_for_families_without_caching_and_the_drop_is_reported() -> None:
    call = translate(body(system=[text("s", cache_control=EPHEMERAL)], cache_control=EPHEMERAL), CLAUDE_3)
    assert call.request["system"] == [{"text": "s"}]
    assert call.request["messages"][0]["content"] == [{"text": "Hello"}]
    assert call.notes["x-bedrock-mw-dropped-cache-control"] == "2"


def test_supported_betas_are_forwarded_and_others_reported() -> None:
    header = (
        "claude-code-20250219, interleaved-thinking-2025-05-14,context-1m-2025-08-07,"
        "interleaved-thinking-2025-05-14"
    )
    call = translate(body(), beta_header=header)
    assert call.request["additionalModelRequestFields"]["anthropic_beta"] == [
        "interleaved-thinking-2025-05-14",
        "context-1m-2025-08-07",
    ]
    assert call.notes["x-bedrock-mw-dropped-betas"] == "claude-code-20250219"


def test_host_can_override_the_supported_betas() -> None:
    options = AnthropicOptions(supported_betas=frozenset({"claude-code-20250219"}))
    call = translate(body(), beta_header="claude-code-20250219,context-1m-2025-08-07", options=options)
    assert call.request["additionalModelRequestFields"]["anthropic_beta"] == ["claude-code-20250219"]
    assert call.notes["x-bedrock-mw-dropped-betas"] == "context-1m-2025-08-07"


def test_betas_are_never_sent_to_non_claude_models() -> None:
    call = translate(body(), NOVA, beta_header="context-1m-2025-08-07")
    assert "additionalModelRequestFields" not in call.request
    assert call.notes["x-bedrock-mw-dropped-betas"] == "context-1m-2025-08-07"


def test_top_k_on_nova_uses_its_inference_config() -> None:
    assert translate(body(top_k=3), NOVA).request["additionalModelRequestFields"] == {
        "inferenceConfig": {"topK": 3}
    }


def test_context_management_is_forwarded_only_with_its_beta() -> None:
    cm = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    on = translate(body(context_management=cm), beta_header="context-management-2025-06-27")
    assert on.request["additionalModelRequestFields"]["context_management"] == cm
    off = translate(body(context_management=cm))
    assert "additionalModelRequestFields" not in off.request
    assert off.notes["x-bedrock-mw-ignored-params"] == "context_management"


def test_ignored_fields_are_reported() -> None:
    call = translate(
        body(diagnostics={"previous_message_id": "msg_1"}, tools=[{**TOOL, "defer_loading": False}])
    )
    assert call.notes["x-bedrock-mw-ignored-params"] == "diagnostics,tools.defer_loading"


def test_interleaved_thinking_lets_the_budget_exceed_max_tokens() -> None:
    b = body(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 4000})
    with pytest.raises(GatewayError):
        translate(b)
    call = translate(b, beta_header="interleaved-thinking-2025-05-14")
    assert call.request["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 4000


def test_thinking_disabled_sends_nothing() -> None:
    assert "additionalModelRequestFields" not in translate(body(thinking={"type": "disabled"})).request


def test_fetched_url_image_is_used_when_the_host_allows_fetching() -> None:
    url = "https://example.com/a.png"
    b = body(messages=[user({"type": "image", "source": {"type": "url", "url": url}})])
    options = AnthropicOptions(allow_url_fetch=True)
    call = translate(b, options=options, media={url: (PNG, "image/png; charset=binary")})
    assert call.request["messages"][0]["content"] == [{"image": {"format": "png", "source": {"bytes": PNG}}}]


def test_fetched_url_pdf_document() -> None:
    url = "https://example.com/a.pdf"
    b = body(messages=[user({"type": "document", "source": {"type": "url", "url": url}})])
    call = translate(b, options=AnthropicOptions(allow_url_fetch=True), media={url: (PDF, "application/pdf")})
    assert call.request["messages"][0]["content"][0]["document"]["format"] == "pdf"


def test_image_urls_lists_every_url_source_once() -> None:
    b = body(
        messages=[
            user({"type": "image", "source": {"type": "url", "url": "u1"}}, text("x")),
            assistant(text("y")),
            user(
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "image", "source": {"type": "url", "url": "u2"}}],
                },
                {"type": "document", "source": {"type": "url", "url": "u3"}},
                {"type": "image", "source": {"type": "url", "url": "u1"}},
            ),
        ]
    )
    assert image_urls(b) == ["u1", "u2", "u3"]
    assert image_urls({"messages": "junk"}) == [] and image_urls([]) == []  # type: ignore[arg-type]


def test_count_tokens_input_shape() -> None:
    b = body(max_tokens=..., system="S", tools=[TOOL], thinking={"type": "enabled", "budget_tokens": 2048})
    out = anthropic_count_tokens_request(b, CLAUDE, OPTIONS)
    assert out == {
        "converse": {
            "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
            "system": [{"text": "S"}],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get_weather",
                            "description": "Weather",
                            "inputSchema": {"json": {"type": "object"}},
                        }
                    }
                ]
            },
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 2048}},
        }
    }
    assert_valid("CountTokens", {"modelId": "m", "input": out})


def test_count_tokens_ignores_sampling_fields() -> None:
    out = anthropic_count_tokens_request(body(temperature=0.2, stream=True), CLAUDE, OPTIONS)
    assert set(out["converse"]) == {"messages"}


# -- requests: refusals ----------------------------------------------------------------------------

# (name, body, family, expected param, a fragment of the message)
REFUSALS: list[tuple[str, Any, ModelFamily, str, str]] = [
    ("body not an object", [], CLAUDE, "body", "object"),
    ("model missing", body(model=...), CLAUDE, "model", "required"),
    ("max_tokens missing", body(max_tokens=...), CLAUDE, "max_tokens", "integer"),
    ("max_tokens zero", body(max_tokens=0), CLAUDE, "max_tokens", "at least 1"),
    ("max_tokens boolean", body(max_tokens=True), CLAUDE, "max_tokens", "integer"),
    ("messages empty", body(messages=[]), CLAUDE, "messages", "at least one"),
    (
        "first message from assistant",
        body(messages=[assistant(text("hi"))]),
        CLAUDE,
        "messages.0.role",
        "first message",
    ),
    ("blank message", body(messages=[user(text(" "))]), CLAUDE, "messages.0.content", "non-blank"),
    (
        "unknown message role",
        body(messages=[{"role": "tool", "content": "x"}]),
        CLAUDE,
        "messages.0.role",
        "'user'",
    ),
    ("container", body(container="c1"), CLAUDE, "container", "Anthropic's servers"),
    (
        "mcp servers",
        body(mcp_servers=[{"type": "url", "url": "u", "name": "n"}]),
        CLAUDE,
        "mcp_servers",
        "MCP",
    ),
    ("fast mode", body(speed="fast"), CLAUDE, "speed", "fast mode"),
    ("temperature range", body(temperature=1.5), CLAUDE, "temperature", "between 0 and 1"),
    ("service tier", body(service_tier="priority"), CLAUDE, "service_tier", "'auto' or 'standard_only'"),
    ("empty stop sequence", body(stop_sequences=[""]), CLAUDE, "stop_sequences.0", "empty"),
    (
        "bad media type",
        body(
            messages=[
                user(
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/bmp", "data": PNG_B64},
                    }
                )
            ]
        ),
        CLAUDE,
        "messages.0.content.0.source.media_type",
        "image/jpeg",
    ),
    (
        "bad base64",
        body(
            messages=[
                user({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "!!"}})
            ]
        ),
        CLAUDE,
        "messages.0.content.0.source.data",
        "base64",
    ),
    (
        "image URL without fetching",
        body(messages=[user({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}})]),
        CLAUDE,
        "messages.0.content.0.source.url",
        "image URLs are not fetched by this gateway; send base64",
    ),
    (
        "images on a text-only family",
        body(
            messages=[
                user(
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    }
                )
            ]
        ),
        LLAMA,
        "messages.0.content.0",
        "does not accept images",
    ),
    (
        "file sources",
        body(messages=[user({"type": "document", "source": {"type": "file", "file_id": "f"}})]),
        CLAUDE,
        "messages.0.content.0.source.type",
        "Files API",
    ),
    (
        "search result citations",
        body(
            messages=[
                user(
                    {
                        "type": "search_result",
                        "source": "s",
                        "title": "t",
                        "content": [{"type": "text", "text": "x"}],
                        "citations": {"enabled": True},
                    }
                )
            ]
        ),
        CLAUDE,
        "messages.0.content.0.citations",
        "citations",
    ),
    (
        "document citations not a boolean",
        body(
            messages=[
                user(
                    {
                        "type": "document",
                        "citations": {"enabled": "yes"},
                        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                    }
                )
            ]
        ),
        CLAUDE,
        "messages.0.content.0.citations.enabled",
        "boolean",
    ),
    (
        "server tool blocks",
        body(
            messages=[
                user(text("q")),
                assistant({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}),
            ]
        ),
        CLAUDE,
        "messages.1.content.0.type",
        "server tools",
    ),
    (
        "tool_use in a user message",
        body(messages=[user({"type": "tool_use", "id": "t", "name": "n", "input": {}})]),
        CLAUDE,
        "messages.0.content.0.type",
        "assistant messages",
    ),
    (
        "cache_control on thinking",
        body(
            messages=[
                user(text("q")),
                assistant(
                    {"type": "thinking", "thinking": "t", "signature": "s", "cache_control": EPHEMERAL}
                ),
            ]
        ),
        CLAUDE,
        "messages.1.content.0.cache_control",
        "thinking",
    ),
    (
        "too many cache marks",
        body(system=[text(str(i), cache_control=EPHEMERAL) for i in range(5)]),
        CLAUDE,
        "cache_control",
        "at most 4 cache_control blocks",
    ),
    (
        "bad cache ttl",
        body(system=[text("s", cache_control={"type": "ephemeral", "ttl": "2h"})]),
        CLAUDE,
        "system.0.cache_control.ttl",
        "'5m' or '1h'",
    ),
    (
        "server tool",
        body(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
        CLAUDE,
        "tools.0.type",
        "web_search_20250305",
    ),
    (
        "bash tool",
        body(tools=[{"type": "bash_20250124", "name": "bash"}]),
        CLAUDE,
        "tools.0.type",
        "bash_20250124",
    ),
    ("tool name pattern", body(tools=[{**TOOL, "name": "a b"}]), CLAUDE, "tools.0.name", "1-64"),
    ("duplicate tool", body(tools=[TOOL, TOOL]), CLAUDE, "tools.1.name", "unique"),
    (
        "tool choice names an unknown tool",
        body(tools=[TOOL], tool_choice={"type": "tool", "name": "x"}),
        CLAUDE,
        "tool_choice.name",
        "no tool",
    ),
    ("forced tool without tools", body(tool_choice={"type": "any"}), CLAUDE, "tool_choice", "no tools"),
    (
        "forced tool with thinking",
        body(
            max_tokens=2000,
            tools=[TOOL],
            tool_choice={"type": "any"},
            thinking={"type": "enabled", "budget_tokens": 1024},
        ),
        CLAUDE,
        "tool_choice",
        "Thinking may not be enabled when tool_choice forces tool use.",
    ),
    ("tools on a family without tools", body(tools=[TOOL]), MISTRAL, "tools", "does not support tools"),
    ("system on a family without system", body(system="s"), MISTRAL, "system", "no system prompt"),
    (
        "thinking budget too small",
        body(thinking={"type": "enabled", "budget_tokens": 1000}),
        CLAUDE,
        "thinking.budget_tokens",
        "at least 1024",
    ),
    (
        "thinking budget above max_tokens",
        body(thinking={"type": "enabled", "budget_tokens": 1000 + 24}, max_tokens=1024),
        CLAUDE,
        "thinking.budget_tokens",
        "less than max_tokens",
    ),
    (
        "thinking with temperature",
        body(thinking={"type": "adaptive"}, temperature=0.5),
        CLAUDE,
        "temperature",
        "only be set to 1",
    ),
    ("thinking with top_k", body(thinking={"type": "adaptive"}, top_k=5), CLAUDE, "top_k", "thinking"),
    ("thinking with low top_p", body(thinking={"type": "adaptive"}, top_p=0.5), CLAUDE, "top_p", "0.95"),
    ("thinking on a non-reasoning family", body(thinking={"type": "adaptive"}), NOVA, "thinking", "thinking"),
    ("unknown thinking type", body(thinking={"type": "sometimes"}), CLAUDE, "thinking.type", "'enabled'"),
    ("bad effort", body(output_config={"effort": "extreme"}), CLAUDE, "output_config.effort", "low"),
    (
        "structured output on a family without it",
        body(output_config={"format": {"type": "json_schema", "schema": {}}}),
        NOVA,
        "output_config.format",
        "structured",
    ),
    ("metadata key", body(metadata={"tenant": "x"}), CLAUDE, "metadata.tenant", "unknown field"),
    ("stream not boolean", body(stream="yes"), CLAUDE, "stream", "boolean"),
    (
        "redacted thinking not base64",
        body(messages=[user(text("q")), assistant({"type": "redacted_thinking", "data": "%%%"})]),
        CLAUDE,
        "messages.1.content.0.data",
        "base64",
    ),
    ("top_k on a family without it", body(top_k=3), MISTRAL, "top_k", "top_k"),
    (
        "input_schema of a type other than object",
        body(tools=[{"name": "t", "input_schema": {"type": "array"}}]),
        CLAUDE,
        "tools.0.input_schema.type",
        "object",
    ),
]


def test_input_schema_without_a_type_becomes_an_object_schema() -> None:
    call = translate(body(tools=[{"name": "t", "input_schema": {"properties": {"a": {"type": "string"}}}}]))
    schema = call.request["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert schema == {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(("name", "b", "family", "param", "fragment"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refusals_name_the_field(name: str, b: Any, family: ModelFamily, param: str, fragment: str) -> None:
    with pytest.raises(GatewayError) as caught:
        anthropic_to_converse(b, family, OPTIONS)
    err = caught.value
    assert err.kind is ErrorKind.INVALID_REQUEST and err.http_status == 400
    assert err.param == param
    assert err.message.startswith(f"{param}: ")
    assert fragment in err.message


def test_url_image_that_the_app_did_not_fetch_is_refused() -> None:
    b = body(messages=[user({"type": "image", "source": {"type": "url", "url": "u"}})])
    with pytest.raises(GatewayError, match="could not be fetched"):
        anthropic_to_converse(b, CLAUDE, AnthropicOptions(allow_url_fetch=True), media={})


def test_cache_limit_comes_from_options() -> None:
    b = body(system=[text("a", cache_control=EPHEMERAL), text("b", cache_control=EPHEMERAL)])
    with pytest.raises(GatewayError, match="at most 1 cache_control"):
        anthropic_to_converse(b, CLAUDE, AnthropicOptions(max_cache_points=1))


# -- betas -----------------------------------------------------------------------------------------


def test_beta_header_parsing_handles_repeats_blanks_and_lists() -> None:
    assert parse_beta_header(None) == ()
    assert parse_beta_header(" a, ,b,a ") == ("a", "b")
    assert parse_beta_header(["a,b", "c"]) == ("a", "b", "c")
    assert split_betas(["a", "context-1m-2025-08-07"], DEFAULT_SUPPORTED_BETAS) == (
        ["context-1m-2025-08-07"],
        ["a"],
    )


def test_claude_code_betas_are_not_in_the_default_list() -> None:
    for flag in (
        "claude-code-20250219",
        "advanced-tool-use-2025-11-20",
        "thinking-token-count-2026-05-13",
        "per-turn-control-2026-07-01",
        "mid-conversation-tool-changes-2026-07-01",
    ):
        assert flag not in DEFAULT_SUPPORTED_BETAS


# -- responses -------------------------------------------------------------------------------------


def converse_response(content: list[dict[str, Any]], stop: str = "end_turn", **extra: Any) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {
            "inputTokens": 10,
            "outputTokens": 5,
            "totalTokens": 15,
            "cacheReadInputTokens": 3,
            "cacheWriteInputTokens": 2,
        },
        "metrics": {"latencyMs": 100},
        **extra,
    }


def test_response_translation_golden() -> None:
    response = converse_response(
        [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
            {"reasoningContent": {"redactedContent": b"\x00\x01"}},
            {"text": "Hi"},
            {"toolUse": {"toolUseId": "toolu_1", "name": "get", "input": {"a": 1}}},
        ],
        stop="tool_use",
    )
    out = converse_to_anthropic(response, model="claude-x", call=ConverseCall(request={}), message_id="msg_1")
    assert out == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "AAE="},
            {"type": "text", "text": "Hi"},
            {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"a": 1}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 2,
            "cache_read_input_tokens": 3,
        },
    }


def test_response_validates_with_the_official_sdk_types() -> None:
    from anthropic.types import Message

    out = converse_to_anthropic(
        converse_response([{"text": "Hi"}]), model="m", call=ConverseCall(request={}), message_id="msg_1"
    )
    assert Message.model_validate(out).content[0].type == "text"


@pytest.mark.parametrize(
    ("converse", "anthropic"),
    [
        ("end_turn", "end_turn"),
        ("tool_use", "tool_use"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("guardrail_intervened", "refusal"),
        ("content_filtered", "refusal"),
        ("model_context_window_exceeded", "model_context_window_exceeded"),
    ],
)
def test_stop_reason_mapping(converse: str, anthropic: str) -> None:
    out = converse_to_anthropic(
        converse_response([], converse), model="m", call=ConverseCall(request={}), message_id="i"
    )
    assert out["stop_reason"] == anthropic


@pytest.mark.parametrize("reason", ["malformed_model_output", "malformed_tool_use"])
def test_malformed_output_is_an_error_not_a_stop(reason: str) -> None:
    with pytest.raises(GatewayError) as caught:
        converse_to_anthropic(
            converse_response([], reason), model="m", call=ConverseCall(request={}), message_id="i"
        )
    assert caught.value.kind is ErrorKind.BAD_GATEWAY


def test_stop_sequence_comes_from_bedrock_then_from_a_single_sent_sequence() -> None:
    reported = converse_response([], "stop_sequence", additionalModelResponseFields={"stop_sequence": "B"})
    two = ConverseCall(request={}, stop_sequences=("A", "B"))
    one = ConverseCall(request={}, stop_sequences=("A",))
    assert converse_to_anthropic(reported, model="m", call=two, message_id="i")["stop_sequence"] == "B"
    unreported = converse_response([], "stop_sequence")
    assert converse_to_anthropic(unreported, model="m", call=one, message_id="i")["stop_sequence"] == "A"
    assert converse_to_anthropic(unreported, model="m", call=two, message_id="i")["stop_sequence"] is None


def test_message_ids_look_like_anthropics() -> None:
    ids = {new_message_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("msg_") and len(i) == 28 and i[4:].isalnum() for i in ids)


def test_message_ids_draw_on_all_62_characters() -> None:
    seen = set("".join(new_message_id()[4:] for _ in range(2000)))
    assert seen == set(string.ascii_letters + string.digits)


def test_disable_parallel_tool_use_is_reported_as_ignored_off_claude() -> None:
    call = translate(
        body(tools=[TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True}), NOVA
    )
    assert call.request["toolConfig"]["toolChoice"] == {"auto": {}}
    assert call.notes["x-bedrock-mw-ignored-params"] == "tool_choice.disable_parallel_tool_use"


def test_refused_fields_that_are_empty_are_accepted() -> None:
    assert translate(body(container=None, mcp_servers=[], inference_geo=None, speed="standard")).notes == {}


def test_a_claude_code_request_translates_whole() -> None:
    b = {
        "model": "claude-opus-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            text("x-anthropic-billing-header: cc_version=2.1; cc_entrypoint=cli"),
            text("You are Claude Code.", cache_control=EPHEMERAL),
        ],
        "messages": [
            user(
                text("<system-reminder>ctx</system-reminder>"), text("fix the bug", cache_control=EPHEMERAL)
            ),
        ],
        "tools": [{**TOOL, "name": "Bash"}, {**TOOL, "name": "Read", "defer_loading": True}],
        "metadata": {"user_id": '{"device_id":"abc","session_id":"123"}'},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }
    beta = (
        "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
        "prompt-caching-scope-2026-01-05,effort-2025-11-24"
    )
    call = translate(b, beta_header=beta)
    assert call.stream is True
    assert call.request["system"] == [{"text": "You are Claude Code."}, POINT]
    assert call.request["messages"][0]["content"][-1] == POINT
    assert call.request["additionalModelRequestFields"] == {
        "anthropic_beta": [
            "interleaved-thinking-2025-05-14",
            "context-management-2025-06-27",
            "effort-2025-11-24",
        ],
        "thinking": {"type": "adaptive"},
        "context_management": b["context_management"],
    }
    assert call.request["outputConfig"] == {"effort": "high"}
    assert call.request["requestMetadata"] == {"user_id": "__device_id_:_abc_,_session_id_:_123__"}
    assert call.notes == {
        "x-bedrock-mw-dropped-betas": "claude-code-20250219,prompt-caching-scope-2026-01-05",
        "x-bedrock-mw-ignored-params": "tools.defer_loading",
    }


# -- citations -------------------------------------------------------------------------------------


def cited_document(enabled: Any, title: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "document", "source": {"type": "text", "data": "A fact. More."}}
    if enabled is not None:
        doc["citations"] = {"enabled": enabled}
    if title is not None:
        doc["title"] = title
    return doc


@pytest.mark.parametrize(("enabled", "expected"), [(True, {"enabled": True}), (False, None), (None, None)])
def test_document_citations_enabled_are_sent_to_converse_and_off_sends_nothing(
    enabled: Any, expected: Any
) -> None:
    call = translate(body(messages=[user(cited_document(enabled), text("q"))]))
    document = call.request["messages"][0]["content"][0]["document"]
    assert document.get("citations") == expected


def test_document_titles_are_kept_in_order_for_citations() -> None:
    call = translate(
        body(messages=[user(cited_document(True, "Notes: v2"), cited_document(True), text("q"))])
    )
    names = [b["document"]["name"] for b in call.request["messages"][0]["content"][:2]]
    assert names == ["Notes v2", "document-2"]
    assert call.document_titles == ("Notes: v2", None)


def test_citations_on_earlier_assistant_text_are_dropped_and_the_text_kept() -> None:
    cited = {"type": "char_location", "cited_text": "A fact.", "document_index": 0, "document_title": None}
    call = translate(
        body(
            messages=[
                user(cited_document(True), text("q")),
                assistant({"type": "text", "text": "It says so.", "citations": [cited]}),
                user(text("and?")),
            ]
        )
    )
    assert call.request["messages"][1]["content"] == [{"text": "It says so."}]


def citation(location: dict[str, Any], title: str = "document-1") -> dict[str, Any]:
    return {"title": title, "sourceContent": [{"text": "A "}, {"text": "fact."}], "location": location}


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            {"documentChar": {"documentIndex": 0, "start": 0, "end": 7}},
            {"type": "char_location", "start_char_index": 0, "end_char_index": 7},
        ),
        (
            {"documentPage": {"documentIndex": 0, "start": 1, "end": 2}},
            {"type": "page_location", "start_page_number": 1, "end_page_number": 2},
        ),
        (
            {"documentChunk": {"documentIndex": 0, "start": 0, "end": 1}},
            {"type": "content_block_location", "start_block_index": 0, "end_block_index": 1},
        ),
    ],
    ids=["documentChar", "documentPage", "documentChunk"],
)
def test_citations_content_becomes_a_text_block_with_mapped_citations(
    location: dict[str, Any], expected: dict[str, Any]
) -> None:
    from anthropic.types import Message

    response = converse_response(
        [
            {"text": "Intro. "},
            {
                "citationsContent": {
                    "content": [{"text": "It "}, {"text": "is."}],
                    "citations": [citation(location)],
                }
            },
        ]
    )
    call = ConverseCall(request={}, document_titles=("Notes",))
    out = converse_to_anthropic(response, model="claude-x", call=call, message_id="msg_1")
    common = {"cited_text": "A fact.", "document_index": 0, "document_title": "Notes"}
    assert out["content"] == [
        {"type": "text", "text": "Intro. "},
        {"type": "text", "text": "It is.", "citations": [{**expected, **common}]},
    ]
    Message.model_validate(out)


def test_citation_title_falls_back_to_bedrocks_when_the_document_is_unknown() -> None:
    location = {"documentChar": {"documentIndex": 3, "start": 0, "end": 7}}
    response = converse_response(
        [{"citationsContent": {"content": [{"text": "x"}], "citations": [citation(location)]}}]
    )
    out = converse_to_anthropic(response, model="m", call=ConverseCall(request={}), message_id="msg_1")
    assert out["content"][0]["citations"][0]["document_title"] == "document-1"


def test_unknown_citation_locations_are_skipped_and_leave_plain_text() -> None:
    web = citation({"web": {"url": "https://example.com", "domain": "example.com"}})
    response = converse_response([{"citationsContent": {"content": [{"text": "x"}], "citations": [web]}}])
    out = converse_to_anthropic(response, model="m", call=ConverseCall(request={}), message_id="msg_1")
    assert out["content"] == [{"type": "text", "text": "x"}]

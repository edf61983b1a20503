"""Golden cases for OpenAI chat → Converse request translation (docs/openai.md)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.families import family_of
from bedrock_mw.translate.openai import OpenAIOptions, image_urls, openai_to_converse

CLAUDE = family_of("anthropic.claude-sonnet-4-5-20250929-v1:0")
HAIKU_3 = family_of("anthropic.claude-3-haiku-20240307-v1:0")
NOVA = family_of("amazon.nova-pro-v1:0")
NOVA_MICRO = family_of("amazon.nova-micro-v1:0")
MISTRAL_7B = family_of("mistral.mistral-7b-instruct-v0:2")
LLAMA = family_of("meta.llama3-1-70b-instruct-v1:0")
DEEPSEEK = family_of("deepseek.r1-v1:0")
GPT_OSS = family_of("openai.gpt-oss-120b-1:0")
TITAN = family_of("amazon.titan-text-express-v1")

PNG = b"\x89PNG\r\n\x1a\nfake"
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
PDF_URL = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4").decode()
DEFAULT = OpenAIOptions()
DROP = OpenAIOptions(drop_unsupported_params=True)


def user(content: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


def body(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages) or [user()], **params}


def call_tool(call_id: str = "call_1", name: str = "get", arguments: str = '{"q": 1}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


TOOL = {
    "type": "function",
    "function": {"name": "get", "description": "Get", "parameters": {"type": "object"}},
}

# (name, body, family, options, expected request subset)
GOLDEN: list[tuple[str, dict[str, Any], Any, OpenAIOptions, dict[str, Any]]] = [
    ("plain user", body(), CLAUDE, DEFAULT, {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}),
    (
        "system and developer go to system",
        body(
            {"role": "system", "content": "a"},
            {"role": "developer", "content": [{"type": "text", "text": "b"}]},
            user(),
        ),
        CLAUDE,
        DEFAULT,
        {"system": [{"text": "a"}, {"text": "b"}]},
    ),
    (
        "consecutive user turns merge",
        body(user("a"), user("b")),
        CLAUDE,
        DEFAULT,
        {"messages": [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]},
    ),
    (
        "sampling parameters",
        body(max_completion_tokens=100, max_tokens=5, temperature=0.5, top_p=0.9, stop="END"),
        NOVA,
        DEFAULT,
        {"inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]}},
    ),
    (
        "newer Claude takes temperature or top_p: top_p is left out",
        body(temperature=0.5, top_p=0.9),
        CLAUDE,
        DEFAULT,
        {"inferenceConfig": {"temperature": 0.5}},
    ),
    ("newer Claude takes top_p alone", body(top_p=0.9), CLAUDE, DEFAULT, {"inferenceConfig": {"topP": 0.9}}),
    (
        "older Claude takes both",
        body(temperature=0.5, top_p=0.9),
        HAIKU_3,
        DEFAULT,
        {"inferenceConfig": {"temperature": 0.5, "topP": 0.9}},
    ),
    (
        "temperature above Bedrock's 1 becomes 1",
        body(temperature=1.7),
        NOVA,
        DEFAULT,
        {"inferenceConfig": {"temperature": 1.0}},
    ),
    ("max_tokens alone", body(max_tokens=7), CLAUDE, DEFAULT, {"inferenceConfig": {"maxTokens": 7}}),
    (
        "data: image url",
        body(user([{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": PNG_URL}}])),
        CLAUDE,
        DEFAULT,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"text": "look"}, {"image": {"format": "png", "source": {"bytes": PNG}}}],
                }
            ]
        },
    ),
    (
        "remote image url with fetched media",
        body(user([{"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}])),
        CLAUDE,
        OpenAIOptions(allow_url_fetch=True),
        {
            "messages": [
                {"role": "user", "content": [{"image": {"format": "jpeg", "source": {"bytes": b"J"}}}]}
            ]
        },
    ),
    (
        "pdf file part becomes a document",
        body(user([{"type": "file", "file": {"file_data": PDF_URL, "filename": "q3 report.v2.pdf"}}])),
        CLAUDE,
        DEFAULT,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "document": {
                                "format": "pdf",
                                "name": "q3 report v2",
                                "source": {"bytes": b"%PDF-1.4"},
                            }
                        }
                    ],
                }
            ]
        },
    ),
    (
        "tool round trip",
        body(
            user(),
            {"role": "assistant", "content": None, "tool_calls": [call_tool("c1"), call_tool("c2")]},
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]},
            tools=[TOOL],
        ),
        CLAUDE,
        DEFAULT,
        {
            "messages": [
                {"role": "user", "content": [{"text": "hi"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"toolUse": {"toolUseId": "c1", "name": "get", "input": {"q": 1}}},
                        {"toolUse": {"toolUseId": "c2", "name": "get", "input": {"q": 1}}},
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
                            "description": "Get",
                            "inputSchema": {"json": {"type": "object"}},
                        }
                    }
                ]
            },
        },
    ),
    (
        "assistant text and refusal parts",
        body(
            user(),
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
            },
            user("b"),
        ),
        CLAUDE,
        DEFAULT,
        {
            "messages": [
                {"role": "user", "content": [{"text": "hi"}]},
                {"role": "assistant", "content": [{"text": "a"}, {"text": "no"}]},
                {"role": "user", "content": [{"text": "b"}]},
            ]
        },
    ),
    (
        "tool_choice required",
        body(tools=[TOOL], tool_choice="required"),
        CLAUDE,
        DEFAULT,
        {
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get",
                            "description": "Get",
                            "inputSchema": {"json": {"type": "object"}},
                        }
                    }
                ],
                "toolChoice": {"any": {}},
            }
        },
    ),
    (
        "tool_choice function",
        body(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get"}}),
        CLAUDE,
        DEFAULT,
        {
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get",
                            "description": "Get",
                            "inputSchema": {"json": {"type": "object"}},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": "get"}},
            }
        },
    ),
    (
        "tool without parameters gets an empty object schema",
        body(tools=[{"type": "function", "function": {"name": "now"}}]),
        CLAUDE,
        DEFAULT,
        {
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "now",
                            "inputSchema": {"json": {"type": "object", "properties": {}}},
                        }
                    }
                ]
            }
        },
    ),
    (
        "cache_control on a part, on a message and on a system part",
        body(
            {
                "role": "system",
                "content": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            },
            user([{"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]),
            {"role": "assistant", "content": "b", "cache_control": {"type": "ephemeral"}},
            user("c"),
        ),
        CLAUDE,
        DEFAULT,
        {
            "system": [{"text": "s"}, {"cachePoint": {"type": "default"}}],
            "messages": [
                {
                    "role": "user",
                    "content": [{"text": "a"}, {"cachePoint": {"type": "default", "ttl": "1h"}}],
                },
                {"role": "assistant", "content": [{"text": "b"}, {"cachePoint": {"type": "default"}}]},
                {"role": "user", "content": [{"text": "c"}]},
            ],
        },
    ),
    (
        "json_schema on a family with native structured output",
        body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "description": "A person", "schema": {"type": "object"}},
            }
        ),
        CLAUDE,
        DEFAULT,
        {
            "outputConfig": {
                "textFormat": {
                    "type": "json_schema",
                    "structure": {
                        "jsonSchema": {
                            "schema": '{"type":"object"}',
                            "name": "person",
                            "description": "A person",
                        }
                    },
                }
            }
        },
    ),
    (
        "json_schema without native structured output forces a tool (an object schema, type added)",
        body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": {}},
            }
        ),
        NOVA,
        DEFAULT,
        {
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "person",
                            "inputSchema": {"json": {"type": "object"}},
                            "description": "Return the final answer in this structure.",
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": "person"}},
            }
        },
    ),
    (
        "json_object instructs through the system prompt",
        body(response_format={"type": "json_object"}),
        CLAUDE,
        DEFAULT,
        {"system": [{"text": "Respond with a single valid JSON object and nothing else."}]},
    ),
    (
        "response_format text is a no-op",
        body(response_format={"type": "text"}),
        CLAUDE,
        DEFAULT,
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    ),
    (
        "reasoning_effort on Claude becomes a thinking budget with room for the answer",
        body(reasoning_effort="medium"),
        CLAUDE,
        DEFAULT,
        {
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 8192}},
            "inferenceConfig": {"maxTokens": 8192 + 4096},
        },
    ),
    (
        "reasoning budget shrinks under a small max_completion_tokens",
        body(reasoning_effort="high", max_completion_tokens=5000),
        CLAUDE,
        DEFAULT,
        {
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 4999}},
            "inferenceConfig": {"maxTokens": 5000},
        },
    ),
    (
        "reasoning_effort on gpt-oss",
        body(reasoning_effort="minimal"),
        GPT_OSS,
        DEFAULT,
        {"additionalModelRequestFields": {"reasoning_effort": "low"}},
    ),
    (
        "metadata → requestMetadata, service_tier flex",
        body(metadata={"team": "a-b"}, service_tier="flex"),
        CLAUDE,
        DEFAULT,
        {"requestMetadata": {"team": "a-b"}, "serviceTier": {"type": "flex"}},
    ),
    (
        "tool history without tools declares the tools it names (Bedrock wants a toolConfig)",
        body(
            user(),
            {"role": "assistant", "content": None, "tool_calls": [call_tool()]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        ),
        CLAUDE,
        DEFAULT,
        {
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get",
                            "description": "A tool used earlier in this conversation.",
                            "inputSchema": {"json": {"type": "object"}},
                        }
                    }
                ]
            }
        },
    ),
    (
        "parameters without a type become an object schema",
        body(tools=[{"type": "function", "function": {"name": "get", "parameters": {"properties": {}}}}]),
        CLAUDE,
        DEFAULT,
        {
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get",
                            "inputSchema": {"json": {"type": "object", "properties": {}}},
                        }
                    }
                ]
            }
        },
    ),
    (
        "blank text parts are dropped (Bedrock refuses blank text blocks)",
        body(
            {"role": "system", "content": "  "},
            user([{"type": "text", "text": "hi"}, {"type": "text", "text": " \n"}]),
            {"role": "assistant", "content": " ", "tool_calls": [call_tool()]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
            tools=[TOOL],
        ),
        CLAUDE,
        DEFAULT,
        {
            "messages": [
                {"role": "user", "content": [{"text": "hi"}]},
                {
                    "role": "assistant",
                    "content": [{"toolUse": {"toolUseId": "call_1", "name": "get", "input": {"q": 1}}}],
                },
                {
                    "role": "user",
                    "content": [{"toolResult": {"toolUseId": "call_1", "content": [{"text": "ok"}]}}],
                },
            ]
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "request_body", "family", "options", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN]
)
def test_golden_translation(
    name: str, request_body: dict[str, Any], family: Any, options: OpenAIOptions, expected: dict[str, Any]
) -> None:
    media = {"https://x/y.jpg": (b"J", "image/jpeg")}
    request = openai_to_converse(request_body, family, options, media=media).request
    assert "modelId" not in request
    for key, value in expected.items():
        assert request[key] == value, key


# (name, body, family, options, expected param)
REFUSED: list[tuple[str, Any, Any, OpenAIOptions, str | None]] = [
    ("body not an object", [1], CLAUDE, DEFAULT, None),
    ("no messages", {"model": "m"}, CLAUDE, DEFAULT, "messages"),
    ("only a system message", body({"role": "system", "content": "s"}), CLAUDE, DEFAULT, "messages"),
    (
        "starts with assistant",
        body({"role": "assistant", "content": "a"}, user()),
        CLAUDE,
        DEFAULT,
        "messages[0].role",
    ),
    ("unknown role", body({"role": "bot", "content": "a"}), CLAUDE, DEFAULT, "messages[0].role"),
    (
        "function role",
        body({"role": "function", "content": "a", "name": "f"}),
        CLAUDE,
        DEFAULT,
        "messages[0].role",
    ),
    ("empty user content", body(user("")), CLAUDE, DEFAULT, "messages[0].content"),
    ("seed", body(seed=1), CLAUDE, DEFAULT, "seed"),
    ("logit_bias", body(logit_bias={"1": 2}), CLAUDE, DEFAULT, "logit_bias"),
    ("presence_penalty", body(presence_penalty=0.5), CLAUDE, DEFAULT, "presence_penalty"),
    ("logprobs", body(logprobs=True), CLAUDE, DEFAULT, "logprobs"),
    ("audio modality", body(modalities=["text", "audio"]), CLAUDE, DEFAULT, "modalities"),
    (
        "parallel_tool_calls false",
        body(tools=[TOOL], parallel_tool_calls=False),
        CLAUDE,
        DEFAULT,
        "parallel_tool_calls",
    ),
    ("unrecognised argument", body(foo=1), CLAUDE, DEFAULT, "foo"),
    ("n > 1", body(n=2), CLAUDE, DEFAULT, "n"),
    ("five stop sequences", body(stop=["a", "b", "c", "d", "e"]), CLAUDE, DEFAULT, "stop"),
    ("empty stop sequence", body(stop=["a", ""]), CLAUDE, DEFAULT, "stop[1]"),
    ("temperature out of range", body(temperature=3), CLAUDE, DEFAULT, "temperature"),
    ("max_tokens zero", body(max_tokens=0), CLAUDE, DEFAULT, "max_tokens"),
    ("max_tokens bool", body(max_tokens=True), CLAUDE, DEFAULT, "max_tokens"),
    (
        "remote image url",
        body(user([{"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}])),
        CLAUDE,
        DEFAULT,
        "messages[0].content[0].image_url.url",
    ),
    (
        "remote image url not fetched",
        body(user([{"type": "image_url", "image_url": {"url": "https://x/z"}}])),
        CLAUDE,
        OpenAIOptions(allow_url_fetch=True),
        "messages[0].content[0].image_url.url",
    ),
    (
        "bad base64",
        body(user([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}])),
        CLAUDE,
        DEFAULT,
        "messages[0].content[0].image_url.url",
    ),
    (
        "bmp image",
        body(user([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}])),
        CLAUDE,
        DEFAULT,
        "messages[0].content[0].image_url.url",
    ),
    (
        "image on a text-only family",
        body(user([{"type": "image_url", "image_url": {"url": PNG_URL}}])),
        NOVA_MICRO,
        DEFAULT,
        "messages[0].content[0].image_url",
    ),
    (
        "input_audio",
        body(user([{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}])),
        CLAUDE,
        DEFAULT,
        "messages[0].content[0]",
    ),
    (
        "file_id",
        body(user([{"type": "file", "file": {"file_id": "f"}}])),
        CLAUDE,
        DEFAULT,
        "messages[0].content[0].file",
    ),
    (
        "document on a family without documents",
        body(user([{"type": "file", "file": {"file_data": PDF_URL}}])),
        NOVA_MICRO,
        DEFAULT,
        "messages[0].content[0].file",
    ),
    (
        "invalid JSON arguments",
        body(user(), {"role": "assistant", "tool_calls": [call_tool(arguments="{")]}),
        CLAUDE,
        DEFAULT,
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "arguments not an object",
        body(user(), {"role": "assistant", "tool_calls": [call_tool(arguments="[1]")]}),
        CLAUDE,
        DEFAULT,
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "assistant with nothing",
        body(user(), {"role": "assistant", "content": None}),
        CLAUDE,
        DEFAULT,
        "messages[1].content",
    ),
    (
        "tool result without its call",
        body(user(), {"role": "tool", "tool_call_id": "x", "content": "r"}),
        CLAUDE,
        DEFAULT,
        "messages[1].tool_call_id",
    ),
    ("tools on a family without tools", body(tools=[TOOL]), DEEPSEEK, DEFAULT, "tools"),
    (
        "tool of another type",
        body(tools=[{"type": "custom", "custom": {"name": "x"}}]),
        CLAUDE,
        DEFAULT,
        "tools[0].type",
    ),
    (
        "bad tool name",
        body(tools=[{"type": "function", "function": {"name": "a b"}}]),
        CLAUDE,
        DEFAULT,
        "tools[0].function.name",
    ),
    ("duplicate tool names", body(tools=[TOOL, TOOL]), CLAUDE, DEFAULT, "tools[1].function.name"),
    (
        "tool_choice names an unknown tool",
        body(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "x"}}),
        CLAUDE,
        DEFAULT,
        "tool_choice.function.name",
    ),
    ("tool_choice required without tools", body(tool_choice="required"), CLAUDE, DEFAULT, "tool_choice"),
    ("streamed tools on Llama", body(tools=[TOOL], stream=True), LLAMA, DEFAULT, "stream"),
    (
        "system on a family without system prompts",
        body({"role": "system", "content": "s"}, user()),
        MISTRAL_7B,
        DEFAULT,
        "messages[0].role",
    ),
    (
        "reasoning on a family that does not reason",
        body(reasoning_effort="low"),
        NOVA,
        DEFAULT,
        "reasoning_effort",
    ),
    ("reasoning effort unknown", body(reasoning_effort="huge"), CLAUDE, DEFAULT, "reasoning_effort"),
    (
        "reasoning with too few tokens",
        body(reasoning_effort="low", max_tokens=1000),
        CLAUDE,
        DEFAULT,
        "max_completion_tokens",
    ),
    (
        "reasoning_effort on DeepSeek (no knob)",
        body(reasoning_effort="low"),
        DEEPSEEK,
        DEFAULT,
        "reasoning_effort",
    ),
    (
        "json_schema fallback with tools",
        body(
            tools=[TOOL], response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": {}}}
        ),
        NOVA,
        DEFAULT,
        "response_format",
    ),
    (
        "json_schema without a name",
        body(response_format={"type": "json_schema", "json_schema": {}}),
        CLAUDE,
        DEFAULT,
        "response_format.json_schema.name",
    ),
    (
        "unknown response_format",
        body(response_format={"type": "xml"}),
        CLAUDE,
        DEFAULT,
        "response_format.type",
    ),
    (
        "too many cache points",
        body(
            user([{"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}} for i in range(5)])
        ),
        CLAUDE,
        DEFAULT,
        "messages",
    ),
    (
        "cache_control of another type",
        body(user([{"type": "text", "text": "a", "cache_control": {"type": "x"}}])),
        CLAUDE,
        DEFAULT,
        "messages[0].content[0].cache_control",
    ),
    ("metadata with characters Bedrock refuses", body(metadata={"k": "é"}), CLAUDE, DEFAULT, "metadata.k"),
    ("service_tier scale", body(service_tier="scale"), CLAUDE, DEFAULT, "service_tier"),
    ("whitespace-only user content", body(user(" \t")), CLAUDE, DEFAULT, "messages[0].content"),
    (
        "json_schema of an array served through a tool (tool schemas are object schemas)",
        body(
            response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "array"}}}
        ),
        NOVA,
        DEFAULT,
        "response_format.json_schema.schema.type",
    ),
    (
        "parameters of a type other than object",
        body(tools=[{"type": "function", "function": {"name": "get", "parameters": {"type": "string"}}}]),
        CLAUDE,
        DEFAULT,
        "tools[0].function.parameters.type",
    ),
]


@pytest.mark.parametrize(
    ("name", "request_body", "family", "options", "param"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_refused_before_bedrock(
    name: str, request_body: Any, family: Any, options: OpenAIOptions, param: str | None
) -> None:
    with pytest.raises(GatewayError) as caught:
        openai_to_converse(request_body, family, options, media={"https://x/y.jpg": (b"J", "image/jpeg")})
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert caught.value.http_status == 400
    assert caught.value.param == param


def test_default_values_of_unsupported_params_are_accepted() -> None:
    call = openai_to_converse(
        body(
            presence_penalty=0,
            frequency_penalty=0,
            logprobs=False,
            seed=None,
            modalities=["text"],
            parallel_tool_calls=True,
            user="u",
            store=False,
            n=1,
        ),
        CLAUDE,
        DEFAULT,
    )
    assert call.notes == {}


def test_dropped_params_are_listed_in_a_header() -> None:
    call = openai_to_converse(body(seed=1, logit_bias={"1": 1}, foo=2), CLAUDE, DROP)
    assert call.notes["x-bedrock-mw-dropped-params"] == "seed,logit_bias,foo"
    assert "seed" not in orjson.dumps(call.request).decode()


def test_reasoning_without_knob_is_dropped_on_opt_in() -> None:
    call = openai_to_converse(body(reasoning_effort="low"), DEEPSEEK, DROP)
    assert call.notes["x-bedrock-mw-dropped-params"] == "reasoning_effort"
    assert "additionalModelRequestFields" not in call.request


def test_cache_control_on_a_family_without_caching_is_dropped_visibly() -> None:
    call = openai_to_converse(
        body(user([{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}])), HAIKU_3, DEFAULT
    )
    assert call.notes["x-bedrock-mw-dropped-cache-control"] == "1"
    assert call.request["messages"][0]["content"] == [{"text": "a"}]


def test_system_is_folded_into_the_first_user_turn_on_opt_in() -> None:
    call = openai_to_converse(body({"role": "system", "content": "be brief"}, user("hi")), MISTRAL_7B, DROP)
    assert "system" not in call.request
    assert call.request["messages"][0]["content"] == [{"text": "be brief"}, {"text": "hi"}]
    assert call.notes["x-bedrock-mw-system-folded"] == "true"


def test_json_object_without_system_prompt_goes_to_the_last_user_turn() -> None:
    call = openai_to_converse(body(response_format={"type": "json_object"}), MISTRAL_7B, DEFAULT)
    assert call.request["messages"][-1]["content"][-1] == {
        "text": "Respond with a single valid JSON object and nothing else."
    }


def test_synthesized_tools_are_named_in_a_header() -> None:
    history = body(
        user(),
        {"role": "assistant", "content": None, "tool_calls": [call_tool(name="lookup")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    )
    assert openai_to_converse(history, CLAUDE, DEFAULT).notes["x-bedrock-mw-synthesized-tools"] == "lookup"
    assert (
        "x-bedrock-mw-synthesized-tools" not in openai_to_converse(body(tools=[TOOL]), CLAUDE, DEFAULT).notes
    )


def test_tool_choice_none_omits_tools_unless_history_uses_them() -> None:
    assert (
        "toolConfig"
        not in openai_to_converse(body(tools=[TOOL], tool_choice="none"), CLAUDE, DEFAULT).request
    )
    history = body(
        user(),
        {"role": "assistant", "tool_calls": [call_tool()]},
        {"role": "tool", "tool_call_id": "call_1", "content": "r"},
        tools=[TOOL],
        tool_choice="none",
    )
    config = openai_to_converse(history, CLAUDE, DEFAULT).request["toolConfig"]
    assert "toolChoice" not in config


def test_tool_result_and_following_user_text_share_one_turn() -> None:
    call = openai_to_converse(
        body(
            user(),
            {"role": "assistant", "tool_calls": [call_tool()]},
            {"role": "tool", "tool_call_id": "call_1", "content": "r"},
            user("and?"),
        ),
        CLAUDE,
        DEFAULT,
    )
    last = call.request["messages"][-1]
    assert last["role"] == "user"
    assert [next(iter(b)) for b in last["content"]] == ["toolResult", "text"]


def test_stream_flags_and_stop_sequences_are_recorded() -> None:
    call = openai_to_converse(body(stream=True, stop=["x", "y"]), CLAUDE, DEFAULT)
    assert call.stream is True
    assert call.stop_sequences == ("x", "y")


def test_structured_output_mode_is_noted() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}}}
    assert (
        openai_to_converse(body(response_format=schema), CLAUDE, DEFAULT).notes[
            "x-bedrock-mw-structured-output"
        ]
        == "native"
    )
    assert (
        openai_to_converse(body(response_format=schema), NOVA, DEFAULT).notes[
            "x-bedrock-mw-structured-output"
        ]
        == "tool"
    )


def test_document_names_are_unique() -> None:
    part = {"type": "file", "file": {"file_data": PDF_URL, "filename": "a.pdf"}}
    content = openai_to_converse(body(user([part, part])), CLAUDE, DEFAULT).request["messages"][0]["content"]
    assert [b["document"]["name"] for b in content] == ["a", "a (2)"]


def test_image_urls_lists_remote_urls_once() -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": u}}
        for u in ("https://a", PNG_URL, "https://a", "http://b")
    ]
    assert image_urls(body(user(parts))) == ["https://a", "http://b"]
    assert image_urls({"messages": "nope"}) == []


def test_titan_family_is_not_a_converse_family_but_translates_text() -> None:
    # Titan is served natively by the app; Converse translation still validates it consistently.
    with pytest.raises(GatewayError):
        openai_to_converse(body(tools=[TOOL]), TITAN, DEFAULT)


def test_reasoning_after_a_tool_turn_turns_thinking_off_visibly_since_chat_cannot_replay_it() -> None:
    """Claude refuses thinking when the last tool-use turn lacks its thinking block; chat has none."""
    tool = {"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}
    call = openai_to_converse(
        body(
            user(),
            {"role": "assistant", "content": None, "tool_calls": [call_tool()]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
            tools=[tool],
            reasoning_effort="low",
        ),
        CLAUDE,
        DEFAULT,
    )
    assert "additionalModelRequestFields" not in call.request
    assert call.notes["x-bedrock-mw-lowered"] == "thinking:off(no-thinking-block-to-replay)"
    first_turn = openai_to_converse(body(user(), tools=[tool], reasoning_effort="low"), CLAUDE, DEFAULT)
    assert first_turn.request["additionalModelRequestFields"]["thinking"]["type"] == "enabled"


@pytest.mark.parametrize(
    ("family", "params", "note"),
    [
        (CLAUDE, {"temperature": 0.2, "top_p": 0.5}, "top_p:dropped(model-takes-temperature-or-top_p)"),
        (NOVA, {"temperature": 2.0}, "temperature:1(bedrock-max)"),
        (CLAUDE, {"temperature": 1.5, "top_p": 0.5}, "temperature:1(bedrock-max),top_p:dropped("),
    ],
)
def test_every_lowered_sampling_value_is_named_in_the_lowered_header(
    family: Any, params: dict[str, Any], note: str
) -> None:
    call = openai_to_converse(body(**params), family, DEFAULT)
    assert call.notes["x-bedrock-mw-lowered"].startswith(note)


def test_sampling_bedrock_accepts_is_not_named() -> None:
    call = openai_to_converse(body(temperature=1.0, top_p=0.9), HAIKU_3, DEFAULT)
    assert "x-bedrock-mw-lowered" not in call.notes

"""The family table's decisions, and that the translators never fail with anything but GatewayError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedrock_mw.errors import GatewayError
from bedrock_mw.routing.families import UNKNOWN_FAMILY, ChatApi, NativeBody, family_of
from bedrock_mw.translate.openai import OpenAIOptions, openai_to_converse
from bedrock_mw.translate.openai.embeddings import plan_embeddings
from bedrock_mw.translate.openai.native import openai_to_invoke

# model id -> (family, chat api, native body, flags that must be set, flags that must be clear)
TABLE: list[tuple[str, str, ChatApi, NativeBody, set[str], set[str]]] = [
    (
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic-claude-3-legacy",
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        {"tools", "images", "documents"},
        {"prompt_caching", "reasoning"},
    ),
    (
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "anthropic-claude-3-legacy",
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        {"images"},
        {"prompt_caching"},
    ),
    (
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "anthropic-claude-3-5-haiku",
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        {"tools", "prompt_caching"},
        {"images", "reasoning"},
    ),
    (
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic-claude",
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        {"reasoning", "prompt_caching", "images", "needs_inference_profile"},
        set(),
    ),
    (
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic-claude",
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        {"reasoning", "structured_output", "tools", "streamed_tools"},
        set(),
    ),
    (
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "anthropic-claude",
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        {"reasoning"},
        set(),
    ),
    (
        "anthropic.claude-v2:1",
        "anthropic-claude-instant",
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        {"system_prompt"},
        {"tools", "images"},
    ),
    (
        "amazon.nova-pro-v1:0",
        "amazon-nova",
        ChatApi.CONVERSE,
        NativeBody.NONE,
        {"tools", "images", "documents", "prompt_caching"},
        {"reasoning", "structured_output"},
    ),
    (
        "amazon.nova-micro-v1:0",
        "amazon-nova-micro",
        ChatApi.CONVERSE,
        NativeBody.NONE,
        {"tools"},
        {"images", "documents"},
    ),
    (
        "amazon.nova-premier-v1:0",
        "amazon-nova-premier",
        ChatApi.CONVERSE,
        NativeBody.NONE,
        {"needs_inference_profile"},
        set(),
    ),
    (
        "amazon.titan-text-express-v1",
        "amazon-titan-text",
        ChatApi.INVOKE,
        NativeBody.TITAN_TEXT,
        set(),
        {"system_prompt", "tools", "images"},
    ),
    (
        "amazon.titan-text-premier-v1:0",
        "amazon-titan-text",
        ChatApi.INVOKE,
        NativeBody.TITAN_TEXT,
        set(),
        {"tools"},
    ),
    (
        "amazon.titan-embed-text-v2:0",
        "amazon-titan-embed",
        ChatApi.NONE,
        NativeBody.TITAN_EMBED,
        {"embeddings"},
        {"tools"},
    ),
    (
        "amazon.titan-embed-text-v1",
        "amazon-titan-embed",
        ChatApi.NONE,
        NativeBody.TITAN_EMBED,
        {"embeddings"},
        set(),
    ),
    (
        "cohere.embed-multilingual-v3",
        "cohere-embed",
        ChatApi.NONE,
        NativeBody.COHERE_EMBED,
        {"embeddings"},
        set(),
    ),
    (
        "cohere.command-r-plus-v1:0",
        "cohere-command",
        ChatApi.CONVERSE,
        NativeBody.NONE,
        {"tools"},
        {"streamed_tools"},
    ),
    (
        "meta.llama3-1-70b-instruct-v1:0",
        "meta-llama",
        ChatApi.CONVERSE,
        NativeBody.LLAMA,
        {"tools"},
        {"streamed_tools", "images"},
    ),
    (
        "meta.llama3-2-90b-instruct-v1:0",
        "meta-llama-3-2-vision",
        ChatApi.CONVERSE,
        NativeBody.LLAMA,
        {"images", "needs_inference_profile"},
        {"streamed_tools"},
    ),
    (
        "meta.llama3-3-70b-instruct-v1:0",
        "meta-llama-3-2-3",
        ChatApi.CONVERSE,
        NativeBody.LLAMA,
        {"tools", "needs_inference_profile"},
        {"streamed_tools", "images"},
    ),
    (
        "meta.llama4-maverick-17b-instruct-v1:0",
        "meta-llama-4",
        ChatApi.CONVERSE,
        NativeBody.LLAMA,
        {"images", "needs_inference_profile"},
        set(),
    ),
    (
        "mistral.mistral-large-2407-v1:0",
        "mistral-large",
        ChatApi.CONVERSE,
        NativeBody.NONE,
        {"tools", "system_prompt"},
        set(),
    ),
    (
        "mistral.mistral-7b-instruct-v0:2",
        "mistral",
        ChatApi.CONVERSE,
        NativeBody.NONE,
        set(),
        {"system_prompt", "tools"},
    ),
    ("deepseek.r1-v1:0", "deepseek", ChatApi.CONVERSE, NativeBody.NONE, {"reasoning"}, {"tools"}),
    (
        "openai.gpt-oss-120b-1:0",
        "openai-gpt-oss",
        ChatApi.CONVERSE,
        NativeBody.NONE,
        {"reasoning", "tools"},
        set(),
    ),
    ("qwen.qwen3-32b-v1:0", "qwen", ChatApi.CONVERSE, NativeBody.NONE, {"tools"}, set()),
]


@pytest.mark.parametrize(("model", "name", "api", "native", "on", "off"), TABLE, ids=[t[0] for t in TABLE])
def test_family_table_decisions(
    model: str, name: str, api: ChatApi, native: NativeBody, on: set[str], off: set[str]
) -> None:
    family = family_of(model)
    assert family.name == name
    assert family.chat_api is api
    assert family.native_body is native
    assert all(getattr(family, flag) for flag in on), on
    assert not any(getattr(family, flag) for flag in off), off


def test_unknown_models_go_to_converse_with_every_feature_allowed() -> None:
    family = family_of("someone.new-model-v1:0")
    assert family is UNKNOWN_FAMILY
    assert family.chat_api is ChatApi.CONVERSE and family.tools and family.images


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "messages",
        "model",
        "max_tokens",
        "temperature",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "reasoning_effort",
        "stream",
        "stream_options",
        "n",
        "metadata",
        "service_tier",
        "seed",
        "input",
        "dimensions",
        "encoding_format",
        "input_type",
    ]
)
ROLE = st.sampled_from(["system", "developer", "user", "user", "assistant", "tool", "function", None])
TEXT = st.text(max_size=6)
IDS = st.sampled_from(["call_1", "call_2", "bad id", ""])
NAMES = st.sampled_from(["get", "person", "bad name", ""])
URLS = st.sampled_from(
    ["data:image/png;base64,iVBORw0K", "https://x/y.png", "data:image/bmp;base64,AA", "data:,x"]
)
CACHE = st.sampled_from([{"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}, {"type": "x"}, "e"])
PART = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "text", "image_url", "file", "input_audio", "refusal"])},
    optional={
        "text": TEXT | JSON,
        "image_url": st.fixed_dictionaries({"url": URLS}) | JSON,
        "file": st.fixed_dictionaries({"file_data": URLS}, optional={"filename": TEXT}) | JSON,
        "cache_control": CACHE,
        "refusal": TEXT,
    },
)
CALL = st.fixed_dictionaries(
    {
        "id": IDS,
        "type": st.sampled_from(["function", "custom"]),
        "function": st.fixed_dictionaries(
            {"name": NAMES, "arguments": st.sampled_from(["{}", '{"a": 1}', "[", ""])}
        ),
    }
)
MESSAGE = st.fixed_dictionaries(
    {"role": ROLE},
    optional={
        "content": st.one_of(TEXT, st.lists(PART, max_size=3), JSON),
        "tool_calls": st.lists(CALL, max_size=2),
        "tool_call_id": IDS,
        "cache_control": CACHE,
    },
)
TOOL = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["function", "function", "custom"]),
        "function": st.fixed_dictionaries(
            {"name": NAMES}, optional={"parameters": JSON, "description": TEXT}
        ),
    }
)
BODY = st.one_of(
    JSON,
    st.dictionaries(KEYS, JSON, max_size=6),
    st.fixed_dictionaries(
        {"messages": st.lists(MESSAGE, max_size=5).map(lambda m: [{"role": "user", "content": "hi"}, *m])},
        optional={
            "tools": st.lists(TOOL, max_size=2),
            "tool_choice": st.sampled_from(["none", "auto", "required"]) | JSON,
            "response_format": st.sampled_from(
                [
                    {"type": "json_object"},
                    {"type": "text"},
                    {"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}}},
                ]
            )
            | JSON,
            "reasoning_effort": st.sampled_from(["low", "high", "none"]) | JSON,
            "stop": JSON,
            "max_tokens": st.integers(0, 3000) | JSON,
            "stream": st.booleans(),
            "seed": JSON,
        },
    ),
)
FAMILIES = st.sampled_from([family_of(t[0]) for t in TABLE] + [UNKNOWN_FAMILY])
OPTIONS = st.builds(OpenAIOptions, allow_url_fetch=st.booleans(), drop_unsupported_params=st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODY, family=FAMILIES, options=OPTIONS)
def test_arbitrary_bodies_only_ever_raise_gateway_error(
    body: Any, family: Any, options: OpenAIOptions
) -> None:
    for translate in (
        lambda: openai_to_converse(body, family, options, media={}),
        lambda: plan_embeddings(body, family, model="amazon.titan-embed-text-v2:0"),
        lambda: openai_to_invoke(body, family, options),
    ):
        try:
            translate()
        except GatewayError as error:
            assert error.http_status == 400

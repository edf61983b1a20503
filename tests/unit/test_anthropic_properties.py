"""Property tests: the Anthropic translator and transcoder never fail with anything but GatewayError."""

from __future__ import annotations

import base64
import contextlib
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_anthropic_helpers import CLAUDE, CLAUDE_3, MISTRAL, NOVA, assert_valid

from bedrock_mw.errors import GatewayError
from bedrock_mw.stream.anthropic import AnthropicStreamTranscoder
from bedrock_mw.translate.anthropic import (
    AnthropicOptions,
    anthropic_count_tokens_request,
    anthropic_to_converse,
    image_urls,
)
from bedrock_mw.translate.types import ConverseCall

FAMILIES = st.sampled_from([CLAUDE, CLAUDE_3, NOVA, MISTRAL])
OPTIONS = AnthropicOptions()
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "model",
        "max_tokens",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "stop_sequences",
        "temperature",
        "top_k",
        "top_p",
        "metadata",
        "stream",
        "cache_control",
        "output_config",
        "service_tier",
        "role",
        "content",
        "type",
        "text",
        "source",
        "data",
        "media_type",
        "url",
        "id",
        "name",
        "input",
        "tool_use_id",
        "is_error",
    ]
)
# JSON shaped like a request (known keys, arbitrary values) reaches deeper than fully random JSON.
request_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.text(max_size=6)
    | st.sampled_from(
        ["user", "assistant", "text", "image", "tool_use", "tool_result", "base64", "image/png", "auto"]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


def only_gateway_errors(b: Any, family: Any, beta: str | None = None) -> None:
    for translate in (anthropic_to_converse, anthropic_count_tokens_request):
        with contextlib.suppress(GatewayError):
            translate(b, family, OPTIONS, beta_header=beta)
    image_urls(b)


@SETTINGS
@given(json_values, FAMILIES)
def test_arbitrary_json_only_raises_gateway_errors(b: Any, family: Any) -> None:
    only_gateway_errors(b, family)


@SETTINGS
@given(st.dictionaries(keys, request_like, max_size=8), FAMILIES, st.none() | st.text(max_size=30))
def test_request_shaped_json_only_raises_gateway_errors(
    b: dict[str, Any], family: Any, beta: str | None
) -> None:
    b.setdefault("model", "m")
    b.setdefault("max_tokens", 100)
    only_gateway_errors(b, family, beta)


# -- valid bodies ----------------------------------------------------------------------------------

words = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).filter(str.strip)
cache = st.none() | st.just({"type": "ephemeral"})
tool_names = st.sampled_from(["get_weather", "search", "Bash"])
b64 = st.binary(min_size=1, max_size=16).map(lambda b: base64.b64encode(b).decode())


def _block(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "text":
        return st.builds(lambda t: {"type": "text", "text": t}, words)
    if kind == "image":
        return st.builds(
            lambda d, m: {"type": "image", "source": {"type": "base64", "media_type": m, "data": d}},
            b64,
            st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]),
        )
    if kind == "document":
        return st.builds(
            lambda t, title: {
                "type": "document",
                "title": title,
                "source": {"type": "text", "media_type": "text/plain", "data": t},
            },
            words,
            st.none() | st.text(max_size=30),
        )
    if kind == "tool_use":
        return st.builds(
            lambda n, i: {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": {}},
            tool_names,
            st.integers(0, 99),
        )
    if kind == "tool_result":
        return st.builds(
            lambda i, c, e: {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": c, "is_error": e},
            st.integers(0, 99),
            st.text(max_size=10),
            st.booleans(),
        )
    if kind == "thinking":
        return st.builds(
            lambda t, s: {"type": "thinking", "thinking": t, "signature": s}, st.text(max_size=10), words
        )
    return st.builds(lambda d: {"type": "redacted_thinking", "data": d}, b64)


def _content(kinds: list[str]) -> st.SearchStrategy[Any]:
    blocks = st.lists(st.one_of(*[_block(k) for k in kinds]), min_size=0, max_size=3)
    # Every message keeps one non-blank text block, as Anthropic requires.
    return st.one_of(words, st.builds(lambda bs, t: [*bs, {"type": "text", "text": t}], blocks, words))


messages = st.lists(
    st.tuples(
        _content(["text", "image", "document", "tool_result"]),
        _content(["text", "tool_use", "thinking", "redacted_thinking"]),
    ),
    min_size=1,
    max_size=3,
).map(
    lambda pairs: [
        m for u, a in pairs for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})
    ][:-1]
)

valid_bodies = st.fixed_dictionaries(
    {"model": st.just("claude"), "max_tokens": st.integers(1, 8192), "messages": messages},
    optional={
        "system": st.one_of(
            words,
            st.lists(
                st.builds(lambda t, c: {"type": "text", "text": t, "cache_control": c}, words, cache),
                max_size=2,
            ),
        ),
        "temperature": st.floats(0, 1),
        "top_p": st.floats(0, 1),
        "top_k": st.integers(0, 500),
        "stop_sequences": st.lists(words, max_size=3),
        "stream": st.booleans(),
        "metadata": st.fixed_dictionaries({"user_id": st.text(max_size=300)}),
        "tools": st.lists(
            st.builds(
                lambda n, d: {"name": n, "description": d, "input_schema": {"type": "object"}},
                tool_names,
                st.text(max_size=10),
            ),
            max_size=3,
            unique_by=lambda t: t["name"],
        ),
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "none"}]),
        "service_tier": st.sampled_from(["auto", "standard_only"]),
    },
)


@SETTINGS
@given(valid_bodies, st.sampled_from([CLAUDE, CLAUDE_3]))
def test_valid_bodies_translate_to_params_botocore_accepts(b: dict[str, Any], family: Any) -> None:
    call = anthropic_to_converse(b, family, OPTIONS, beta_header="claude-code-20250219,context-1m-2025-08-07")
    assert_valid("Converse", {"modelId": "m", **call.request})
    assert call.request["messages"][0]["role"] == "user"
    roles = [m["role"] for m in call.request["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))
    counted = anthropic_count_tokens_request(
        {k: v for k, v in b.items() if k != "max_tokens"}, family, OPTIONS
    )
    assert_valid("CountTokens", {"modelId": "m", "input": counted})


# -- the stream ------------------------------------------------------------------------------------

stream_events = st.one_of(
    st.just({"messageStart": {"role": "assistant"}}),
    st.builds(
        lambda i, t: {"contentBlockDelta": {"contentBlockIndex": i, "delta": {"text": t}}},
        st.integers(0, 3),
        st.text(max_size=5),
    ),
    st.builds(
        lambda i, t: {
            "contentBlockDelta": {"contentBlockIndex": i, "delta": {"reasoningContent": {"text": t}}}
        },
        st.integers(0, 3),
        st.text(max_size=5),
    ),
    st.builds(
        lambda i, b: {
            "contentBlockDelta": {
                "contentBlockIndex": i,
                "delta": {"reasoningContent": {"redactedContent": b}},
            }
        },
        st.integers(0, 3),
        st.binary(max_size=4),
    ),
    st.builds(
        lambda i: {
            "contentBlockStart": {
                "contentBlockIndex": i,
                "start": {"toolUse": {"toolUseId": "t", "name": "n"}},
            }
        },
        st.integers(0, 3),
    ),
    st.builds(
        lambda i, t: {"contentBlockDelta": {"contentBlockIndex": i, "delta": {"toolUse": {"input": t}}}},
        st.integers(0, 3),
        st.text(max_size=5),
    ),
    st.builds(lambda i: {"contentBlockStop": {"contentBlockIndex": i}}, st.integers(0, 3)),
    st.builds(
        lambda r: {"messageStop": {"stopReason": r}},
        st.sampled_from(["end_turn", "tool_use", "malformed_tool_use", "weird"]),
    ),
    st.just({"metadata": {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}}}),
    json_values.filter(lambda v: isinstance(v, dict)),
)


@SETTINGS
@given(st.lists(stream_events, max_size=12))
def test_any_event_sequence_gives_well_formed_sse_ending_once(events: list[Any]) -> None:
    t = AnthropicStreamTranscoder(model="m", message_id="msg_x", call=ConverseCall(request={}))
    out = b"".join(t.feed(e) for e in events) + t.finish()
    frames = out.split(b"\n\n")
    assert frames[-1] == b""
    kinds = [f.split(b"\n", 1)[0] for f in frames[:-1]]
    assert all(k.startswith(b"event: ") for k in kinds)
    terminal = [k for k in kinds if k in (b"event: message_stop", b"event: error")]
    assert len(terminal) == 1 and kinds[-1] == terminal[0]


UNHASHABLE_PATHS = [
    ("messages", 0, "content", 0, "type"),
    ("messages", 0, "content", 0, "source", "media_type"),
    ("messages", 0, "content", 0, "source", "type"),
    ("messages", 0, "role"),
    ("tool_choice", "type"),
    ("thinking", "type"),
    ("service_tier",),
    ("tools", 0, "type"),
]


@SETTINGS
@given(st.sampled_from(UNHASHABLE_PATHS), st.sampled_from([[], {}, [1], {"a": 1}]), FAMILIES)
def test_unhashable_values_at_enum_fields_are_refused_not_crashed(
    path: tuple[Any, ...], value: Any, family: Any
) -> None:
    b: dict[str, Any] = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
                ],
            }
        ],
        "tools": [{"name": "t", "input_schema": {}}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "disabled"},
    }
    target: Any = b
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    only_gateway_errors(b, family)

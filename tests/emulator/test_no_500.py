"""No body reaches a 500: generated bodies at every operation get 200 or a Bedrock-shaped 4xx.

Bodies are valid requests of each family with one part broken (a wrong JSON type at any depth, a
key removed or added, a huge or empty value, bad base64), raw JSON of any shape, and bytes that are
not UTF-8. Sent with httpx and a Bedrock API key over the emulator's real socket.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from bedrock_mw.testing import EMULATOR_API_KEY, BedrockEmulator

OPERATIONS = ("converse", "converse-stream", "invoke", "invoke-with-response-stream", "count-tokens")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n0000").decode()
TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "description": "weather",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}
CONVERSE = {
    "messages": [
        {"role": "user", "content": [{"text": "hi"}, {"image": {"format": "png", "source": {"bytes": PNG}}}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}}]},
    ],
    "system": [{"text": "be brief"}, {"cachePoint": {"type": "default"}}],
    "inferenceConfig": {"maxTokens": 50, "temperature": 0.5, "stopSequences": ["x"]},
    "toolConfig": {"tools": [TOOL], "toolChoice": {"auto": {}}},
    "additionalModelRequestFields": {"top_k": 5},
}
ANTHROPIC = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
    ],
    "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"},
    "metadata": {"user_id": "u"},
    "temperature": 0.5,
    "stop_sequences": ["x"],
}
NOVA = {
    "schemaVersion": "messages-v1",
    "system": [{"text": "be brief"}],
    "messages": [
        {"role": "user", "content": [{"text": "hi"}, {"image": {"format": "png", "source": {"bytes": PNG}}}]}
    ],
    "inferenceConfig": {"max_new_tokens": 50, "temperature": 0.5, "topP": 0.9, "stopSequences": ["x"]},
    "toolConfig": {"tools": [TOOL], "toolChoice": {"auto": {}}},
}
# model id -> a valid native InvokeModel body for it
NATIVE: dict[str, Any] = {
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0": ANTHROPIC,
    "anthropic.claude-3-5-haiku-20241022-v1:0": ANTHROPIC,
    "amazon.nova-lite-v1:0": NOVA,
    "amazon.titan-text-express-v1": {
        "inputText": "User: hi\nBot:",
        "textGenerationConfig": {"maxTokenCount": 20, "stopSequences": []},
    },
    "meta.llama3-70b-instruct-v1:0": {
        "prompt": "<s>[INST] hi [/INST]",
        "max_gen_len": 20,
        "temperature": 0.5,
    },
    "mistral.mixtral-8x7b-instruct-v0:1": {
        "prompt": "<s>[INST] hi [/INST]",
        "max_tokens": 20,
        "stop": ["x"],
        "top_k": 5,
    },
    "mistral.mistral-large-2407-v1:0": {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 20,
        "tool_choice": "auto",
    },
    "amazon.titan-embed-text-v2:0": {"inputText": "embed me", "dimensions": 256, "normalize": True},
    "cohere.embed-english-v3": {
        "texts": ["embed me"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    },
}
MODELS = tuple(NATIVE)
COUNT_TOKENS = (
    {"input": {"converse": {k: v for k, v in CONVERSE.items() if k != "inferenceConfig"}}},
    {"input": {"invokeModel": {"body": base64.b64encode(orjson.dumps(ANTHROPIC)).decode()}}},
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["", " ", "\u0000", "not base64!", "user", "assistant", "object"]),
    st.integers(min_value=1, max_value=3).map(lambda n: "x" * 100_000 * n),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replace(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replace(v, rest, new) if i == head else v) for i, v in enumerate(value)]


def _drop(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if rest:
        child = value[head]
        new_child = _drop(child, rest)
        return _replace(value, (head,), new_child)
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != head}
    return [v for i, v in enumerate(value) if i != head]


@st.composite
def mutated(draw: DrawFn, valid: Any) -> Any:
    """`valid` with one part replaced, removed, or given an extra key."""
    path = draw(st.sampled_from(_paths(valid)))
    action = draw(st.sampled_from(("replace", "drop", "extra")))
    if action == "drop" and path:
        return _drop(valid, path)
    if action == "extra":
        parents = [p for p in _paths(valid) if isinstance(_get(valid, p), dict)]
        parent = draw(st.sampled_from(parents))
        extended = dict(_get(valid, parent), **{draw(st.text(max_size=6)): draw(json_values)})
        return _replace(valid, parent, extended)
    return _replace(valid, path, draw(json_values))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _dumps(value: Any) -> bytes:
    # stdlib json: it writes integers beyond 64 bits and lone surrogates (as escapes), orjson does not
    return json.dumps(value).encode()


@st.composite
def bodies(draw: DrawFn, operation: str, model: str) -> bytes:
    kind = draw(st.sampled_from(("mutated", "mutated", "mutated", "json", "bytes")))
    if kind == "bytes":
        return draw(st.one_of(st.binary(max_size=40), st.just(b'{"messages": "\xff\xfe"}')))
    if kind == "json":
        return _dumps(draw(json_values))
    if operation.startswith("converse"):
        valid: Any = CONVERSE
    elif operation == "count-tokens":
        valid = draw(st.sampled_from(COUNT_TOKENS))
    else:
        # mostly the model's own native body; sometimes another family's
        valid = NATIVE[draw(st.sampled_from((model, model, model, *MODELS)))]
    return _dumps(draw(mutated(valid)))


@pytest.fixture(scope="module")
def http(bedrock_emulator_session: BedrockEmulator) -> Any:
    with httpx.Client(
        base_url=bedrock_emulator_session.endpoint_url,
        headers={"authorization": f"Bearer {EMULATOR_API_KEY}", "content-type": "application/json"},
        timeout=30,
    ) as client:
        yield client


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_bodies_get_200_or_a_bedrock_shaped_4xx(
    http: httpx.Client, operation: str, data: Any
) -> None:
    model = data.draw(st.sampled_from(MODELS))
    body = data.draw(bodies(operation, model))
    response = http.post(f"/model/{model}/{operation}", content=body)
    event(f"{response.status_code} {response.headers.get('x-amzn-errortype', '').partition(':')[0]}")
    if response.status_code == 200:
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.text, body[:500])
    assert response.headers.get("x-amzn-errortype"), response.headers
    assert isinstance(response.json()["message"], str)


_CREDENTIAL_PARTS = st.lists(
    st.sampled_from(["AKIAEMULATOR000000001", "20260101", "us-east-1", "bedrock", "aws4_request", "", "x"]),
    max_size=6,
).map("/".join)
# Visible ASCII with inner spaces: control characters and edge whitespace are not valid header values
# (h11 refuses to send or receive them), so they never reach Bedrock's code.
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
    str.strip
)
authorization_values = st.one_of(
    header_text,
    st.builds(
        "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={}, Signature={}".format,
        _CREDENTIAL_PARTS,
        st.lists(st.sampled_from(["host", "x-amz-date", "content-type", "", "nope"]), max_size=4).map(
            ";".join
        ),
        st.text(alphabet="0123456789abcdef", max_size=64),
    ),
    st.builds("Bearer {}".format, header_text),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    authorization=authorization_values,
    amz_date=st.one_of(st.none(), st.sampled_from(["20260101T000000Z", "garbage", ""]), header_text),
)
def test_malformed_authorization_gets_a_bedrock_shaped_4xx(
    http: httpx.Client, authorization: str, amz_date: str | None
) -> None:
    headers = {"authorization": authorization.strip()}
    if amz_date is not None:
        headers["x-amz-date"] = amz_date.strip()
    response = http.post("/model/amazon.nova-lite-v1:0/converse", content=b"{}", headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers.get("x-amzn-errortype"), response.headers

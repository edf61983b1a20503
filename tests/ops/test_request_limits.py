"""Request limits: bodies over ``limits.max_body_bytes`` are 413, keys over their limits are 429."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import ANTHROPIC, DIALECTS, MODEL, OPENAI, Dialect, ServeGateway

pytestmark = pytest.mark.anyio

MAX_BODY = 1024
# (dialect of the endpoint, path, a valid body padded past the limit)
ENDPOINTS = [
    pytest.param(ANTHROPIC, "/v1/messages", id="messages"),
    pytest.param(ANTHROPIC, "/v1/messages/count_tokens", id="count_tokens"),
    pytest.param(OPENAI, "/v1/chat/completions", id="chat_completions"),
    pytest.param(OPENAI, "/v1/embeddings", id="embeddings"),
]


def oversized_body(path: str) -> bytes:
    padding = "word " * 2000
    if path == "/v1/embeddings":
        body: dict[str, Any] = {"model": "amazon.titan-embed-text-v2:0", "input": padding}
    elif path == "/v1/chat/completions":
        body = OPENAI.body(padding)
    else:
        body = ANTHROPIC.body(padding)
    raw = orjson.dumps(body)
    assert len(raw) > MAX_BODY
    return raw


async def _chunks(raw: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), 500):
        yield raw[start : start + 500]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("dialect", "path"), ENDPOINTS)
async def test_a_body_over_the_limit_is_a_413_in_the_endpoints_dialect(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    dialect: Dialect,
    path: str,
    chunked: bool,
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["limits"] = {"max_body_bytes": MAX_BODY}
    gw = serve(config)
    raw = oversized_body(path)
    content: bytes | AsyncIterator[bytes] = _chunks(raw) if chunked else raw
    request = http.build_request("POST", gw.url + path, content=content, headers=dialect.headers())
    assert ("transfer-encoding" in request.headers) is chunked
    assert ("content-length" in request.headers) is not chunked

    response = await http.send(request)

    assert response.status_code == 413, response.text
    error = dialect.error(response)
    assert error["message"] == f"request body exceeds the limit of {MAX_BODY} bytes"
    if dialect is ANTHROPIC:
        assert error["type"] == "request_too_large"
    else:
        assert (error["type"], error["code"]) == ("invalid_request_error", "request_too_large")
    assert response.headers["x-request-id"].startswith("req_")
    assert len(bedrock_emulator.log) == 0
    (record,) = await gw.usage.wait_for(1)
    assert (record.status, record.error_type) == (413, "request_too_large")


def limited_config(emu: BedrockEmulator, **limits: int) -> dict[str, Any]:
    config = emulator_gateway_config(emu)
    config["virtual_keys"][0]["limits"] = limits
    return config


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_the_request_over_requests_per_minute_is_a_429_with_retry_after(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    dialect: Dialect,
) -> None:
    gw = serve(limited_config(bedrock_emulator, requests_per_minute=2))
    statuses = []
    for _ in range(3):
        response = await http.post(gw.url + dialect.path, json=dialect.body(), headers=dialect.headers())
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]

    error = dialect.error(response)
    assert error["type"] == "rate_limit_error"
    if dialect is OPENAI:
        assert error["code"] == "rate_limit_exceeded"
    assert "virtual key 'test' made 2 requests in the last minute" in error["message"]
    assert "requests_per_minute limit of 2" in error["message"]
    assert 55 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-request-id"]
    # Refused before Bedrock was called.
    assert len(bedrock_emulator.log) == 2


async def test_the_limit_is_per_key_and_spans_both_dialects(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = limited_config(bedrock_emulator, requests_per_minute=2)
    config["virtual_keys"].append({"id": "other", "key": "vk-other", "providers": ["emulator"]})
    gw = serve(config)
    first = await http.post(gw.url + ANTHROPIC.path, json=ANTHROPIC.body(), headers=ANTHROPIC.headers())
    second = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())
    third = await http.post(gw.url + "/v1/models", headers=OPENAI.headers())
    other = await http.post(
        gw.url + OPENAI.path, json={"model": MODEL, "messages": []}, headers=OPENAI.headers("vk-other")
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 405  # a wrong method is refused before any key is charged
    assert (await http.get(gw.url + "/v1/models", headers=OPENAI.headers())).status_code == 429
    assert other.status_code == 400  # another key is not limited (its empty request is its own fault)


DEEP = b'"__deep__"'


def _nest(levels: int) -> bytes:
    """``levels`` arrays inside each other, as raw JSON (orjson cannot dump more than 254 levels)."""
    return b"[" * levels + b"]" * levels


def _tool(dialect: Dialect, *, deep: bool = True) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"x": {"enum": "__deep__"} if deep else {}}}
    if dialect is ANTHROPIC:
        return {"name": "t", "description": "d", "input_schema": schema}
    return {"type": "function", "function": {"name": "t", "parameters": schema}}


# Where a client can nest JSON deeply, per endpoint: (dialect, path, body with "__deep__" to replace)
DEEP_BODIES = [
    pytest.param(ANTHROPIC, "/v1/messages", ANTHROPIC.body(tools=[_tool(ANTHROPIC)]), id="messages-tools"),
    pytest.param(
        ANTHROPIC,
        "/v1/messages",
        {
            "model": MODEL,
            "max_tokens": 64,
            "tools": [_tool(ANTHROPIC, deep=False)],
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "tu_1", "name": "t", "input": {"x": "__deep__"}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "ok"}],
                },
            ],
        },
        id="messages-tool_use-input",
    ),
    pytest.param(
        ANTHROPIC,
        "/v1/messages/count_tokens",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "tools": [_tool(ANTHROPIC)]},
        id="count_tokens-tools",
    ),
    pytest.param(OPENAI, "/v1/chat/completions", OPENAI.body(tools=[_tool(OPENAI)]), id="chat-tools"),
    pytest.param(
        OPENAI,
        "/v1/chat/completions",
        OPENAI.body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "r", "schema": {"type": "object", "default": "__deep__"}},
            }
        ),
        id="chat-response_format",
    ),
]


def _deep_body(body: dict[str, Any], levels: int) -> bytes:
    raw = orjson.dumps(body)
    assert raw.count(DEEP) == 1
    return raw.replace(DEEP, _nest(levels))


@pytest.mark.parametrize(("dialect", "path", "body"), DEEP_BODIES)
async def test_json_nested_past_the_depth_limit_is_a_400_in_the_endpoints_dialect(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    dialect: Dialect,
    path: str,
    body: dict[str, Any],
) -> None:
    gw = serve()
    # 300 levels: orjson parses it (its limit is 1,024) but cannot dump it again (254).
    raw = _deep_body(body, 300)

    response = await http.post(gw.url + path, content=raw, headers=dialect.headers())

    assert response.status_code == 400, response.text
    error = dialect.error(response)
    assert error["type"] == "invalid_request_error"
    assert (
        error["message"] == "request body nests JSON arrays and objects deeper than the limit of 128 levels"
    )
    assert len(bedrock_emulator.log) == 0
    (record,) = await gw.usage.wait_for(1)
    assert record.status == 400


async def test_json_depth_limit_is_configurable_and_shallow_bodies_with_many_brackets_pass(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["limits"] = {"max_json_depth": 20}
    gw = serve(config)
    tool = _tool(ANTHROPIC)
    # Many brackets (past the byte pre-check) but shallow: walked and admitted.
    wide = orjson.dumps(ANTHROPIC.body(tools=[tool], metadata={"user_id": "u"})).replace(
        DEEP, orjson.dumps([[i] for i in range(200)])
    )
    ok = await http.post(gw.url + "/v1/messages", content=wide, headers=ANTHROPIC.headers())
    assert ok.status_code == 200, ok.text

    deep = _deep_body(ANTHROPIC.body(tools=[tool]), 20)
    refused = await http.post(gw.url + "/v1/messages", content=deep, headers=ANTHROPIC.headers())
    assert refused.status_code == 400, refused.text
    assert ANTHROPIC.error(refused)["message"].endswith("deeper than the limit of 20 levels")
    assert len(bedrock_emulator.log) == 1

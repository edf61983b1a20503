"""Malformed and adversarial requests at every endpoint: never a 500, errors in the right dialect, no secret.

In-process (``httpx.ASGITransport``) for speed, with the emulator as the real upstream, so bodies
that happen to be valid go all the way to Bedrock and back.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bedrock_mw import create_gateway
from bedrock_mw.observability import JsonLogFormatter
from bedrock_mw.testing import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_API_KEY,
    EMULATOR_SECRET_ACCESS_KEY,
    BedrockEmulator,
)

from .conftest import MODEL

pytestmark = pytest.mark.anyio

VIRTUAL_KEY = "vk-adversarial-Zq8WmT3pL0"
REDIS_PASSWORD = "r3dis-pa55word-Kx7"
SECRETS = (EMULATOR_SECRET_ACCESS_KEY, EMULATOR_API_KEY, VIRTUAL_KEY, REDIS_PASSWORD)

# path -> (dialect, method) of every gateway endpoint
ENDPOINTS: dict[str, tuple[str, str]] = {
    "/v1/messages": ("anthropic", "POST"),
    "/v1/messages/count_tokens": ("anthropic", "POST"),
    "/v1/chat/completions": ("openai", "POST"),
    "/v1/embeddings": ("openai", "POST"),
    "/v1/models": ("openai", "GET"),
}
PROBES = ("/readyz", "/livez")
UNKNOWN_PATHS = (
    "/",
    "/v1",
    "/v1/",
    "/v1/messages/",
    "/v1/messages/batches",
    "/v1/complete",
    "/v1/models/claude-haiku-4-5",
    "/v2/chat/completions",
    "/v1/chat/completions/x",
    "/_emulator/state",
    "/metrics",
    "/v1/%2e%2e/readyz",
    "/v1/messages%00",
    "/..%2fetc/passwd",
)


def gateway_config(emu: BedrockEmulator) -> dict[str, Any]:
    """Two providers (access keys and a Bedrock API key) and a limited key on an unreachable Redis."""
    return {
        "providers": [
            {
                "id": "keys",
                "auth": {
                    "mode": "access_keys",
                    "access_key_id": EMULATOR_ACCESS_KEY_ID,
                    "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
                },
                "region": "us-east-1",
                "endpoint_url": emu.endpoint_url,
            },
            {
                "id": "bearer",
                "auth": {"mode": "api_key", "api_key": EMULATOR_API_KEY},
                "region": "us-west-2",
                "endpoint_url": emu.endpoint_url,
            },
        ],
        "virtual_keys": [
            {
                "id": "adversary",
                "key": VIRTUAL_KEY,
                "providers": ["keys", "bearer"],
                "limits": {"requests_per_minute": 1_000_000},
            }
        ],
        # Nothing listens on port 1: the limiter fails open and warns, and must not say the password.
        "limits": {"max_body_bytes": 64 * 1024, "redis_url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"},
        "observability": {"metrics": True},
    }


class LogCollector(logging.Handler):
    """Every record of every logger, formatted with all its structured fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._json = JsonLogFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self._json.format(record))

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


@dataclass
class Harness:
    client: httpx.AsyncClient
    logs: LogCollector


@pytest.fixture
def all_logs() -> Iterator[LogCollector]:
    """Capture all logs: INFO and up from every library, everything from the gateway's own loggers.

    Third-party DEBUG logging (botocore prints request headers at DEBUG) is the operator's choice and
    not the gateway's output, so it stays off.
    """
    collector = LogCollector()
    root, gateway = logging.getLogger(), logging.getLogger("bedrock_mw")
    saved = root.level, gateway.level
    root.addHandler(collector)
    root.setLevel(logging.INFO)
    gateway.setLevel(logging.DEBUG)
    yield collector
    root.removeHandler(collector)
    root.setLevel(saved[0])
    gateway.setLevel(saved[1])


@pytest.fixture
async def harness(bedrock_emulator: BedrockEmulator, all_logs: LogCollector) -> AsyncIterator[Harness]:
    app = create_gateway(gateway_config(bedrock_emulator))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=10) as client:
        yield Harness(client, all_logs)
    await app.state.gateway.aclose()


# -- strategies -----------------------------------------------------------------------------------
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
models = (
    st.sampled_from(
        [
            MODEL,
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "amazon.titan-embed-text-v2:0",
            "cohere.embed-english-v3",
            "meta.llama3-8b-instruct-v1:0",
            "amazon.titan-text-express-v1",
            "anthropic.nope-v9",
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc",
            "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "gpt-4o",
            "",
            " ",
        ]
    )
    | json_values
)
roles = st.sampled_from(["user", "assistant", "system", "tool", "developer", "function", ""]) | json_values
block_types = st.sampled_from(
    ["text", "image", "image_url", "tool_use", "tool_result", "thinking", "document", "input_audio", "??"]
)
blocks = st.fixed_dictionaries(
    {"type": block_types},
    optional={
        "text": json_values,
        "image_url": json_values,
        "source": json_values,
        "id": json_values,
        "name": json_values,
        "input": json_values,
        "content": json_values,
        "tool_use_id": json_values,
        "cache_control": st.just({"type": "ephemeral"}) | json_values,
    },
)
contents = st.text(max_size=40) | st.lists(blocks, max_size=3) | json_values
messages = (
    st.lists(
        st.fixed_dictionaries({"role": roles, "content": contents}, optional={"tool_calls": json_values}),
        max_size=3,
    )
    | json_values
)
chat_bodies = st.fixed_dictionaries(
    {"model": models, "messages": messages},
    optional={
        "max_tokens": st.integers(-5, 10**9) | json_values,
        "stream": st.booleans() | json_values,
        "system": json_values,
        "tools": st.lists(st.fixed_dictionaries({"name": json_values, "type": json_values}), max_size=2)
        | json_values,
        "tool_choice": st.sampled_from(["auto", "none", "required", "any"]) | json_values,
        "temperature": json_values,
        "top_p": json_values,
        "stop": json_values,
        "stop_sequences": json_values,
        "thinking": st.just({"type": "enabled", "budget_tokens": 1024}) | json_values,
        "response_format": json_values,
        "stream_options": json_values,
        "n": json_values,
        "seed": json_values,
        "metadata": json_values,
        "input": json_values,
        "dimensions": json_values,
        "encoding_format": json_values,
    },
)
raw_bodies = st.sampled_from(
    [
        b"",
        b" ",
        b"null",
        b"[]",
        b'"text"',
        b"[" * 5000 + b"]" * 5000,
        b'{"model": NaN}',
        b'{"model": "\\ud800", "messages": []}',
        b"\xff\xfe{}",
        b'{"model": 1e999999}',
        b'{"model": "claude-haiku-4-5", "max_tokens": 123456789012345678901234567890, "messages": []}',
        b'{"a": 1}{"b": 2}',
        b'{"model": "' + b"a" * 70_000 + b'"}',
    ]
) | st.binary(max_size=64)
user_text = st.text(max_size=40).map(lambda text: "hello " + text)
valid_messages = st.lists(
    st.fixed_dictionaries({"role": st.just("user"), "content": user_text}), min_size=1, max_size=2
)
chat_models = st.sampled_from([MODEL, "anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-lite-v1:0"])
# Requests a client could really send, per endpoint: most of these reach the emulator and back.
VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "/v1/messages": st.fixed_dictionaries(
        {"model": chat_models, "max_tokens": st.integers(1, 40), "messages": valid_messages},
        optional={
            "stream": st.booleans(),
            "system": user_text,
            "temperature": st.floats(0, 1),
            "stop_sequences": st.lists(st.text(min_size=1, max_size=5), max_size=2),
            "metadata": st.fixed_dictionaries({"user_id": st.text(max_size=10)}),
        },
    ),
    "/v1/messages/count_tokens": st.fixed_dictionaries(
        {"model": chat_models, "messages": valid_messages}, optional={"system": user_text}
    ),
    "/v1/chat/completions": st.fixed_dictionaries(
        {"model": chat_models | st.just("meta.llama3-8b-instruct-v1:0"), "messages": valid_messages},
        optional={
            "stream": st.booleans(),
            "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
            "max_tokens": st.integers(1, 40),
            "temperature": st.floats(0, 2),
            "n": st.just(1),
            "stop": st.text(min_size=1, max_size=5) | st.lists(st.text(min_size=1, max_size=5), max_size=4),
            "user": st.text(max_size=10),
        },
    ),
    "/v1/embeddings": st.fixed_dictionaries(
        {
            "model": st.sampled_from(["amazon.titan-embed-text-v2:0", "cohere.embed-english-v3"]),
            "input": user_text | st.lists(user_text, min_size=1, max_size=3),
        },
        optional={
            "dimensions": st.sampled_from([256, 512, 1024]),
            "encoding_format": st.sampled_from(["float", "base64"]),
        },
    ),
}


def mutated(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid body with one member replaced by an arbitrary JSON value (or removed)."""

    def mutate(args: tuple[dict[str, Any], int, Any, bool]) -> dict[str, Any]:
        body, index, value, remove = args
        key = sorted(body)[index % len(body)]
        if remove:
            return {k: v for k, v in body.items() if k != key}
        return {**body, key: value}

    return st.tuples(valid, st.integers(0, 20), json_values, st.booleans()).map(mutate)


def bodies_for(path: str) -> st.SearchStrategy[bytes]:
    valid = VALID[path]
    return st.one_of(
        valid.map(orjson.dumps),
        mutated(valid).map(orjson.dumps),
        chat_bodies.map(orjson.dumps),
        json_values.map(orjson.dumps),
        raw_bodies,
    )


post_requests = st.sampled_from(sorted(VALID)).flatmap(lambda p: st.tuples(st.just(p), bodies_for(p)))
any_body = st.one_of(*(bodies_for(p) for p in sorted(VALID)))
valid_auth = st.sampled_from(
    [{"authorization": f"Bearer {VIRTUAL_KEY}"}, {"x-api-key": VIRTUAL_KEY}, {"api-key": VIRTUAL_KEY}]
)
wrong_auth = st.sampled_from(
    [
        {},
        {"authorization": f"Bearer {VIRTUAL_KEY}x"},
        {"x-api-key": VIRTUAL_KEY[:-1]},
        {"authorization": f"Basic {VIRTUAL_KEY}"},
        {"authorization": "Bearer "},
        {"authorization": f"Bearer {EMULATOR_API_KEY}"},
        {"x-api-key": EMULATOR_SECRET_ACCESS_KEY},
    ]
)
# Mostly a valid key, so the bodies get past authentication.
auth_headers = st.integers(0, 9).flatmap(lambda i: valid_auth if i < 7 else wrong_auth)
extra_headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        )
        | header_text,
        "anthropic-version": st.sampled_from(["2023-06-01", ""]) | header_text,
        "anthropic-beta": header_text,
        "x-request-id": header_text,
        "accept": header_text,
        "accept-encoding": st.sampled_from(["gzip", "br", "identity", "*"]),
    },
)


def expected_dialect(path: str, headers: dict[str, str]) -> str:
    """An endpoint's own dialect (whatever the method); elsewhere Anthropic's for Anthropic-looking
    requests (``/messages`` paths or an ``anthropic-version`` header), else OpenAI's."""
    if path in ENDPOINTS:
        return ENDPOINTS[path][0]
    if path.endswith(("/messages", "/count_tokens")) or "anthropic-version" in headers:
        return "anthropic"
    return "openai"


def check_error_body(response: httpx.Response, dialect: str) -> None:
    assert response.headers.get("content-type", "").startswith("application/json"), response.text
    payload = response.json()
    if dialect == "anthropic":
        assert payload["type"] == "error", payload
        assert isinstance(payload["error"]["type"], str) and isinstance(payload["error"]["message"], str)
    else:
        error = payload["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str), payload
        assert "code" in error and "param" in error, payload


async def exchange(
    harness: Harness, method: str, path: str, headers: dict[str, str], body: bytes | None
) -> httpx.Response:
    response = await harness.client.request(method, path, headers=headers, content=body)
    shown = f"{method} {path} {headers} -> {response.status_code} {response.text[:500]}"
    event(f"status {response.status_code}")
    assert response.status_code != 500, shown
    assert response.status_code < 600, shown
    raw_headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
    logs = "\n".join(harness.logs.take())
    for secret in SECRETS:
        assert secret not in response.text, shown
        assert secret not in raw_headers, shown
        assert secret not in logs, f"{shown}\n{logs}"
    return response


FAST = settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FAST
@given(request=post_requests, auth=auth_headers, headers=extra_headers)
async def test_any_body_at_a_post_endpoint_gets_a_proper_answer(
    harness: Harness, request: tuple[str, bytes], auth: dict[str, str], headers: dict[str, str]
) -> None:
    path, body = request
    all_headers = {**headers, **auth}
    response = await exchange(harness, "POST", path, all_headers, body)
    if response.status_code >= 400:
        check_error_body(response, ENDPOINTS[path][0])
        assert response.headers["x-request-id"]


@FAST
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    path=st.sampled_from([*ENDPOINTS, *PROBES, *UNKNOWN_PATHS]),
    auth=auth_headers,
    headers=extra_headers,
    body=st.none() | any_body,
)
async def test_any_method_at_any_path_gets_a_proper_answer(
    harness: Harness,
    method: str,
    path: str,
    auth: dict[str, str],
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    all_headers = {**headers, **auth}
    response = await exchange(harness, method, path, all_headers, body)
    if path in PROBES and method == "GET":
        assert response.status_code in (200, 503)
        assert response.json()["status"] in ("ok", "ready", "not ready")
        return
    if path == "/metrics" and method == "GET":
        assert response.status_code == 200
        return
    if path.endswith("/") and path.rstrip("/") in ENDPOINTS:
        # Starlette's trailing-slash redirect: same method and body, to the endpoint itself.
        assert response.status_code == 307
        assert response.headers["location"] == "http://gateway" + path.rstrip("/")
        return
    allowed = path in ENDPOINTS and ENDPOINTS[path][1] == method
    if not allowed:
        known = path in ENDPOINTS or path in PROBES or path == "/metrics"
        assert response.status_code == (405 if known else 404), response.text
    if response.status_code >= 400:
        dialect = ENDPOINTS[path][0] if allowed else expected_dialect(path, all_headers)
        check_error_body(response, dialect)


# -- the answers for wrong methods and unknown paths, pinned ----------------------------------------
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/v1/models"])
async def test_a_wrong_method_on_an_openai_endpoint_answers_in_openai_shape(
    harness: Harness, path: str
) -> None:
    # Clients that speak both APIs (LangChain, LiteLLM) may send anthropic-version everywhere.
    method = "POST" if path == "/v1/models" else "GET"
    response = await harness.client.request(method, path, headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 405
    check_error_body(response, "openai")


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_a_wrong_method_on_an_anthropic_endpoint_answers_in_anthropic_shape(
    harness: Harness, path: str
) -> None:
    response = await harness.client.get(path, headers={"authorization": f"Bearer {VIRTUAL_KEY}"})
    assert response.status_code == 405
    check_error_body(response, "anthropic")
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_an_unknown_path_is_not_reported_as_an_unknown_model(harness: Harness) -> None:
    response = await harness.client.get("/v1/assistants")
    assert response.status_code == 404
    check_error_body(response, "openai")
    error = response.json()["error"]
    assert error["message"] == "no such endpoint: GET /v1/assistants"
    assert error["type"] == "invalid_request_error"
    assert error["code"] != "model_not_found"

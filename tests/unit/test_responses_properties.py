"""Property tests: the Responses translator, seal and transcoder never fail with anything but GatewayError."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.families import family_of
from bedrock_mw.stream.responses import ResponsesStreamTranscoder
from bedrock_mw.translate.responses import (
    ReasoningSeal,
    ResponseHead,
    ResponsesOptions,
    image_urls,
    responses_to_converse,
)

FAMILIES = st.sampled_from(
    [
        family_of("anthropic.claude-sonnet-4-5-20250929-v1:0"),
        family_of("amazon.nova-lite-v1:0"),
        family_of("meta.llama3-1-70b-instruct-v1:0"),
    ]
)
SEAL = ReasoningSeal("k")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

keys = st.sampled_from(
    [
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
        "temperature", "top_p", "reasoning", "text", "metadata", "store", "include", "truncation", "stream",
        "type", "role", "content", "text", "image_url", "file_data", "filename", "call_id", "name",
        "arguments", "output", "summary", "encrypted_content", "format", "schema", "effort", "parameters",
        "strict", "id",
    ]
)  # fmt: skip
request_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.text(max_size=6)
    | st.sampled_from(
        [
            "user",
            "assistant",
            "developer",
            "message",
            "function_call",
            "function_call_output",
            "reasoning",
            "input_text",
            "output_text",
            "input_image",
            "function",
            "json_schema",
            "json_object",
            "low",
            "auto",
            "{}",
            "data:image/png;base64,iVBORw0KGgo=",
            "bmw1.AAAA",
        ]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


@SETTINGS
@given(st.dictionaries(keys, request_like, max_size=8), FAMILIES, st.booleans())
def test_request_shaped_json_only_raises_gateway_errors(
    body: dict[str, Any], family: Any, strict: bool
) -> None:
    body.setdefault("model", "m")
    options = ResponsesOptions(reject_unknown_fields=strict)
    with contextlib.suppress(GatewayError):
        responses_to_converse(body, family, options, SEAL)
    image_urls(body)


@SETTINGS
@given(st.text(max_size=80))
def test_any_string_is_opened_or_refused_never_crashes(token: str) -> None:
    with contextlib.suppress(GatewayError):
        SEAL.open(token, "p")
    with contextlib.suppress(GatewayError):
        SEAL.open("bmw1." + token, "p")


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"contentBlockDelta": {"contentBlockIndex": index, "delta": delta}}


def _tool_start(index: int) -> dict[str, Any]:
    use = {"toolUseId": f"t{index}", "name": "get"}
    return {"contentBlockStart": {"contentBlockIndex": index, "start": {"toolUse": use}}}


blocks = st.integers(0, 3)
fragments = st.text(max_size=5)
event = st.one_of(
    st.builds(lambda i, t: _delta(i, {"text": t}), blocks, fragments),
    st.builds(lambda i, t: _delta(i, {"reasoningContent": {"text": t}}), blocks, fragments),
    st.builds(lambda i, t: _delta(i, {"toolUse": {"input": t}}), blocks, fragments),
    st.builds(_tool_start, blocks),
    st.builds(lambda i: {"contentBlockStop": {"contentBlockIndex": i}}, blocks),
    st.just({"messageStop": {"stopReason": "end_turn"}}),
    st.just({"metadata": {"usage": {"inputTokens": 1, "outputTokens": 2}}}),
)


@SETTINGS
@given(st.lists(event, max_size=12), st.booleans())
def test_any_event_order_gives_increasing_sequence_numbers_and_one_terminal_event(
    events: list[dict[str, Any]], failing: bool
) -> None:
    call = responses_to_converse({"model": "m", "input": "Hi"}, family_of("amazon.nova-lite-v1:0"),
                                 ResponsesOptions(), SEAL)  # fmt: skip
    t = ResponsesStreamTranscoder(head=ResponseHead(model="m", echo=call.echo), call=call, seal=SEAL)
    out = b"".join(t.feed(e) for e in events)
    out += t.fail(GatewayError(ErrorKind.OVERLOADED, "busy")) if failing else t.finish()
    payloads = [orjson.loads(f.split(b"\ndata: ", 1)[1]) for f in out.split(b"\n\n") if f]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    terminal = [p["type"] for p in payloads if p["type"] in ("response.completed", "response.failed")]
    assert len(terminal) == 1 and payloads[-1]["type"] == terminal[0]

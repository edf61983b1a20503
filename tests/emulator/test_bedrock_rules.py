"""Bedrock's refusals, each with its error type and wording, driven by botocore over a real socket.

Bodies botocore's serializer can build go through aiobotocore; bodies it cannot (a wrong JSON type)
are signed by botocore's SigV4Auth and sent as bytes.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bedrock_mw.testing import BedrockEmulator

from .conftest import ClientFactory, sigv4_post, user

pytestmark = pytest.mark.anyio
UNCHECKED = Config(parameter_validation=False, retries={"max_attempts": 0}, read_timeout=10)

SONNET45 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
HAIKU35 = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"
TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}
TOOL_HISTORY = [
    user("weather?"),
    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}]},
    {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}}]},
]


def error_of(response: Any) -> tuple[int, str, str]:
    """(status, error type, message) of a raw error response."""
    return (
        response.status_code,
        response.headers["x-amzn-errortype"].partition(":")[0],
        response.json()["message"],
    )


async def client_error(make_client: ClientFactory, operation: str, **kwargs: Any) -> dict[str, Any]:
    # Bedrock must refuse what botocore's own parameter checks would have caught: turn those off.
    async with make_client(config=UNCHECKED) as client:
        with pytest.raises(ClientError) as info:
            await getattr(client, operation)(**kwargs)
    error: dict[str, Any] = info.value.response["Error"]
    error["Status"] = info.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return error


# --- SigV4 ---------------------------------------------------------------------------------------


def test_signature_more_than_five_minutes_old_is_expired(emu: BedrockEmulator) -> None:
    body = json.dumps({"messages": [user("hi")]}).encode()
    path = f"/model/{NOVA}/converse"
    assert sigv4_post(emu, path, body, when=datetime.now(UTC) - timedelta(minutes=4)).status_code == 200
    status, kind, message = error_of(
        sigv4_post(emu, path, body, when=datetime.now(UTC) - timedelta(minutes=6))
    )
    assert (status, kind) == (403, "InvalidSignatureException")
    assert message.startswith("Signature expired: ") and message.endswith(" - 5 min.)")


def test_signature_dated_more_than_five_minutes_ahead_is_not_yet_current(emu: BedrockEmulator) -> None:
    body = json.dumps({"messages": [user("hi")]}).encode()
    response = sigv4_post(emu, f"/model/{NOVA}/converse", body, when=datetime.now(UTC) + timedelta(minutes=6))
    status, kind, message = error_of(response)
    assert (status, kind) == (403, "InvalidSignatureException")
    assert message.startswith("Signature not yet current: ")


def test_authorization_without_signature_is_a_400_incomplete_signature(emu: BedrockEmulator) -> None:
    import httpx

    response = httpx.post(
        f"{emu.endpoint_url}/model/{NOVA}/converse",
        json={"messages": [user("hi")]},
        headers={
            "authorization": "AWS4-HMAC-SHA256 Credential=AKIAEMULATOR000000001/20260101/us-east-1/bedrock/"
            "aws4_request, SignedHeaders=host;x-amz-date",
            "x-amz-date": "20260101T000000Z",
        },
    )
    status, kind, message = error_of(response)
    assert (status, kind) == (400, "IncompleteSignatureException")
    assert "'Signature'" in message


# --- on-demand throughput ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "meta.llama3-2-11b-instruct-v1:0",
        "meta.llama3-3-70b-instruct-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    ],
)
async def test_profile_only_models_refuse_on_demand_ids(make_client: ClientFactory, model: str) -> None:
    error = await client_error(make_client, "converse", modelId=model, messages=[user("hi")])
    assert error["Code"] == "ValidationException"
    assert (
        f"Invocation of model ID {model} with on-demand throughput isn\u2019t supported" in error["Message"]
    )
    async with make_client() as client:
        answer = await client.converse(modelId="us." + model, messages=[user("hi")])
    assert answer["stopReason"] == "end_turn"


# --- Converse bodies -----------------------------------------------------------------------------

MALFORMED_CONVERSE = {
    "content given as a string": {"messages": [{"role": "user", "content": "hi"}]},
    "a messages item that is not an object": {"messages": ["hi"]},
    "inferenceConfig that is not an object": {"messages": [user("hi")], "inferenceConfig": [1]},
    "a tools item that is not an object": {"messages": [user("hi")], "toolConfig": {"tools": ["x"]}},
    "image bytes that are not base64": {
        "messages": [{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": "%%%"}}}]}]
    },
    "a content block with two members": {
        "messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]
    },
}


@pytest.mark.parametrize("body", MALFORMED_CONVERSE.values(), ids=MALFORMED_CONVERSE.keys())
def test_unreadable_converse_body_is_a_serialization_exception(emu: BedrockEmulator, body: Any) -> None:
    status, kind, _ = error_of(sigv4_post(emu, f"/model/{NOVA}/converse", json.dumps(body).encode()))
    assert (status, kind) == (400, "SerializationException")


CONVERSE_RULES: dict[str, tuple[dict[str, Any], str]] = {
    "empty content list": (
        {"messages": [{"role": "user", "content": []}]},
        "The content field in the Message object at messages.0 is empty.",
    ),
    "blank text block": (
        {"messages": [{"role": "user", "content": [{"text": "ok"}, {"text": "  "}]}]},
        "The text field in the ContentBlock object at messages.0.content.1 is blank.",
    ),
    "no tools": (
        {"messages": [user("hi")], "toolConfig": {"tools": []}},
        "1 validation error detected: Value at 'toolConfig.tools' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ),
    "tool history without toolConfig": (
        {"messages": TOOL_HISTORY},
        "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
    ),
    "maxTokens below 1": (
        {"messages": [user("hi")], "inferenceConfig": {"maxTokens": 0}},
        "Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    ),
    "temperature above 1": (
        {"messages": [user("hi")], "inferenceConfig": {"temperature": 1.5}},
        "Value '1.5' at 'inferenceConfig.temperature' failed to satisfy constraint: "
        "Member must have value less than or equal to 1",
    ),
    "tool without inputSchema": (
        {"messages": [user("hi")], "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather"}}]}},
        "Value null at 'toolConfig.tools.1.member.toolSpec.inputSchema' failed to satisfy constraint: "
        "Member must not be null",
    ),
    "tool name with a space": (
        {
            "messages": [user("hi")],
            "toolConfig": {"tools": [dict(TOOL, toolSpec=dict(TOOL["toolSpec"], name="a b"))]},
        },
        "Value 'a b' at 'toolConfig.tools.1.member.toolSpec.name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+",
    ),
    "tool schema that is not an object schema": (
        {
            "messages": [user("hi")],
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {"type": "string"}}}}]
            },
        },
        "The value at toolConfig.tools.0.toolSpec.inputSchema.json.type must be one of the following: "
        "object.",
    ),
}


@pytest.mark.parametrize(("body", "message"), CONVERSE_RULES.values(), ids=CONVERSE_RULES.keys())
async def test_converse_rule_is_a_validation_exception(
    make_client: ClientFactory, body: dict[str, Any], message: str
) -> None:
    error = await client_error(make_client, "converse", modelId=NOVA, **body)
    assert (error["Status"], error["Code"]) == (400, "ValidationException")
    assert message in error["Message"]


async def test_temperature_with_top_p_is_refused_by_newer_claude_only(make_client: ClientFactory) -> None:
    both = {"temperature": 0.5, "topP": 0.9}
    error = await client_error(
        make_client, "converse", modelId=SONNET45, messages=[user("hi")], inferenceConfig=both
    )
    assert error["Message"] == (
        "The model returned the following errors: `temperature` and `top_p` cannot both be specified "
        "for this model. Please use only one."
    )
    async with make_client() as client:
        assert (await client.converse(modelId=SONNET4, messages=[user("hi")], inferenceConfig=both))["output"]


async def test_converse_additional_fields_unknown_to_claude_are_extra_inputs(
    make_client: ClientFactory,
) -> None:
    fields = {"top_k": 5, "guardrails": {}}
    error = await client_error(
        make_client, "converse", modelId=SONNET4, messages=[user("hi")], additionalModelRequestFields=fields
    )
    assert (
        error["Message"]
        == "The model returned the following errors: guardrails: Extra inputs are not permitted"
    )
    async with make_client() as client:
        answer = await client.converse(
            modelId=SONNET4, messages=[user("hi")], additionalModelRequestFields={"top_k": 5}
        )
    assert answer["stopReason"] == "end_turn"


async def test_converse_anthropic_beta_outside_bedrocks_list_is_invalid(make_client: ClientFactory) -> None:
    fields = {"anthropic_beta": ["mcp-client-2025-04-04"]}
    error = await client_error(
        make_client, "converse", modelId=SONNET4, messages=[user("hi")], additionalModelRequestFields=fields
    )
    assert error["Message"] == "The model returned the following errors: invalid beta flag"
    async with make_client() as client:
        fields = {"anthropic_beta": ["interleaved-thinking-2025-05-14"]}
        answer = await client.converse(
            modelId=SONNET4, messages=[user("hi")], additionalModelRequestFields=fields
        )
    assert answer["stopReason"] == "end_turn"


# --- Anthropic on InvokeModel --------------------------------------------------------------------


def anthropic(**extra: Any) -> dict[str, Any]:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": [user("hi")]}
    body["messages"] = [{"role": "user", "content": "hi"}]
    return {**body, **extra}


async def invoke_error(
    make_client: ClientFactory, model: str, body: bytes | dict[str, Any]
) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client_error(make_client, "invoke_model", modelId=model, body=raw)


ANTHROPIC_RULES: dict[str, tuple[dict[str, Any], str]] = {
    "messages as a string": (
        anthropic(messages="hi"),
        "Malformed input request: #/messages: expected type: JSONArray, found: String, "
        "please reformat your input and try again.",
    ),
    "unknown beta": (anthropic(anthropic_beta=["mcp-servers-2025-12-04"]), "invalid beta flag"),
    "unknown top-level key": (anthropic(stream=True), "stream: Extra inputs are not permitted"),
    "metadata key other than user_id": (
        anthropic(metadata={"user_id": "u", "session": "s"}),
        "metadata.session: Extra inputs are not permitted",
    ),
    "temperature with top_p": (anthropic(temperature=0.5, top_p=0.9), "cannot both be specified"),
    "empty text block": (
        anthropic(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        "messages: text content blocks must be non-empty",
    ),
    "max_tokens below 1": (anthropic(max_tokens=0), "#/max_tokens: 0 is not greater or equal to 1"),
}


@pytest.mark.parametrize(("body", "message"), ANTHROPIC_RULES.values(), ids=ANTHROPIC_RULES.keys())
async def test_anthropic_invoke_rule_is_a_validation_exception(
    make_client: ClientFactory, body: dict[str, Any], message: str
) -> None:
    error = await invoke_error(make_client, SONNET45, body)
    assert (error["Status"], error["Code"]) == (400, "ValidationException")
    assert message in error["Message"]


async def test_anthropic_invoke_accepts_every_key_bedrock_lists(make_client: ClientFactory) -> None:
    body = anthropic(
        anthropic_beta=["context-management-2025-06-27"],
        system="be brief",
        temperature=0.5,
        top_k=5,
        stop_sequences=["zz"],
        metadata={"user_id": "u"},
        output_config={"effort": "high"},
        context_management={"edits": []},
        tools=[{"name": "get", "input_schema": {"type": "object"}}],
        tool_choice={"type": "auto"},
    )
    async with make_client() as client:
        response = await client.invoke_model(modelId=SONNET45, body=json.dumps(body))
        payload = json.loads(await response["body"].read())
    assert payload["content"] == [{"type": "text", "text": "Echo: hi"}]


async def test_malformed_json_on_invoke_is_a_validation_exception(make_client: ClientFactory) -> None:
    error = await invoke_error(make_client, HAIKU35, b'{"messages": [')
    assert (error["Status"], error["Code"]) == (400, "ValidationException")
    assert error["Message"].startswith("Malformed input request")


# --- CountTokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        NOVA,
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU35}",
    ],
    ids=["nova", "profile id", "arn"],
)
async def test_count_tokens_takes_base_anthropic_ids_only(make_client: ClientFactory, model: str) -> None:
    converse_input = {"converse": {"messages": [user("one two")]}}
    error = await client_error(make_client, "count_tokens", modelId=model, input=converse_input)
    assert (error["Code"], error["Message"]) == (
        "ValidationException",
        "The provided model doesn't support counting tokens.",
    )
    async with make_client() as client:
        assert (await client.count_tokens(modelId=HAIKU35, input=converse_input))["inputTokens"] == 6


async def test_count_tokens_of_an_anthropic_invoke_body(make_client: ClientFactory) -> None:
    body = base64.b64decode(base64.b64encode(json.dumps(anthropic()).encode()))
    async with make_client() as client:
        result = await client.count_tokens(modelId=HAIKU35, input={"invokeModel": {"body": body}})
    assert result["inputTokens"] == 5

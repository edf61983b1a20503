"""The lean Converse wire code against botocore's own serialiser, signer and parsers."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import botocore.session
import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamMessage
from botocore.exceptions import ClientError
from botocore.serialize import create_serializer

from bedrock_mw.dispatch import Target, UpstreamError, _upstream_errors
from bedrock_mw.dispatch._wire import (
    CachedKeySigV4Auth,
    EventStreamDecoder,
    client_error,
    operation_path,
    parse_converse,
    serialise_body,
    sign_headers,
    stream_event,
)
from bedrock_mw.testing.eventstream import encode_event, encode_exception, encode_message

_MODEL = botocore.session.get_session().get_service_model("bedrock-runtime")
TARGET = cast(Target, SimpleNamespace(provider=SimpleNamespace(id="p"), region="us-east-1", model_id="m"))
_PNG = b"\x89PNG\r\n\x1a\n\x00\xff"

REQUESTS: dict[str, dict[str, Any]] = {
    "text": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    "system_inference_tools": {
        "messages": [{"role": "user", "content": [{"text": "weather?"}]}],
        "system": [{"text": "be brief"}, {"cachePoint": {"type": "default"}}],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.7, "topP": 0.95, "stopSequences": ["x"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "d",
                        "inputSchema": {"json": {"type": "object", "properties": {"c": {"type": "string"}}}},
                    }
                }
            ],
            "toolChoice": {"auto": {}},
        },
        "additionalModelRequestFields": {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}},
    },
    "blobs": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"image": {"format": "png", "source": {"bytes": _PNG}}},
                    {"document": {"format": "pdf", "name": "doc", "source": {"bytes": b"%PDF-1.4"}}},
                    {"text": "describe"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"redactedContent": b"\x00secret\xff"}},
                    {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": [1, 2.5, None]}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "t1",
                            "content": [
                                {"json": {"ok": True}},
                                {"image": {"format": "jpeg", "source": {"bytes": b"\xff\xd8"}}},
                            ],
                            "status": "success",
                        }
                    }
                ],
            },
        ],
        "system": [{"guardContent": {"image": {"format": "png", "source": {"bytes": _PNG}}}}],
    },
    "reasoning_text": {
        "messages": [
            {
                "role": "assistant",
                "content": [{"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}}],
            },
            {"role": "user", "content": [{"text": "go on"}]},
        ]
    },
}

MODEL_IDS = [
    "anthropic.claude-3-haiku-20240307-v1:0",
    "us.amazon.nova-lite-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc def~x",
]


def botocore_request(operation: str, model_id: str, params: dict[str, Any]) -> dict[str, Any]:
    serializer = create_serializer("rest-json", include_validation=False)
    request: dict[str, Any] = serializer.serialize_to_request(
        {"modelId": model_id, **params}, _MODEL.operation_model(operation)
    )
    return request


@pytest.mark.parametrize("name", list(REQUESTS))
@pytest.mark.parametrize("operation", ["Converse", "ConverseStream"])
def test_body_is_what_botocores_serialiser_sends(name: str, operation: str) -> None:
    params = REQUESTS[name]
    ours = serialise_body(params)
    theirs = botocore_request(operation, "m", params)["body"]
    # botocore's json.dumps uses spaces and ASCII escapes; the JSON (and its key order) is the same.
    assert json.dumps(orjson.loads(ours)).encode() == theirs


def test_blobs_are_base64_strings_in_the_body() -> None:
    body = orjson.loads(serialise_body(REQUESTS["blobs"]))
    assert body["messages"][0]["content"][0]["image"]["source"]["bytes"] == base64.b64encode(_PNG).decode()
    assert base64.b64decode(body["messages"][1]["content"][0]["reasoningContent"]["redactedContent"]) == (
        b"\x00secret\xff"
    )


def test_non_ascii_text_round_trips() -> None:
    params = {"messages": [{"role": "user", "content": [{"text": "héllo ✓ 𝄞"}]}]}
    assert orjson.loads(serialise_body(params)) == json.loads(
        botocore_request("Converse", "m", params)["body"]
    )


def test_a_value_that_is_neither_json_nor_blob_is_refused() -> None:
    with pytest.raises(TypeError):
        serialise_body({"messages": [{"x": object()}]})


@pytest.mark.parametrize("model_id", MODEL_IDS)
@pytest.mark.parametrize(
    ("operation", "suffix"), [("Converse", "converse"), ("ConverseStream", "converse-stream")]
)
def test_url_path_is_built_as_botocore_builds_it(model_id: str, operation: str, suffix: str) -> None:
    assert (
        operation_path(model_id, suffix)
        == botocore_request(operation, model_id, REQUESTS["text"])["url_path"]
    )


def test_arn_model_ids_are_fully_percent_encoded() -> None:
    path = operation_path("arn:aws:bedrock:us-east-1:1:inference-profile/us.x", "converse")
    assert path == "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/converse"


def test_cached_signing_key_gives_botocores_signature() -> None:
    creds = Credentials("AKID", "secret", "token")
    for day in ("20260101T000000Z", "20260102T000000Z", "20260101T120000Z"):
        request = AWSRequest(method="POST", url="https://h/model/m/converse", data=b"{}")
        request.context["timestamp"] = day
        expected = SigV4Auth(creds, "bedrock", "us-west-2").signature("string-to-sign", request)
        assert (
            CachedKeySigV4Auth(creds, "bedrock", "us-west-2").signature("string-to-sign", request) == expected
        )


def test_signed_headers_carry_scope_and_session_token() -> None:
    creds = Credentials("AKID", "secret", "tok").get_frozen_credentials()
    headers = sign_headers(
        creds, "eu-west-1", "https://h/model/m/converse", b"{}", {"Content-Type": "application/json"}
    )
    assert headers["X-Amz-Security-Token"] == "tok"
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert "/eu-west-1/bedrock/aws4_request" in auth
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token" in auth


def test_answer_blobs_decode_to_bytes_and_metadata_is_botocores() -> None:
    redacted = base64.b64encode(b"\x01\x02").decode()
    image = base64.b64encode(_PNG).decode()
    body = orjson.dumps(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"redactedContent": redacted}},
                        {"image": {"format": "png", "source": {"bytes": image}}},
                        {"text": "ok"},
                    ],
                }
            },
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
        }
    )
    parsed = parse_converse(body, 200, {"x-amzn-requestid": "rid"})
    content = parsed["output"]["message"]["content"]
    assert content[0]["reasoningContent"]["redactedContent"] == b"\x01\x02"
    assert content[1]["image"]["source"]["bytes"] == _PNG
    assert parsed["ResponseMetadata"]["RequestId"] == "rid"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize(
    ("headers", "body", "code", "message"),
    [
        (
            {"x-amzn-errortype": "ValidationException:http://internal.amazon.com/coral/"},
            {"message": "bad"},
            "ValidationException",
            "bad",
        ),
        (
            {},
            {"__type": "com.amazon.bedrock#ThrottlingException", "Message": "slow"},
            "ThrottlingException",
            "slow",
        ),
        ({}, {"code": "AccessDeniedException", "message": "no"}, "AccessDeniedException", "no"),
        ({}, {}, "503", ""),
    ],
)
def test_errors_are_described_as_botocore_describes_them(
    headers: dict[str, str], body: dict[str, Any], code: str, message: str
) -> None:
    status = 503 if not body else 400
    err = client_error("Converse", status, {"x-amzn-requestid": "rid", **headers}, orjson.dumps(body))
    assert err.response["Error"] == {"Code": code, "Message": message}
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_a_non_json_error_body_still_gives_status_and_request_id() -> None:
    err = client_error("Converse", 502, {"x-amzn-requestid": "rid"}, b"<html>bad gateway</html>")
    assert err.response["Error"]["Code"] == "502"
    assert err.response["ResponseMetadata"]["RequestId"] == "rid"


def test_mapped_error_keeps_status_request_id_and_retry_after() -> None:
    headers = {"x-amzn-requestid": "rid", "retry-after": "3", "x-amzn-errortype": "ThrottlingException"}
    with pytest.raises(UpstreamError) as caught, _upstream_errors("Converse", TARGET):
        raise client_error("Converse", 429, headers, b'{"message":"Too many requests"}')
    err = caught.value
    assert (err.code, err.status, err.request_id, err.retry_after) == ("ThrottlingException", 429, "rid", 3.0)
    assert err.message == "Too many requests"


def _stream_bytes() -> bytes:
    return (
        encode_event("messageStart", {"role": "assistant"})
        + encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo"}})
        + encode_event(
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"reasoningContent": {"redactedContent": "AAE="}}},
        )
        + encode_event("messageStop", {"stopReason": "end_turn"})
    )


def _decode(data: bytes, split: int) -> list[dict[str, Any]]:
    decoder = EventStreamDecoder("ConverseStream")
    return [*decoder.feed(data[:split]), *decoder.feed(data[split:])]


def test_stream_split_at_every_byte_boundary_decodes_identically() -> None:
    data = _stream_bytes()
    whole = _decode(data, len(data))
    assert [next(iter(e)) for e in whole] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "messageStop",
    ]
    assert whole[1]["contentBlockDelta"]["delta"]["text"] == "héllo"
    assert whole[2]["contentBlockDelta"]["delta"]["reasoningContent"]["redactedContent"] == b"\x00\x01"
    for split in range(len(data) + 1):
        assert _decode(data, split) == whole


def test_stream_fed_one_byte_at_a_time_decodes_identically() -> None:
    data = _stream_bytes()
    decoder = EventStreamDecoder("ConverseStream")
    events = [event for i in range(len(data)) for event in decoder.feed(data[i : i + 1])]
    assert events == _decode(data, 0)


def test_exception_frame_after_events_raises_after_them() -> None:
    data = encode_event("messageStart", {"role": "assistant"}) + encode_exception(
        "throttlingException", "slow down"
    )
    for split in range(len(data) + 1):
        decoder = EventStreamDecoder("ConverseStream")
        events: list[dict[str, Any]] = []
        with pytest.raises(ClientError) as caught:
            for part in (data[:split], data[split:]):
                events.extend(decoder.feed(part))
        assert [next(iter(e)) for e in events] == ["messageStart"]
        assert caught.value.response["Error"] == {"Code": "throttlingException", "Message": "slow down"}


def test_exception_frame_maps_to_a_mid_stream_upstream_error() -> None:
    decoder = EventStreamDecoder("ConverseStream")
    with pytest.raises(UpstreamError) as caught, _upstream_errors("ConverseStream", TARGET, mid_stream=True):
        list(decoder.feed(encode_exception("modelStreamErrorException", "boom")))
    err = caught.value
    assert (err.code, err.status, err.mid_stream, err.message) == (
        "ModelStreamErrorException",
        424,
        True,
        "boom",
    )


def test_error_frame_raises_with_its_code_and_message() -> None:
    frame = encode_message(
        [(":message-type", "error"), (":error-code", "InternalFailure"), (":error-message", "x")], b""
    )
    with pytest.raises(ClientError) as caught:
        list(EventStreamDecoder("ConverseStream").feed(frame))
    assert caught.value.response["Error"] == {"Code": "InternalFailure", "Message": "x"}


def test_unknown_message_types_are_skipped() -> None:
    message = EventStreamMessage(b"", {":message-type": "ping"}, b"", 0)
    assert stream_event(message, "ConverseStream") is None


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ConnectionTimeoutError("connect timed out"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(111, "Connection refused"),
    ],
)
def test_transport_failures_map_to_a_connection_error(exc: Exception) -> None:
    with pytest.raises(UpstreamError) as caught, _upstream_errors("Converse", TARGET):
        raise exc
    assert (caught.value.code, caught.value.status) == ("ConnectionError", 502)


def test_a_read_timeout_maps_to_a_timeout() -> None:
    with pytest.raises(UpstreamError) as caught, _upstream_errors("Converse", TARGET):
        raise TimeoutError()
    assert (caught.value.code, caught.value.status) == ("Timeout", 504)

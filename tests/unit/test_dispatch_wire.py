"""The lean client's wire code against botocore's own service model, serialiser, signer and parsers."""

from __future__ import annotations

import base64
import json
import zlib
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import botocore.session
import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, EventStreamMessage
from botocore.exceptions import ClientError
from botocore.parsers import EventStreamJSONParser, create_parser
from botocore.serialize import create_serializer
from hypothesis import given
from hypothesis import strategies as st

from bedrock_mw.dispatch import Target, UpstreamError, _upstream_errors
from bedrock_mw.dispatch._wire import (
    CachedKeySigV4Auth,
    EventStreamDecoder,
    FrameSplitError,
    FrameSplitter,
    Wire,
    blob_paths,
    client_error,
    parse_json_answer,
    serialise_body,
    sign_headers,
    signing_key,
    stream_event,
)
from bedrock_mw.testing.eventstream import encode_event, encode_exception, encode_message
from bedrock_mw.testing.sigv4 import SignedRequest, compute_signature, parse_authorization

_MODEL = botocore.session.get_session().get_service_model("bedrock-runtime")
WIRE = Wire.from_model(_MODEL)
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
        WIRE[operation].path(model_id) == botocore_request(operation, model_id, REQUESTS["text"])["url_path"]
    )
    assert WIRE[operation].path(model_id).endswith(f"/{suffix}")


@pytest.mark.parametrize("model_id", MODEL_IDS)
@pytest.mark.parametrize("operation", ["InvokeModel", "InvokeModelWithResponseStream", "CountTokens"])
def test_every_operations_path_is_botocores(model_id: str, operation: str) -> None:
    params: dict[str, Any] = (
        {"body": b"{}"} if operation.startswith("Invoke") else {"input": {"converse": {}}}
    )
    assert WIRE[operation].path(model_id) == botocore_request(operation, model_id, params)["url_path"]


def test_arn_model_ids_are_fully_percent_encoded() -> None:
    path = WIRE["Converse"].path("arn:aws:bedrock:us-east-1:1:inference-profile/us.x")
    assert path == "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/converse"


def test_invoke_options_become_the_headers_botocore_sends() -> None:
    options = {
        "contentType": "application/json",
        "accept": "application/json",
        "trace": "ENABLED",
        "guardrailIdentifier": "gr-1",
        "guardrailVersion": "3",
        "performanceConfigLatency": "optimized",
    }
    for operation in ("InvokeModel", "InvokeModelWithResponseStream"):
        theirs = botocore_request(operation, "m", {"body": b"{}", **options})["headers"]
        names = WIRE[operation].request_headers
        assert {names[member]: value for member, value in options.items()} == theirs


@pytest.mark.parametrize("day", ["20260101T000000Z", "20260102T235959Z", "20261231T120000Z"])
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_cached_signing_key_gives_botocores_signature(day: str, region: str) -> None:
    creds = Credentials("AKID", f"secret-{region}", "token")
    for auth in (CachedKeySigV4Auth(creds, "bedrock", region), CachedKeySigV4Auth(creds, "bedrock", region)):
        request = AWSRequest(method="POST", url="https://h/model/m/converse", data=b"{}")
        request.context["timestamp"] = day
        request.headers["X-Amz-Date"] = day
        expected = SigV4Auth(creds, "bedrock", region).signature("string-to-sign", request)
        assert auth.signature("string-to-sign", request) == expected


def test_add_auth_derives_the_signing_key_once_per_secret_and_day() -> None:
    signing_key.cache_clear()
    creds = Credentials("AKID", "another-secret").get_frozen_credentials()
    for _ in range(3):
        sign_headers(creds, "us-east-1", "https://h/model/m/converse", b"{}", {})
    info = signing_key.cache_info()
    assert (info.misses, info.hits) == (1, 2)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_signature_is_what_an_independent_sigv4_verifier_computes(model_id: str) -> None:
    path = WIRE["Converse"].path(model_id)
    url = "https://bedrock-runtime.us-west-2.amazonaws.com" + path
    headers = sign_headers(
        Credentials("AKID", "secret").get_frozen_credentials(),
        "us-west-2",
        url,
        b"{}",
        {"Content-Type": "application/json"},
    )
    sent = [("host", "bedrock-runtime.us-west-2.amazonaws.com"), *headers.items()]
    auth = parse_authorization(headers["Authorization"])
    expected = compute_signature(
        SignedRequest("POST", path, "", sent, b"{}"), auth, "secret", headers["X-Amz-Date"]
    )
    assert auth.signature == expected
    assert (auth.region, auth.service) == ("us-west-2", "bedrock")


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
    parsed = parse_json_answer(WIRE["Converse"], body, 200, {"x-amzn-requestid": "rid"})
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
    decoder = EventStreamDecoder(WIRE["ConverseStream"])
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
    decoder = EventStreamDecoder(WIRE["ConverseStream"])
    events = [event for i in range(len(data)) for event in decoder.feed(data[i : i + 1])]
    assert events == _decode(data, 0)


def test_exception_frame_after_events_raises_after_them() -> None:
    data = encode_event("messageStart", {"role": "assistant"}) + encode_exception(
        "throttlingException", "slow down"
    )
    for split in range(len(data) + 1):
        decoder = EventStreamDecoder(WIRE["ConverseStream"])
        events: list[dict[str, Any]] = []
        with pytest.raises(ClientError) as caught:
            for part in (data[:split], data[split:]):
                events.extend(decoder.feed(part))
        assert [next(iter(e)) for e in events] == ["messageStart"]
        assert caught.value.response["Error"] == {"Code": "throttlingException", "Message": "slow down"}


def test_exception_frame_maps_to_a_mid_stream_upstream_error() -> None:
    decoder = EventStreamDecoder(WIRE["ConverseStream"])
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
        list(EventStreamDecoder(WIRE["ConverseStream"]).feed(frame))
    assert caught.value.response["Error"] == {"Code": "InternalFailure", "Message": "x"}


def test_unknown_message_types_are_skipped() -> None:
    message = EventStreamMessage(b"", {":message-type": "ping"}, b"", 0)
    assert stream_event(message, WIRE["ConverseStream"]) is None


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


# -- blob members, read from the service model --------------------------------------------------------
_B64 = base64.b64encode(b"\x00\xffblob").decode()


def blob_examples(shape: Any, stack: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Each blob reachable from ``shape`` as (dotted path, a value holding only that blob)."""
    kind = shape.type_name
    if kind == "blob":
        return [("", _B64)]
    if shape.name in stack:  # a recursive shape: its blobs were found on the way in
        return []
    inner = (*stack, shape.name)
    if kind == "list":
        return [(path, [value]) for path, value in blob_examples(shape.member, inner)]
    if kind == "map":
        return [(path, {"key": value}) for path, value in blob_examples(shape.value, inner)]
    if kind != "structure":
        return []
    return [
        (f"{name}.{path}" if path else name, {name: value})
        for name, member in shape.members.items()
        for path, value in blob_examples(member, inner)
    ]


def test_the_converse_answers_blob_members_are_the_service_models() -> None:
    expected = {path for path, _ in blob_examples(_MODEL.operation_model("Converse").output_shape)}
    assert expected  # images, documents, redacted reasoning...
    assert set(blob_paths(WIRE["Converse"].answer)) == expected


@pytest.mark.parametrize("operation", ["ConverseStream", "InvokeModelWithResponseStream"])
def test_each_stream_events_blob_members_are_the_service_models(operation: str) -> None:
    output = _MODEL.operation_model(operation).output_shape
    union = output.members[output.serialization["payload"]]
    events = WIRE[operation].events
    assert events is not None
    for name, event in union.members.items():
        if event.metadata.get("exception"):
            assert name not in events
            continue
        assert set(blob_paths(events[name])) == {path for path, _ in blob_examples(event)}, name


def test_every_converse_answer_blob_decodes_as_botocores_parser_decodes_it() -> None:
    shape = _MODEL.operation_model("Converse").output_shape
    parser = create_parser("rest-json")
    for path, example in blob_examples(shape):
        body = orjson.dumps(example)
        theirs = parser.parse({"headers": {}, "status_code": 200, "body": body}, shape)
        ours = parse_json_answer(WIRE["Converse"], body, 200, {})
        del theirs["ResponseMetadata"], ours["ResponseMetadata"]
        assert ours == theirs, path


@pytest.mark.parametrize("operation", ["ConverseStream", "InvokeModelWithResponseStream"])
def test_every_stream_event_blob_decodes_as_botocores_parser_decodes_it(operation: str) -> None:
    output = _MODEL.operation_model(operation).output_shape
    union = output.members[output.serialization["payload"]]
    parser = EventStreamJSONParser()
    checked = 0
    for name, event in union.members.items():
        for path, example in blob_examples(event):
            frame = encode_event(name, example)
            buffer = EventStreamBuffer()
            buffer.add_data(frame)
            (message,) = list(buffer)
            theirs = parser.parse(message.to_response_dict(), union)
            (ours,) = EventStreamDecoder(WIRE[operation]).feed(frame)
            ours[name].pop("p", None)  # Bedrock's padding, outside the model: botocore drops it
            assert ours == theirs, f"{name}.{path}"
            checked += 1
    assert checked


# -- raw frames ---------------------------------------------------------------------------------------
def test_frames_split_at_every_byte_boundary_come_out_whole_and_untouched() -> None:
    data = _stream_bytes()
    frames = FrameSplitter().feed(data)
    assert b"".join(frames) == data and len(frames) == 4
    for split in range(len(data) + 1):
        splitter = FrameSplitter()
        assert [*splitter.feed(data[:split]), *splitter.feed(data[split:])] == frames
        assert splitter.pending == 0
    one_by_one = FrameSplitter()
    assert [f for i in range(len(data)) for f in one_by_one.feed(data[i : i + 1])] == frames


def test_a_cut_frame_is_left_pending() -> None:
    data = _stream_bytes()
    splitter = FrameSplitter()
    assert len(splitter.feed(data[:-3])) == 3
    assert splitter.pending > 0


@pytest.mark.parametrize("garbage", [b"<html>bad gateway</html>", b"\x00\x00\x00\x05" + b"\x00" * 12])
def test_bytes_that_are_not_an_event_stream_are_refused(garbage: bytes) -> None:
    with pytest.raises(FrameSplitError):
        FrameSplitter().feed(garbage)


@given(st.binary(min_size=12, max_size=64))
def test_the_splitter_never_yields_a_frame_from_random_bytes_without_a_valid_prelude(data: bytes) -> None:
    try:
        frames = FrameSplitter().feed(data)
    except FrameSplitError:
        return
    for frame in frames:  # only reachable when the random bytes happen to carry a valid prelude
        assert zlib.crc32(frame[:8]) == int.from_bytes(frame[8:12], "big")

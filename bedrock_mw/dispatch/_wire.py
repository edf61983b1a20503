"""Bedrock Runtime's wire format for Converse and ConverseStream, sans-IO, on botocore's own pieces.

The translators already emit botocore's parameter shapes, so the only serialisation work left is
what botocore's rest-json serialiser does to them: ``bytes`` members (blobs) become base64 strings,
and the model id moves into the URL, percent-encoded by botocore's own ``percent_encode``. Signing
is botocore's ``SigV4Auth`` with the derived key cached (it depends only on secret, date, region and
service). Answers are parsed with orjson, blobs decoded back to ``bytes`` where botocore would, and
failures are described as botocore's ``ClientError`` so that the dispatcher maps them in its one place.
Event streams are decoded by botocore's sans-IO ``EventStreamBuffer``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.eventstream import EventStreamBuffer, EventStreamMessage
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import percent_encode

SIGNING_NAME = "bedrock"


# -- requests -----------------------------------------------------------------------------------
def _blob(value: Any) -> str:
    # orjson calls this only for types it cannot serialise; in a Converse request those are blobs.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def serialise_body(params: dict[str, Any]) -> bytes:
    """The JSON body botocore's rest-json serialiser sends for these Converse params (blobs in base64)."""
    return orjson.dumps(params, default=_blob)


@lru_cache(maxsize=1024)
def operation_path(model_id: str, operation: str) -> str:
    """``/model/{modelId}/converse`` (or ``converse-stream``), the model id encoded as botocore does."""
    return f"/model/{percent_encode(model_id)}/{operation}"


class CachedKeySigV4Auth(SigV4Auth):  # type: ignore[misc]
    """botocore's SigV4, with the derived signing key looked up instead of four HMACs per call."""

    _keys: dict[tuple[str, str, str, str], bytes] = {}

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        secret = self.credentials.secret_key
        day = request.context["timestamp"][0:8]
        slot = (secret, day, self._region_name, self._service_name)
        key = self._keys.get(slot)
        if key is None:
            k_date = self._sign(f"AWS4{secret}".encode(), day)
            k_region = self._sign(k_date, self._region_name)
            k_service = self._sign(k_region, self._service_name)
            key = self._sign(k_service, "aws4_request")
            if len(self._keys) > 64:  # rotated secrets and past days: never grows without bound
                self._keys.clear()
            self._keys[slot] = key
        return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_headers(
    credentials: Any, region: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """The headers of a POST to ``url`` signed with SigV4 (``X-Amz-Security-Token`` for session keys)."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    CachedKeySigV4Auth(credentials, SIGNING_NAME, region).add_auth(request)
    return dict(request.headers.items())


class ResponseParserError(BotoCoreError):  # type: ignore[misc]
    """An answer that is not what Bedrock's model says (a broken proxy or emulator, not Bedrock)."""

    fmt = "Unable to parse the Bedrock answer: {error}"


# -- answers ------------------------------------------------------------------------------------
def _decode_blob(holder: dict[str, Any], name: str) -> None:
    value = holder.get(name)
    if isinstance(value, str):
        holder[name] = base64.b64decode(value)


_SOURCED = ("image", "document", "video", "audio")


def _decode_content_blobs(block: dict[str, Any]) -> None:
    for kind in _SOURCED:
        media = block.get(kind)
        if isinstance(media, dict) and isinstance(media.get("source"), dict):
            _decode_blob(media["source"], "bytes")
    reasoning = block.get("reasoningContent")
    if isinstance(reasoning, dict):
        _decode_blob(reasoning, "redactedContent")
    guard = block.get("guardContent")
    if isinstance(guard, dict):
        _decode_content_blobs(guard)
    result = block.get("toolResult")
    if isinstance(result, dict):
        for part in result.get("content") or ():
            if isinstance(part, dict):
                _decode_content_blobs(part)


def parse_converse(body: bytes, status: int, headers: dict[str, str]) -> dict[str, Any]:
    """A Converse answer as botocore parses it: blobs as ``bytes``, plus ``ResponseMetadata``."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ResponseParserError(error="Bedrock returned a Converse answer that is not JSON") from None
    if not isinstance(parsed, dict):
        raise ResponseParserError(error="Bedrock returned a Converse answer that is not an object")
    message = (parsed.get("output") or {}).get("message")
    if isinstance(message, dict):
        for block in message.get("content") or ():
            if isinstance(block, dict):
                _decode_content_blobs(block)
    parsed["ResponseMetadata"] = response_metadata(status, headers)
    return parsed


def response_metadata(status: int, headers: dict[str, str]) -> dict[str, Any]:
    """botocore's ``ResponseMetadata`` for an answer (headers lower-cased, as botocore has them)."""
    return {
        "RequestId": headers.get("x-amzn-requestid"),
        "HTTPStatusCode": status,
        "HTTPHeaders": headers,
        "RetryAttempts": 0,
    }


def client_error(operation: str, status: int, headers: dict[str, str], body: bytes) -> ClientError:
    """A failed call described exactly as botocore's rest-json error parser describes it."""
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    code: Any = headers.get("x-amzn-errortype")
    if code is None:
        code = parsed.get("code", parsed.get("Code", parsed.get("__type", str(status))))
    code = str(code).split(":", 1)[0].rsplit("#", 1)[-1]
    message = parsed.get("message", parsed.get("Message", ""))
    error = {
        "Error": {"Code": code, "Message": str(message)},
        "ResponseMetadata": response_metadata(status, headers),
    }
    return ClientError(error, operation)


# -- event streams ------------------------------------------------------------------------------
def _decode_stream_blobs(event: dict[str, Any]) -> None:
    delta = (event.get("contentBlockDelta") or {}).get("delta")
    if isinstance(delta, dict):
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            _decode_blob(reasoning, "redactedContent")
        image = delta.get("image")
        if isinstance(image, dict) and isinstance(image.get("source"), dict):
            _decode_blob(image["source"], "bytes")


def stream_event(message: EventStreamMessage, operation: str) -> dict[str, Any] | None:
    """One event-stream message as ``{event_type: payload}``; exceptions raise ``ClientError``."""
    headers = message.headers
    kind = headers.get(":message-type")
    if kind == "event":
        event_type = headers.get(":event-type")
        payload = orjson.loads(message.payload) if message.payload else {}
        event = {event_type: payload}
        if event_type == "contentBlockDelta":
            _decode_stream_blobs(event)
        return event
    if kind == "exception":
        try:
            body = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError:
            body = {}
        text = body.get("message", body.get("Message", "")) if isinstance(body, dict) else ""
        code = str(headers.get(":exception-type") or "UnknownError")
        raise ClientError({"Error": {"Code": code, "Message": str(text)}}, operation)
    if kind == "error":
        code = str(headers.get(":error-code") or "UnknownError")
        raise ClientError(
            {"Error": {"Code": code, "Message": str(headers.get(":error-message") or "")}}, operation
        )
    return None  # other message types (none today) are not events


class EventStreamDecoder:
    """Bytes in, Converse stream events out: botocore's ``EventStreamBuffer`` plus payload parsing."""

    def __init__(self, operation: str) -> None:
        self._buffer = EventStreamBuffer()
        self._operation = operation

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        """The complete events that ``data`` finishes (frames may be split anywhere)."""
        self._buffer.add_data(data)
        for message in self._buffer:
            event = stream_event(message, self._operation)
            if event is not None:
                yield event

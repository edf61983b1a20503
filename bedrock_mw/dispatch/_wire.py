"""Bedrock Runtime's wire format, sans-IO, on botocore's own pieces and its service model.

Everything that depends on the API's definition is read from botocore's ``bedrock-runtime`` service
model once (:meth:`Wire.from_model`): each operation's method and URI, the request members that travel
as headers (InvokeModel's ``guardrailIdentifier`` is ``X-Amzn-Bedrock-GuardrailIdentifier``), and the
blob members of every answer and stream event, which JSON carries as base64 and botocore hands over
as ``bytes``. What is left is what botocore's rest-json serialiser does to a translator's params
(``bytes`` become base64 strings; the model id moves into the URL, encoded by botocore's
``percent_encode``), SigV4 through botocore's public ``SigV4Auth`` (its derived key cached), answers
parsed with orjson, failures described as botocore's ``ClientError`` (so the dispatcher maps them in
its one place), and event streams read as botocore's sans-IO ``EventStreamBuffer`` reads them
(``_frames``: its checks, exceptions and header parser, a cheaper path for all-string headers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypedDict

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.eventstream import EventStreamMessage
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import percent_encode

from . import _sigv4
from ._frames import MessageReader
from ._sigv4 import signing_key

if TYPE_CHECKING:
    from ..translate.types import JSONObject

SIGNING_NAME = "bedrock"
EVENT_STREAM = "application/vnd.amazon.eventstream"

# A blob tree: member name -> subtree, or None where the member itself is a blob. Lists are
# transparent (a subtree applies to every item); ``MAP_VALUES`` stands for every value of a map.
BlobTree = dict[str, "BlobTree | None"]
MAP_VALUES = "*"


# -- the service model ------------------------------------------------------------------------------
def _blob_bearing(shape: Any, memo: dict[str, bool], visiting: set[str]) -> bool:
    """Whether a blob is reachable from ``shape`` (recursive shapes are followed once)."""
    name = shape.name
    if name in memo:
        return memo[name]
    if name in visiting:
        return False  # a cycle adds nothing the first visit does not find
    visiting.add(name)
    kind = shape.type_name
    if kind == "blob":
        found = True
    elif kind == "structure":
        found = any(_blob_bearing(m, memo, visiting) for m in shape.members.values())
    elif kind == "list":
        found = _blob_bearing(shape.member, memo, visiting)
    elif kind == "map":
        found = _blob_bearing(shape.value, memo, visiting)
    else:
        found = False
    visiting.discard(name)
    memo[name] = found
    return found


def _tree(shape: Any, memo: dict[str, bool], trees: dict[str, BlobTree]) -> BlobTree | None:
    """The blob tree of a structure, list or map (shared between recursive uses of one shape)."""
    kind = shape.type_name
    if kind == "blob":
        return None
    if kind == "list":
        return _tree(shape.member, memo, trees)
    if kind == "map":
        return {MAP_VALUES: _tree(shape.value, memo, trees)}
    if shape.name in trees:
        return trees[shape.name]
    tree: BlobTree = {}
    trees[shape.name] = tree  # before recursing: a recursive shape reuses this very dict
    for member, member_shape in shape.members.items():
        if _blob_bearing(member_shape, memo, set()):
            tree[member] = _tree(member_shape, memo, trees)
    return tree


@dataclass(frozen=True, slots=True)
class Operation:
    """One Bedrock Runtime operation as the wire sees it, read from the service model."""

    name: str
    method: str
    uri: str
    request_headers: Mapping[str, str]
    """Request members that travel as headers: member name -> header name."""
    answer: BlobTree
    """Blob members of a JSON answer (empty when it has none, is a raw blob or an event stream)."""
    events: Mapping[str, BlobTree] | None
    """For event-stream answers: blob members of each event type's payload (exceptions excluded)."""

    def path(self, model_id: str) -> str:
        """The request path, the model id percent-encoded as botocore encodes it."""
        return _path(self.uri, model_id)


@lru_cache(maxsize=1024)
def _path(uri: str, model_id: str) -> str:
    return uri.replace("{modelId}", percent_encode(model_id))


OPERATIONS = ("Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream", "CountTokens")


@dataclass(frozen=True, slots=True)
class Wire:
    """The operations the gateway makes, as botocore's service model defines them."""

    operations: Mapping[str, Operation]

    @classmethod
    def from_model(cls, model: Any) -> Wire:
        """Read the operations from a botocore ``ServiceModel`` of ``bedrock-runtime``."""
        memo: dict[str, bool] = {}
        operations: dict[str, Operation] = {}
        for name in OPERATIONS:
            op = model.operation_model(name)
            headers = {
                member: shape.serialization["name"]
                for member, shape in op.input_shape.members.items()
                if shape.serialization.get("location") == "header"
            }
            output = op.output_shape
            payload = output.serialization.get("payload")
            answer: BlobTree = {}
            events: dict[str, BlobTree] | None = None
            if payload is None:
                answer = _tree(output, memo, {}) or {}
            elif output.members[payload].serialization.get("eventstream"):
                events = {}
                for event_name, event in output.members[payload].members.items():
                    if event.metadata.get("exception"):
                        continue
                    events[event_name] = _tree(event, memo, {}) or {}
            operations[name] = Operation(
                name, op.http["method"], op.http["requestUri"], headers, answer, events
            )
        return cls(operations)

    def __getitem__(self, operation: str) -> Operation:
        return self.operations[operation]


def blob_paths(tree: BlobTree | None, prefix: str = "", _seen: tuple[int, ...] = ()) -> list[str]:
    """Every blob below a tree as a dotted path (list levels are transparent; a recursion stops once)."""
    if tree is None:
        return [prefix] if prefix else []
    if id(tree) in _seen:
        return []
    paths: list[str] = []
    for name, child in tree.items():
        paths += blob_paths(child, f"{prefix}.{name}" if prefix else name, (*_seen, id(tree)))
    return paths


# -- requests -----------------------------------------------------------------------------------
def _blob(value: Any) -> str:
    # orjson calls this only for types it cannot serialise; in Bedrock's params those are blobs.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def serialise_body(params: Mapping[str, Any]) -> bytes:
    """The JSON body botocore's rest-json serialiser sends for these params (blobs in base64)."""
    return orjson.dumps(params, default=_blob)


class CachedKeySigV4Auth(SigV4Auth):  # type: ignore[misc]
    """botocore's SigV4 with the derived signing key looked up instead of four HMACs per call.

    Overrides only the public ``signature`` step, with the day read from the request's public
    ``context["timestamp"]`` that ``add_auth`` has just set (a request with a ``Date`` header has no
    ``X-Amz-Date``): no private member of botocore is used. Canonicalisation, the string to
    sign and the headers stay botocore's.
    """

    def __init__(self, credentials: Any, service: str, region: str) -> None:
        super().__init__(credentials, service, region)
        self.key_scope = (region, service)

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        day = request.context["timestamp"][0:8]
        key = signing_key(self.credentials.secret_key, day, *self.key_scope)
        return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_headers(
    credentials: Any, region: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """The headers of a POST to ``url`` signed with SigV4 (``X-Amz-Security-Token`` for session keys).

    The common shape is signed by :mod:`._sigv4` (the same bytes, a fraction of the cost); anything
    else by botocore's ``SigV4Auth``.
    """
    fast = _sigv4.sign(credentials, region, SIGNING_NAME, url, body, headers)
    if fast is not None:
        return fast
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    CachedKeySigV4Auth(credentials, SIGNING_NAME, region).add_auth(request)
    return dict(request.headers.items())


class ResponseParserError(BotoCoreError):  # type: ignore[misc]
    """An answer that is not what Bedrock's model says (a broken proxy or emulator, not Bedrock)."""

    fmt = "Unable to parse the Bedrock answer: {error}"


# -- answers ------------------------------------------------------------------------------------
def decode_blobs(value: Any, tree: BlobTree | None) -> Any:
    """Turn the base64 strings at the tree's blob members into ``bytes``, in place; returns ``value``."""
    if tree is None:
        return _blob_value(value)
    if type(value) is dict:
        _decode_members(value, tree)
    elif type(value) is list:
        for item in value:
            decode_blobs(item, tree)
    return value


def _blob_value(value: Any) -> Any:
    if isinstance(value, str):
        return binascii.a2b_base64(value)  # base64.b64decode(value) without its Python wrapper
    if isinstance(value, list):
        return [_blob_value(item) for item in value]
    return value


def _decode_members(value: JSONObject, tree: BlobTree) -> None:
    # The hot loop of every streamed event: plain type checks, no write-back where nothing changed.
    for name, child in tree.items():
        if name == MAP_VALUES:
            for key, item in value.items():
                value[key] = decode_blobs(item, child)
            continue
        member = value.get(name)
        if member is None:
            continue
        if child is None:
            value[name] = _blob_value(member)
        elif type(member) is dict:
            _decode_members(member, child)
        elif type(member) is list:
            for item in member:
                decode_blobs(item, child)


def parse_json_answer(operation: Operation, body: bytes, status: int, headers: Mapping[str, str]) -> Any:
    """A JSON answer as botocore parses it: blobs as ``bytes``, plus ``ResponseMetadata``."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ResponseParserError(
            error=f"Bedrock returned a {operation.name} answer that is not JSON"
        ) from None
    if not isinstance(parsed, dict):
        raise ResponseParserError(error=f"Bedrock returned a {operation.name} answer that is not an object")
    if operation.answer:
        decode_blobs(parsed, operation.answer)
    parsed["ResponseMetadata"] = response_metadata(status, headers)
    return parsed


class ResponseMetadata(TypedDict):
    """botocore's ``ResponseMetadata``, as the lean client fills it (no request id if Bedrock sent none)."""

    RequestId: str | None
    HTTPStatusCode: int
    HTTPHeaders: Mapping[str, str]
    RetryAttempts: int


def response_metadata(status: int, headers: Mapping[str, str]) -> ResponseMetadata:
    """botocore's ``ResponseMetadata`` for an answer (headers lower-cased, as botocore has them)."""
    return {
        "RequestId": headers.get("x-amzn-requestid"),
        "HTTPStatusCode": status,
        "HTTPHeaders": headers,
        "RetryAttempts": 0,
    }


def client_error(operation: str, status: int, headers: Mapping[str, str], body: bytes) -> ClientError:
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
def stream_event(message: EventStreamMessage, operation: Operation) -> JSONObject | None:
    """One event-stream message as ``{event_type: payload}``; exceptions raise ``ClientError``.

    The event is decoded by the service model at run time; the transports hand it on as the
    operation's event TypedDict (``ConverseStreamOutputTypeDef``, ``ResponseStreamTypeDef``).
    """
    return _event(message.headers, message.payload, operation)


def _event(headers: Mapping[str, Any], payload: bytes, operation: Operation) -> JSONObject | None:
    kind = headers.get(":message-type")
    if kind == "event":
        event_type: Any = headers.get(":event-type")
        body = orjson.loads(payload) if payload else {}
        events = operation.events
        if events is not None:
            tree = events.get(event_type)
            if tree and type(body) is dict:
                _decode_members(body, tree)
        return {event_type: body}
    if kind == "exception":
        try:
            body = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            body = {}
        text = body.get("message", body.get("Message", "")) if isinstance(body, dict) else ""
        code = str(headers.get(":exception-type") or "UnknownError")
        raise ClientError({"Error": {"Code": code, "Message": str(text)}}, operation.name)
    if kind == "error":
        code = str(headers.get(":error-code") or "UnknownError")
        raise ClientError(
            {"Error": {"Code": code, "Message": str(headers.get(":error-message") or "")}}, operation.name
        )
    return None  # other message types (none today) are not events


class EventStreamDecoder:
    """Bytes in, stream events out: messages read as botocore reads them (``_frames``), payloads parsed."""

    def __init__(self, operation: Operation) -> None:
        self._reader = MessageReader()
        self._operation = operation

    def feed(self, data: bytes) -> Iterator[JSONObject]:
        """The complete events that ``data`` finishes (frames may be split anywhere)."""
        operation = self._operation
        for _, _, _, headers, payload, _ in self._reader.read(data):
            event = _event(headers, payload, operation)
            if event is not None:
                yield event


# Prelude: total length, headers length (4 bytes each, big-endian), then the prelude's CRC32.
_PRELUDE = 12
_MIN_FRAME = 16  # prelude + the message CRC
_MAX_FRAME = 24 * 1024 * 1024  # botocore's own ceiling on a message (16 MiB payload + headers)


class FrameSplitError(ValueError):
    """Bytes that are not an event stream (a broken proxy or emulator, not Bedrock)."""


class FrameSplitter:
    """Bytes in, whole event-stream frames out, untouched (for byte-for-byte relays).

    Only the prelude is checked (its CRC), which is enough to never cut a frame in the wrong place;
    the receiving SDK checks each frame's own CRC as it would from Bedrock.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The complete frames that ``data`` finishes (frames may be split anywhere)."""
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        while len(buffer) >= _PRELUDE:
            total = int.from_bytes(buffer[0:4], "big")
            if zlib.crc32(buffer[0:8]) != int.from_bytes(buffer[8:12], "big"):
                raise FrameSplitError("event-stream prelude checksum mismatch")
            if not _MIN_FRAME <= total <= _MAX_FRAME:
                raise FrameSplitError(f"event-stream frame of {total} bytes")
            if len(buffer) < total:
                break
            frames.append(bytes(buffer[:total]))
            del buffer[:total]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame (non-zero at the end of a stream means it was cut short)."""
        return len(self._buffer)

"""Sans-IO encoder for `application/vnd.amazon.eventstream` frames, as Bedrock streams them.

Frame layout: prelude (total length u32, headers length u32), prelude CRC32, headers, payload,
message CRC32 (over every byte before it). Only string headers (type 7) are needed here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Any

import orjson

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING_HEADER = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
# Real Bedrock pads every event payload with a "p" member of varying length so that payload
# sizes do not leak the text length; clients ignore it, and emitting it keeps them honest.
_PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """Encode string-valued event-stream headers."""
    out = bytearray()
    for name, value in headers:
        raw_name = name.encode()
        raw_value = value.encode()
        if len(raw_name) > 255 or len(raw_value) > 65535:
            raise ValueError(f"event-stream header {name!r} too long")
        out.append(len(raw_name))
        out += raw_name
        out.append(_STRING_HEADER)
        out += struct.pack(">H", len(raw_value))
        out += raw_value
    return bytes(out)


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One complete event-stream message."""
    raw_headers = encode_headers(headers)
    total = _PRELUDE.size + _CRC.size + len(raw_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(raw_headers))
    head = prelude + _CRC.pack(zlib.crc32(prelude)) + raw_headers + payload
    return head + _CRC.pack(zlib.crc32(head))


def padding_for(size: int) -> str:
    """Deterministic filler for the `p` member."""
    return _PAD_ALPHABET[: 1 + size % len(_PAD_ALPHABET)]


def encode_event(event_type: str, payload: Mapping[str, Any], pad: bool = True) -> bytes:
    """An `event` message whose JSON payload is `payload` (plus the `p` padding member)."""
    body = dict(payload)
    if pad:
        body["p"] = padding_for(len(event_type) + len(body))
    return encode_message(
        [
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        orjson.dumps(body),
    )


def encode_exception(exception_type: str, message: str) -> bytes:
    """An `exception` message, e.g. `throttlingException`, which botocore raises as EventStreamError."""
    return encode_message(
        [
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        orjson.dumps({"message": message}),
    )

"""AWS event-stream frames as bytes, sans-IO: read a frame's headers and payload, write a frame.

The pass-through relays Bedrock's frames to the caller exactly as they arrived (the lean client
splits them, ``dispatch._wire.FrameSplitter``), so it never decodes and re-encodes them; it only
needs, for a few frames, what their headers say (which event or exception a frame carries), and
to write the gateway's own exception frame when a stream fails. The format:

    total length (u32) | headers length (u32) | prelude CRC (u32) | headers | payload | message CRC (u32)

CRCs are left to the caller's SDK, which checks them on the untouched bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

_PRELUDE = 12

_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_PRELUDE_FIELDS = struct.Struct("!II")

# Header value types and the fixed sizes of those that have one (types 6 and 7 carry a u16 length).
_FIXED_SIZES = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
_BYTES, _STRING = 6, 7


class FrameError(ValueError):
    """Bytes that are not an event-stream frame (a header type the format does not define)."""


def frames(data: bytes) -> Iterator[memoryview]:
    """Each frame of ``data`` (one or more whole frames, back to back), without copying."""
    view = memoryview(data)
    offset, size = 0, len(data)
    while offset < size:
        (length,) = _U32.unpack_from(view, offset)
        yield view[offset : offset + length]
        offset += length


def frame_headers(frame: memoryview | bytes) -> dict[str, str]:
    """A frame's string headers (``:message-type``, ``:event-type``, ``:exception-type``...)."""
    _, headers_length = _PRELUDE_FIELDS.unpack_from(frame, 0)
    offset, end = _PRELUDE, _PRELUDE + headers_length
    found: dict[str, str] = {}
    while offset < end:
        name_length = frame[offset]
        name = bytes(frame[offset + 1 : offset + 1 + name_length]).decode("utf-8", "replace")
        offset += 1 + name_length
        kind = frame[offset]
        offset += 1
        if kind in (_BYTES, _STRING):
            (value_length,) = _U16.unpack_from(frame, offset)
            value = bytes(frame[offset + 2 : offset + 2 + value_length])
            offset += 2 + value_length
            if kind == _STRING:
                found[name] = value.decode("utf-8", "replace")
        elif kind in _FIXED_SIZES:
            offset += _FIXED_SIZES[kind]
        else:
            raise FrameError(f"event-stream header type {kind} is unknown")
    return found


def frame_payload(frame: memoryview | bytes) -> bytes:
    """A frame's payload bytes."""
    total, headers_length = _PRELUDE_FIELDS.unpack_from(frame, 0)
    return bytes(frame[_PRELUDE + headers_length : total - 4])


def encode_frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One frame with string headers (the gateway's own exceptions, sent mid-stream)."""
    encoded = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        encoded += bytes((len(raw_name),)) + raw_name + bytes((_STRING,))
        encoded += _U16.pack(len(raw_value)) + raw_value
    total = _PRELUDE + len(encoded) + len(payload) + 4
    prelude = _PRELUDE_FIELDS.pack(total, len(encoded))
    head = prelude + _U32.pack(zlib.crc32(prelude))
    body = head + bytes(encoded) + payload
    return body + _U32.pack(zlib.crc32(body))

"""Event-stream messages out of bytes, as botocore's ``EventStreamBuffer`` reads them, at less cost.

botocore's buffer is the authority on the wire format and stays it: the same checks in the same
order (prelude CRC, header and payload length limits, message CRC), its own exception classes,
its own ``EventStreamMessage``, and its own header parser for anything but the plain case. What
is ours is only the cost of the common case, where botocore's pure-Python header parser (a slice
and a ``struct`` call per field) was the larger part of the streaming gateway's CPU: headers that
are all strings (what Bedrock sends: ``:event-type``, ``:content-type``, ``:message-type``) are
read here with slices of one buffer; any other header type, a length that runs past the header
block, or a repeated name is handed to botocore's ``EventStreamHeaderParser``, which answers (or
raises) as it always does, and a message too short to be one (under 16 bytes) hands the rest of
the stream to botocore's buffer. A header block seen before (a stream repeats one per event type)
is not parsed again, and consumed bytes are dropped once per feed, not once per message.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from botocore.eventstream import (
    ChecksumMismatch,
    EventStreamBuffer,
    EventStreamHeaderParser,
    EventStreamMessage,
    InvalidHeadersLength,
    InvalidPayloadLength,
    MessagePrelude,
)

_PRELUDE = 12
_PRELUDE_FIELDS = struct.Struct(">III")  # total length, headers length, prelude CRC
_CRC = struct.Struct(">I")
_SEEN_BLOCKS = 64
_MIN_MESSAGE = _PRELUDE + 4  # the prelude and the message CRC
# botocore's limits (``botocore.eventstream``), checked in its order.
_MAX_HEADERS = 128 * 1024
_MAX_PAYLOAD = 24 * 1024 * 1024
_STRING = 7


def _string_headers(block: bytes) -> dict[str, str | bytes | bool | int] | None:
    """Headers that are all strings, or None when botocore's parser must read the block."""
    headers: dict[str, str | bytes | bool | int] = {}
    at, end = 0, len(block)
    while at < end:
        name_end = at + 1 + block[at]
        if name_end + 3 > end or block[name_end] != _STRING:
            return None
        value_at = name_end + 3
        value_end = value_at + int.from_bytes(block[name_end + 1 : value_at], "big")
        if value_end > end:
            return None
        name = block[at + 1 : name_end].decode("utf-8")
        if name in headers:
            return None  # botocore raises DuplicateHeader
        headers[name] = block[value_at:value_end].decode("utf-8")
        at = value_end
    return headers


Headers = dict[str, str | bytes | bool | int]
Parts = tuple[int, int, int, Headers, bytes, int]
"""A message as :meth:`MessageReader.read` gives it: total length, headers length, prelude CRC,
headers, payload, message CRC."""


def _parts(buffer: EventStreamBuffer) -> Iterator[Parts]:
    for m in buffer:
        prelude = m.prelude
        yield prelude.total_length, prelude.headers_length, prelude.crc, m.headers, m.payload, m.crc


class MessageReader:
    """Bytes in (split anywhere), botocore ``EventStreamMessage``\\ s out, checked as botocore checks them."""

    def __init__(self) -> None:
        self._rest = b""
        self._parser = EventStreamHeaderParser()
        # A stream repeats a handful of header blocks (one per event type): each is parsed once.
        self._seen: dict[bytes, Headers] = {}
        self._botocore: EventStreamBuffer | None = None

    def feed(self, data: bytes) -> Iterator[EventStreamMessage]:
        """The complete messages ``data`` finishes."""
        for total, headers_length, prelude_crc, headers, payload, crc in self.read(data):
            prelude = MessagePrelude(total, headers_length, prelude_crc)
            yield EventStreamMessage(prelude, dict(headers), payload, crc)  # its own dict, as botocore's

    def read(self, data: bytes) -> Iterator[Parts]:
        """The complete messages ``data`` finishes, as plain tuples (no objects built per message).

        A message's headers dict may be shared with earlier messages that had the same header
        block: read it, never change it.
        """
        if self._botocore is not None:
            self._botocore.add_data(data)
            yield from _parts(self._botocore)
            return
        data = self._rest + data if self._rest else bytes(data)
        view = memoryview(data)  # CRCs read in place, without a copy of each message
        at, size = 0, len(data)
        unpack_prelude, unpack_crc, crc32, seen = (
            _PRELUDE_FIELDS.unpack_from,
            _CRC.unpack_from,
            zlib.crc32,
            self._seen,
        )
        try:
            while size - at >= _PRELUDE:
                total, headers_length, prelude_crc = unpack_prelude(data, at)
                computed = crc32(view[at : at + 8])
                if computed != prelude_crc:
                    raise ChecksumMismatch(prelude_crc, computed)
                if headers_length > _MAX_HEADERS:
                    raise InvalidHeadersLength(headers_length)
                if total - headers_length - _PRELUDE - 4 > _MAX_PAYLOAD:
                    raise InvalidPayloadLength(total - headers_length - _PRELUDE - 4)
                if total < _MIN_MESSAGE:
                    # No message is this short; botocore's buffer reads the rest, as it would.
                    self._botocore = EventStreamBuffer()
                    self._botocore.add_data(data[at:])
                    at = size
                    yield from _parts(self._botocore)
                    return
                if size - at < total:
                    break
                # Offsets as botocore takes them, from the start of the message in what was fed so far.
                payload_end = at + total - 4
                (message_crc,) = unpack_crc(data, payload_end)
                computed = crc32(view[at + _PRELUDE - 4 : payload_end], prelude_crc)
                if computed != message_crc:
                    raise ChecksumMismatch(message_crc, computed)
                headers_end = at + _PRELUDE + headers_length
                block = data[at + _PRELUDE : headers_end]
                headers = seen.get(block)
                if headers is None:
                    headers = self._headers(block)
                payload = data[headers_end:payload_end]
                at += total
                yield total, headers_length, prelude_crc, headers, payload, message_crc
        finally:
            self._rest = data[at:]

    def _headers(self, block: bytes) -> Headers:
        headers = _string_headers(block)
        if headers is None:
            parsed: dict[str, str | bytes | bool | int] = self._parser.parse(block)
            return parsed
        if len(self._seen) < _SEEN_BLOCKS:
            self._seen[block] = headers
        return headers

"""The event-stream reader gives exactly what botocore's EventStreamBuffer gives, bytes split anywhere.

Differential: random messages (string headers as Bedrock sends them, every other header type
botocore knows, payloads of any bytes), optionally one byte corrupted, fed in random pieces to both
readers; the messages (headers, payload, CRC) or the exception must be the same.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from typing import Any

from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from bedrock_mw.dispatch._frames import MessageReader
from bedrock_mw.testing.eventstream import encode_event

NAMES = st.sampled_from([":event-type", ":content-type", ":message-type", ":exception-type", "x", "é"])
# (type byte, encoded value): strings (all Bedrock sends) half the time, else any other type botocore reads.
STRINGS = st.text(max_size=20).map(lambda s: (7, struct.pack(">H", len(s.encode())) + s.encode()))
OTHERS = st.one_of(
    st.just((0, b"")),
    st.just((1, b"")),
    st.integers(-128, 127).map(lambda v: (2, struct.pack(">b", v))),
    st.integers(-(2**15), 2**15 - 1).map(lambda v: (3, struct.pack(">h", v))),
    st.integers(-(2**31), 2**31 - 1).map(lambda v: (4, struct.pack(">i", v))),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: (5, struct.pack(">q", v))),
    st.binary(max_size=20).map(lambda b: (6, struct.pack(">H", len(b)) + b)),
    st.binary(min_size=16, max_size=16).map(lambda b: (9, b)),
)
VALUES = st.one_of(STRINGS, OTHERS)


def _message(headers: list[tuple[str, tuple[int, bytes]]], payload: bytes) -> bytes:
    block = b"".join(
        struct.pack(">B", len(n.encode())) + n.encode() + struct.pack(">B", t) + v for n, (t, v) in headers
    )
    total = 12 + len(block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(block))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + block + payload
    return body + struct.pack(">I", zlib.crc32(body))


MESSAGES = st.lists(
    st.builds(_message, st.lists(st.tuples(NAMES, VALUES), max_size=4), st.binary(max_size=64)), max_size=4
)


def _read(reader: Any, pieces: list[bytes], botocore: bool) -> tuple[list[Any], str | None]:
    seen: list[Any] = []
    try:
        for piece in pieces:
            if botocore:
                reader.add_data(piece)
                messages = list(reader)
            else:
                messages = list(reader.feed(piece))
            seen += [(m.headers, m.payload, m.crc, m.prelude.total_length) for m in messages]
    except Exception as exc:
        return seen, f"{type(exc).__name__}: {exc}"
    return seen, None


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=400)
@given(
    MESSAGES,
    st.lists(st.integers(0, 10_000), max_size=6),
    st.none() | st.tuples(st.integers(0), st.integers(1, 255)),
)
def test_messages_and_errors_are_the_same_as_botocores(
    messages: list[bytes], cuts: list[int], corrupt: tuple[int, int] | None
) -> None:
    data = bytearray(b"".join(messages))
    if corrupt is not None and data:
        data[corrupt[0] % len(data)] ^= corrupt[1]
    pieces = _pieces(bytes(data), cuts)
    assert _read(MessageReader(), pieces, botocore=False) == _read(EventStreamBuffer(), pieces, botocore=True)


def test_bedrock_events_split_at_every_byte_are_read_as_botocore_reads_them() -> None:
    data = encode_event("messageStart", {"role": "assistant"}) + encode_event(
        "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo"}}
    )
    whole = _read(EventStreamBuffer(), [data], botocore=True)
    assert len(whole[0]) == 2 and whole[1] is None
    for split in range(len(data) + 1):
        assert _read(MessageReader(), [data[:split], data[split:]], botocore=False) == whole


def test_a_message_shorter_than_any_real_one_is_read_by_botocores_buffer_as_it_would() -> None:
    prelude = struct.pack(">II", 12, 0)
    prelude += struct.pack(">I", zlib.crc32(prelude))
    data = prelude + _message([(":event-type", (7, b"\x00\x01a"))], b"{}")
    expected = _read(EventStreamBuffer(), [data], botocore=True)
    assert _read(MessageReader(), [data[:5], data[5:]], botocore=False) == expected
    assert len(expected[0]) == 2  # botocore takes the 12 bytes as an empty message


def test_a_repeated_header_name_raises_botocores_duplicate_header() -> None:
    data = _message([(":event-type", (7, b"\x00\x01a")), (":event-type", (7, b"\x00\x01b"))], b"{}")
    expected = _read(EventStreamBuffer(), [data], botocore=True)
    assert expected[1] is not None and expected[1].startswith("DuplicateHeader")
    assert _read(MessageReader(), [data], botocore=False) == expected


def test_a_repeated_header_block_gives_each_message_its_own_headers() -> None:
    data = b"".join(encode_event("contentBlockDelta", {"delta": {"text": str(i)}}) for i in range(3))
    messages = list(MessageReader().feed(data))
    assert [m.headers for m in messages] == [m.headers for m in _botocore_messages(data)]
    messages[0].headers["changed"] = "by a consumer"
    assert "changed" not in messages[1].headers and "changed" not in messages[2].headers


def _botocore_messages(data: bytes) -> list[Any]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)

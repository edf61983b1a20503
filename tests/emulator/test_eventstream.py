"""The frame encoder, decoded by botocore's own sans-IO EventStreamBuffer."""

from __future__ import annotations

import orjson
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from bedrock_mw.testing.eventstream import encode_event, encode_exception, encode_message


def decode_all(data: bytes, split: int | None = None) -> list:
    buffer = EventStreamBuffer()
    messages = []
    parts = [data] if split is None else [data[:split], data[split:]]
    for part in parts:
        buffer.add_data(part)
        messages.extend(buffer)
    return messages


def test_event_frame_decodes_with_headers_and_padded_payload() -> None:
    frame = encode_event("messageStart", {"role": "assistant"})
    (message,) = decode_all(frame)
    assert message.headers == {
        ":event-type": "messageStart",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    payload = orjson.loads(message.payload)
    assert payload["role"] == "assistant"
    assert isinstance(payload["p"], str) and payload["p"]


def test_exception_frame_carries_exception_type() -> None:
    (message,) = decode_all(encode_exception("throttlingException", "slow down"))
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "throttlingException"
    assert orjson.loads(message.payload) == {"message": "slow down"}


def test_frames_split_at_every_byte_boundary_decode_identically() -> None:
    data = encode_event("a", {"x": "é"}) + encode_event("b", {"y": 1})
    for split in range(len(data) + 1):
        assert [m.headers[":event-type"] for m in decode_all(data, split)] == ["a", "b"]


@given(
    headers=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=40).filter(lambda s: len(s.encode()) < 256), st.text(max_size=200)
        ),
        max_size=5,
        unique_by=lambda h: h[0],
    ),
    payload=st.binary(max_size=2048),
    split=st.integers(min_value=0, max_value=4096),
)
def test_any_message_round_trips_through_botocore(
    headers: list[tuple[str, str]], payload: bytes, split: int
) -> None:
    data = encode_message(headers, payload)
    (message,) = decode_all(data, min(split, len(data)))
    assert message.payload == payload
    assert message.headers == dict(headers)

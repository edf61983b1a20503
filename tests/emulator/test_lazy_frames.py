"""A stream's deltas are made one at a time, so a client that does not read holds little memory."""

from __future__ import annotations

import itertools
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from bedrock_mw.testing.converse_stream import converse_stream_events, iter_text_deltas, with_last
from bedrock_mw.testing.native_anthropic import anthropic_stream
from bedrock_mw.testing.responder import Answer

LONG = "lorem ipsum dolor " * 200_000  # 600,000 words, ~3.6 MB of text


def _peak_bytes_to_take(events: object, count: int) -> int:
    tracemalloc.start()
    try:
        list(itertools.islice(events, count))  # type: ignore[call-overload]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _answer(content: list[dict[str, object]]) -> Answer:
    return Answer(
        content=content,
        stop_reason="end_turn",
        usage={"inputTokens": 1, "outputTokens": 1, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0},
    )


def test_converse_stream_events_start_without_splitting_the_whole_answer() -> None:
    events = converse_stream_events(_answer([{"text": LONG}]), latency_ms=1)
    # A list of 600,000 words took tens of MB; a delta at a time is a few KB.
    assert _peak_bytes_to_take(events, 5) < 1_000_000


def test_native_anthropic_stream_starts_without_splitting_the_whole_answer() -> None:
    answer = _answer([{"text": LONG}])
    events = anthropic_stream(answer, "anthropic.claude-haiku-4-5-20251001-v1:0", {})
    # The message copies the answer as strings (a few times its length), never as a list of its words.
    assert _peak_bytes_to_take(events, 5) < 4 * len(LONG)


@given(st.text(alphabet=" \n\tab", max_size=40), st.integers(min_value=0, max_value=4))
def test_lazy_text_deltas_join_back_to_the_text(text: str, per_delta: int) -> None:
    deltas = list(iter_text_deltas(text, per_delta))
    assert "".join(deltas) == text and deltas


def test_with_last_marks_only_the_last_item() -> None:
    assert list(with_last("abc")) == [("a", False), ("b", False), ("c", True)]
    assert list(with_last([])) == []

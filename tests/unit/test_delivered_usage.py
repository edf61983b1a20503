"""The usage of a stream cut short: Bedrock's counts when it sent them, else what was delivered."""

from __future__ import annotations

import pytest

from bedrock_mw.gateway import Outcome
from bedrock_mw.http import ClientDisconnected
from bedrock_mw.lifecycle import outcome_of_exit
from bedrock_mw.stream.delivered import DeliveredUsage, text_chars
from bedrock_mw.translate.types import TokenUsage


def delta(**inner: object) -> dict[str, object]:
    return {"contentBlockDelta": {"contentBlockIndex": 0, "delta": inner}}


def test_output_is_estimated_from_text_reasoning_and_tool_input_deltas() -> None:
    counter = DeliveredUsage({"messages": [{"role": "user", "content": [{"text": "x" * 40}]}]})
    counter.observe({"messageStart": {"role": "assistant"}})
    counter.observe(delta(text="abcd" * 10))
    counter.observe(delta(reasoningContent={"text": "abcd" * 5}))
    counter.observe(delta(toolUse={"input": '{"a": 1}'}))
    counter.observe({"contentBlockStop": {"contentBlockIndex": 0}})
    usage = counter.usage(TokenUsage())
    assert usage.output_tokens == 10 + 5 + 2
    assert usage.input_tokens == len("user") // 4 + 10  # strings of the request, keys excluded


def test_bedrocks_own_counts_win_once_the_stream_finished() -> None:
    counter = DeliveredUsage({"messages": []})
    counter.observe(delta(text="a" * 400))
    counter.finished()
    reported = TokenUsage(input_tokens=7, output_tokens=90)
    assert counter.usage(reported) is reported


def test_an_early_end_never_counts_less_than_was_delivered() -> None:
    counter = DeliveredUsage({"messages": []})
    counter.observe(delta(text="a" * 400))
    # A native stream's running count (Claude's message_start says one output token).
    usage = counter.usage(TokenUsage(input_tokens=7, output_tokens=1))
    assert (usage.input_tokens, usage.output_tokens) == (7, 100)


@pytest.mark.parametrize(
    ("chunk", "chars"),
    [
        (b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lorem "}}', 6),
        (b'{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"a\\"b"}}', 4),
        (b'{"outputText":"abcd","index":0}', 4),
        (b'{"type":"message_start","message":{"usage":{"input_tokens":3}}}', 0),
    ],
)
def test_native_chunk_text_is_measured_without_parsing(chunk: bytes, chars: int) -> None:
    counter = DeliveredUsage()
    counter.observe({"chunk": {"bytes": chunk}})
    assert counter.usage(TokenUsage()).output_tokens == -(-chars // 4)


def test_blobs_are_not_counted_as_input_text() -> None:
    assert text_chars({"image": {"source": {"bytes": b"\x00" * 10_000}}, "text": "abc"}) == 3


@pytest.mark.parametrize(
    ("exc", "stated", "expected"),
    [
        (None, Outcome(200), (200, None)),
        (None, None, (500, "no_outcome")),
        (ClientDisconnected(), Outcome(200), (499, "client_disconnected")),
        (RuntimeError("bug"), None, (500, "api_error")),
        (RuntimeError("bug"), Outcome(200), (500, "api_error")),
    ],
)
def test_the_outcome_recorded_for_each_way_out_of_a_request(
    exc: BaseException | None, stated: Outcome | None, expected: tuple[int, str | None]
) -> None:
    outcome = outcome_of_exit(exc, stated)
    assert (outcome.status, outcome.error_type) == expected

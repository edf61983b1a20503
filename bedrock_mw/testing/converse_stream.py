"""Turn an Answer into the ordered ConverseStream events Bedrock sends (sans-IO)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import orjson

from .responder import Answer

Event = tuple[str, dict[str, Any]]
T = TypeVar("T")
_PIECE = re.compile(r"\s*\S+\s*$|\s*\S+")
TOOL_INPUT_FRAGMENT = 16


def iter_text_deltas(text: str, words_per_delta: int) -> Iterator[str]:
    """Text in deltas of N words each, keeping all whitespace, so joining restores it.

    Lazy: a stream holds one delta at a time, not a list of every word of a long answer (2,000
    streams of a long answer held gigabytes of word lists while their clients did not read).
    """
    step = max(1, words_per_delta)
    group: list[str] = []
    sent = False
    for match in _PIECE.finditer(text):
        group.append(match.group())
        if len(group) == step:
            yield "".join(group)
            group = []
            sent = True
    if group:
        yield "".join(group)
    elif not sent:
        yield text


def text_deltas(text: str, words_per_delta: int) -> list[str]:
    """:func:`iter_text_deltas` as a list, for callers that need them all."""
    return list(iter_text_deltas(text, words_per_delta))


def with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item and whether it is the last, looking one item ahead (so still lazy)."""
    iterator = iter(items)
    try:
        previous = next(iterator)
    except StopIteration:
        return
    for item in iterator:
        yield previous, False
        previous = item
    yield previous, True


def _fragments(value: Any) -> list[str]:
    raw = orjson.dumps(value).decode()
    return [raw[i : i + TOOL_INPUT_FRAGMENT] for i in range(0, len(raw), TOOL_INPUT_FRAGMENT)] or ["{}"]


def _block_events(index: int, block: dict[str, Any], words_per_delta: int) -> Iterator[Event]:
    if "toolUse" in block:
        use = block["toolUse"]
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        yield "contentBlockStart", {"contentBlockIndex": index, "start": start}
        for fragment in _fragments(use["input"]):
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}}
    elif "reasoningContent" in block:
        reasoning = block["reasoningContent"]["reasoningText"]
        for piece in iter_text_deltas(reasoning["text"], words_per_delta):
            delta = {"reasoningContent": {"text": piece}}
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
        delta = {"reasoningContent": {"signature": reasoning["signature"]}}
        yield "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
    elif "citationsContent" in block:
        # As Bedrock streams a cited block: its text first, then one citation delta per citation.
        cited = block["citationsContent"]
        for piece in iter_text_deltas("".join(p["text"] for p in cited["content"]), words_per_delta):
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
        for citation in cited["citations"]:
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"citation": citation}}
    else:
        for piece in iter_text_deltas(block["text"], words_per_delta):
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
    yield "contentBlockStop", {"contentBlockIndex": index}


def converse_stream_events(answer: Answer, latency_ms: int) -> Iterator[Event]:
    """messageStart, per block (start?) deltas stop, messageStop, metadata."""
    yield "messageStart", {"role": "assistant"}
    for index, block in enumerate(answer.content):
        yield from _block_events(index, block, answer.words_per_delta)
    stop: dict[str, Any] = {"stopReason": answer.stop_reason}
    if answer.additional_fields is not None:
        stop["additionalModelResponseFields"] = answer.additional_fields
    yield "messageStop", stop
    yield "metadata", {"usage": answer.usage, "metrics": {"latencyMs": latency_ms}}

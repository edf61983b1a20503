"""Turn an Answer into the ordered ConverseStream events Bedrock sends (sans-IO)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from .responder import Answer

Event = tuple[str, dict[str, Any]]
_PIECE = re.compile(r"\s*\S+\s*$|\s*\S+")
TOOL_INPUT_FRAGMENT = 16


def text_deltas(text: str, words_per_delta: int) -> list[str]:
    """Split text into deltas of N words each, keeping all whitespace, so joining restores it."""
    pieces = _PIECE.findall(text)
    if not pieces:
        return [text]
    step = max(1, words_per_delta)
    return ["".join(pieces[i : i + step]) for i in range(0, len(pieces), step)]


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
        for piece in text_deltas(reasoning["text"], words_per_delta):
            delta = {"reasoningContent": {"text": piece}}
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
        delta = {"reasoningContent": {"signature": reasoning["signature"]}}
        yield "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
    elif "citationsContent" in block:
        # As Bedrock streams a cited block: its text first, then one citation delta per citation.
        cited = block["citationsContent"]
        for piece in text_deltas("".join(p["text"] for p in cited["content"]), words_per_delta):
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
        for citation in cited["citations"]:
            yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"citation": citation}}
    else:
        for piece in text_deltas(block["text"], words_per_delta):
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

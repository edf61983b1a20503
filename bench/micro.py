"""The pure parts alone: stream transcoders (per event) and request/response translators (per request).

No I/O: these are the numbers the rest of the path is added to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bedrock_mw.routing.families import family_of
from bedrock_mw.stream.anthropic import AnthropicStreamTranscoder
from bedrock_mw.stream.openai import OpenAIStreamTranscoder
from bedrock_mw.translate import anthropic, openai
from bench.stats import Spread, spread

FAMILY = family_of("anthropic.claude-haiku-4-5-20251001-v1:0")

ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "claude-haiku-4-5",
    "max_tokens": 256,
    "system": "You are terse.",
    "messages": [
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
        {"role": "user", "content": [{"type": "text", "text": "Again, in French."}]},
    ],
    "temperature": 0.2,
}
OPENAI_REQUEST: dict[str, Any] = {
    "model": "claude-haiku-4-5",
    "max_tokens": 256,
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [{"type": "text", "text": "Again, in French."}]},
    ],
    "temperature": 0.2,
}
CONVERSE_RESPONSE: dict[str, Any] = {
    "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0},
    "output": {"message": {"role": "assistant", "content": [{"text": "Bonjour."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 20, "outputTokens": 3, "totalTokens": 23},
    "metrics": {"latencyMs": 10},
}


def converse_events(deltas: int) -> list[dict[str, Any]]:
    """A ConverseStream answer of ``deltas`` one-word text deltas, as botocore yields it."""
    return [
        {"messageStart": {"role": "assistant"}},
        *(
            {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": f"word{i % 50} "}}}
            for i in range(deltas)
        ),
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {"metadata": {"usage": {"inputTokens": 5, "outputTokens": deltas, "totalTokens": 5 + deltas}}},
    ]


def _best_rate(run: Callable[[], int], min_s: float, reps: int) -> list[float]:
    """Items per second of ``run`` (which returns how many items it did), once per repetition."""
    rates = []
    for _ in range(reps):
        done = 0
        started = time.perf_counter()
        while True:
            done += run()
            elapsed = time.perf_counter() - started
            if elapsed >= min_s:
                break
        rates.append(done / elapsed)
    return rates


def transcode_anthropic(events: list[dict[str, Any]]) -> int:
    """Run one stream through the Anthropic transcoder; the number of events fed."""
    call = anthropic.anthropic_to_converse(
        {**ANTHROPIC_REQUEST, "stream": True}, FAMILY, anthropic.AnthropicOptions()
    )
    t = AnthropicStreamTranscoder(model="claude-haiku-4-5", message_id="msg_1", call=call)
    feed = t.feed
    for event in events:
        feed(event)
    t.finish()
    return len(events)


def transcode_openai(events: list[dict[str, Any]]) -> int:
    """Run one stream through the OpenAI transcoder; the number of events fed."""
    call = openai.openai_to_converse({**OPENAI_REQUEST, "stream": True}, FAMILY, openai.OpenAIOptions())
    t = OpenAIStreamTranscoder(
        model="claude-haiku-4-5", completion_id="chatcmpl-1", created=1, call=call, include_usage=True
    )
    feed = t.feed
    for event in events:
        feed(event)
    t.finish()
    return len(events)


def translate_anthropic() -> int:
    """One non-streamed Anthropic request and response through the translators."""
    call = anthropic.anthropic_to_converse(ANTHROPIC_REQUEST, FAMILY, anthropic.AnthropicOptions())
    anthropic.converse_to_anthropic(CONVERSE_RESPONSE, model="claude-haiku-4-5", call=call, message_id="m")
    return 1


def translate_openai() -> int:
    """One non-streamed OpenAI request and response through the translators."""
    call = openai.openai_to_converse(OPENAI_REQUEST, FAMILY, openai.OpenAIOptions())
    openai.converse_to_openai(
        CONVERSE_RESPONSE, model="claude-haiku-4-5", call=call, completion_id="c", created=1
    )
    return 1


def run_micro(min_s: float, reps: int) -> dict[str, dict[str, Spread]]:
    """Events/s and µs/event for the transcoders, requests/s and µs/request for the translators."""
    events = converse_events(1000)
    cases: dict[str, Callable[[], int]] = {
        "transcode_anthropic_stream": lambda: transcode_anthropic(events),
        "transcode_openai_stream": lambda: transcode_openai(events),
        "translate_anthropic_request": translate_anthropic,
        "translate_openai_request": translate_openai,
    }
    out: dict[str, dict[str, Spread]] = {}
    for name, case in cases.items():
        case()  # warm-up
        rates = _best_rate(case, min_s, reps)
        unit = "events" if name.startswith("transcode") else "requests"
        out[name] = {f"{unit}_per_s": spread(rates), "us_per_item": spread([1e6 / r for r in rates])}
    return out

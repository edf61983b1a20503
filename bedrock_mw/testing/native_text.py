"""InvokeModel with the prompt-style native bodies of Amazon Titan Text and Meta Llama.

The prompt's "user text" is its last meaningful line: Llama special tokens and role headers are
removed, lines that are only a speaker label ("Bot:", "Assistant:") are skipped, and a leading
"User:"/"Human:" label is dropped. The reply follows responder.compose_text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .converse_stream import iter_text_deltas, with_last
from .native_schema import STRINGS, check_native, integer, number, obj, string
from .responder import TextReply, compose_text
from .tokens import words

TITAN_SCHEMA = obj(
    {
        "inputText": string(),
        "textGenerationConfig": obj(
            {"maxTokenCount": integer(), "stopSequences": STRINGS, "temperature": number(), "topP": number()}
        ),
    },
    required=("inputText",),
    closed=True,
)
LLAMA_SCHEMA = obj(
    {
        "prompt": string(),
        "max_gen_len": integer(),
        "temperature": number(),
        "top_p": number(),
        "images": STRINGS,
    },
    required=("prompt",),
    closed=True,
)
_LLAMA_HEADER = re.compile(r"<\|start_header_id\|>.*?<\|end_header_id\|>", re.S)
_SPECIAL = re.compile(r"<\|[^|>]*\|>|\[/?INST\]|<</?SYS>>|</?s>")
_LABEL_ONLY = re.compile(r"^\s*[A-Za-z]+:\s*$")
_LEADING_LABEL = re.compile(r"^\s*(?:User|Human):\s*", re.IGNORECASE)
_TITAN_REASONS = {"end_turn": "FINISH", "max_tokens": "LENGTH", "stop_sequence": "STOP_CRITERIA_MET"}
_LLAMA_REASONS = {"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop"}
Json = dict[str, Any]


def prompt_text(prompt: str) -> str:
    """The last meaningful line of a raw prompt."""
    cleaned = _SPECIAL.sub("\n", _LLAMA_HEADER.sub("\n", prompt))
    lines = [line for line in cleaned.splitlines() if line.strip() and not _LABEL_ONLY.match(line)]
    return _LEADING_LABEL.sub("", lines[-1]).strip() if lines else ""


@dataclass(frozen=True)
class PromptAnswer:
    """A prompt-style call's reply and token counts."""

    reply: TextReply
    input_tokens: int
    model_ran: bool = True  # False: a guardrail blocked the input and answered in the model's place

    @property
    def output_tokens(self) -> int:
        return words(self.reply.text) if self.model_ran else 0


def prompt_of(raw: Any) -> str:
    """The user text a guardrail checks in a Titan or Llama body (its prompt's last meaningful line)."""
    prompt = raw.get("inputText", raw.get("prompt")) if isinstance(raw, dict) else None
    return prompt_text(prompt) if isinstance(prompt, str) else ""


def answer_titan(raw: Any) -> PromptAnswer:
    body = check_native(raw, TITAN_SCHEMA)
    config = body.get("textGenerationConfig") or {}
    text = body["inputText"]
    reply = compose_text(prompt_text(text), config.get("maxTokenCount"), config.get("stopSequences") or [])
    return PromptAnswer(reply, words(text))


def answer_llama(raw: Any) -> PromptAnswer:
    body = check_native(raw, LLAMA_SCHEMA)
    prompt = body["prompt"]
    reply = compose_text(prompt_text(prompt), body.get("max_gen_len"), [])
    return PromptAnswer(reply, words(prompt))


def titan_response(answer: PromptAnswer) -> Json:
    result = {
        "tokenCount": answer.output_tokens,
        "outputText": answer.reply.text,
        "completionReason": _TITAN_REASONS[answer.reply.stop_reason],
    }
    return {"inputTextTokenCount": answer.input_tokens, "results": [result]}


def llama_response(answer: PromptAnswer) -> Json:
    return {
        "generation": answer.reply.text,
        "prompt_token_count": answer.input_tokens,
        "generation_token_count": answer.output_tokens,
        "stop_reason": _LLAMA_REASONS[answer.reply.stop_reason],
    }


def titan_stream(answer: PromptAnswer, metrics: Json) -> Iterator[Json]:
    """Titan's native chunks; the last carries the completion reason and invocation metrics."""
    pieces = with_last(iter_text_deltas(answer.reply.text, answer.reply.words_per_delta))
    sent = 0
    for i, (piece, last) in enumerate(pieces):
        sent += words(piece)
        chunk: Json = {
            "outputText": piece,
            "index": 0,
            "totalOutputTextTokenCount": sent,
            "completionReason": _TITAN_REASONS[answer.reply.stop_reason] if last else None,
            "inputTextTokenCount": answer.input_tokens if i == 0 else None,
        }
        if last:
            chunk["amazon-bedrock-invocationMetrics"] = metrics
        yield chunk


def llama_stream(answer: PromptAnswer, metrics: Json) -> Iterator[Json]:
    """Llama's native chunks; the last carries the stop reason and invocation metrics."""
    pieces = with_last(iter_text_deltas(answer.reply.text, answer.reply.words_per_delta))
    sent = 0
    for i, (piece, last) in enumerate(pieces):
        sent += words(piece)
        chunk: Json = {
            "generation": piece,
            "prompt_token_count": answer.input_tokens if i == 0 else None,
            "generation_token_count": sent,
            "stop_reason": _LLAMA_REASONS[answer.reply.stop_reason] if last else None,
        }
        if last:
            chunk["amazon-bedrock-invocationMetrics"] = metrics
        yield chunk

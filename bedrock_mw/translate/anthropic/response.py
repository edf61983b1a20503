"""Converse responses to Anthropic Messages responses; shared with the stream transcoder."""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import ErrorKind, GatewayError
from ..types import ConverseCall, TokenUsage
from .citations import anthropic_citation
from .shapes import ContentBlock, Message, TextBlock, Usage

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import ContentBlockOutputTypeDef, ConverseResponseTypeDef

# Converse stopReason -> Anthropic stop_reason. Anthropic's "refusal" is what its own classifiers say
# when they stop a turn; a Bedrock guardrail or content filter is the same event from the client's view.
STOP_REASONS: dict[str, str] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
    "model_context_window_exceeded": "model_context_window_exceeded",
}
# Bedrock stop reasons that mean the output is broken: reported as an error, never as a normal stop.
MALFORMED_STOP_REASONS = frozenset({"malformed_model_output", "malformed_tool_use"})

_ID_ALPHABET = (string.ascii_letters + string.digits).encode()
# Random bytes to base62 in one C call: bytes 248..255 are dropped first (248 = 4 x 62), so each
# kept byte maps to every character with the same odds. 32 bytes keep 24 or more all but about
# once in a million draws; that draw is simply made again.
_ID_TABLE = bytes(_ID_ALPHABET[b % 62] for b in range(256))
_ID_DROP = bytes(range(248, 256))


def new_message_id() -> str:
    """A fresh Anthropic-style message id: ``msg_`` and 24 random base62 characters.

    One ``os.urandom`` read per id rather than one per character (this runs on every request).
    """
    while True:
        chars = secrets.token_bytes(32).translate(_ID_TABLE, _ID_DROP)
        if len(chars) >= 24:
            return "msg_" + chars[:24].decode("ascii")


def anthropic_stop_reason(stop_reason: Any) -> str:
    """The Anthropic ``stop_reason`` for a Converse ``stopReason`` (unknown future values end the turn)."""
    if stop_reason in MALFORMED_STOP_REASONS:
        raise GatewayError(
            ErrorKind.BAD_GATEWAY,
            f"Bedrock stopped with {stop_reason}: the model's output could not be parsed; retry the request",
        )
    return STOP_REASONS.get(stop_reason, "end_turn") if isinstance(stop_reason, str) else "end_turn"


def matched_stop_sequence(stop_reason: str, additional_fields: Any, call: ConverseCall) -> str | None:
    """Which stop sequence ended the turn: Bedrock's own report, else the only one that was sent."""
    if stop_reason != "stop_sequence":
        return None
    if isinstance(additional_fields, dict):
        matched = additional_fields.get("stop_sequence")
        if isinstance(matched, str):
            return matched
    return call.stop_sequences[0] if len(call.stop_sequences) == 1 else None


def anthropic_usage(usage: TokenUsage) -> Usage:
    """Anthropic's usage object; both exclude cached tokens from ``input_tokens``."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }


def anthropic_block(
    block: ContentBlockOutputTypeDef, titles: Sequence[str | None] = ()
) -> ContentBlock | None:
    """One Converse output content block as an Anthropic content block (None for kinds it has no form for).

    ``titles`` are the client's document titles, for citations (see :func:`anthropic_citation`).
    """
    if not isinstance(block, dict):
        return None
    if "text" in block:
        return {"type": "text", "text": str(block["text"])}
    if "toolUse" in block:
        use = block["toolUse"]
        tool_input = use.get("input")
        return {
            "type": "tool_use",
            "id": use.get("toolUseId", ""),
            "name": use.get("name", ""),
            "input": tool_input if isinstance(tool_input, dict) else {},
        }
    if "reasoningContent" in block:
        reasoning = block["reasoningContent"]
        if "redactedContent" in reasoning:
            data = reasoning["redactedContent"]
            encoded = base64.b64encode(data).decode() if isinstance(data, bytes) else ""
            return {"type": "redacted_thinking", "data": encoded}
        thought = reasoning.get("reasoningText")
        if thought is None:
            return {"type": "thinking", "thinking": "", "signature": ""}
        return {
            "type": "thinking",
            "thinking": thought.get("text", ""),
            "signature": thought.get("signature", ""),
        }
    if "citationsContent" in block:
        cited = block["citationsContent"]
        parts = cited.get("content") or []
        text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
        mapped = [anthropic_citation(c, titles) for c in cited.get("citations") or []]
        citations = [c for c in mapped if c is not None]
        # No mappable citation: plain text, as the stream (which never saw a citations delta) gives.
        out: TextBlock = {"type": "text", "text": text}
        if citations:
            out["citations"] = citations
        return out
    return None


def converse_to_anthropic(
    response: ConverseResponseTypeDef, *, model: str, call: ConverseCall, message_id: str
) -> Message:
    """An Anthropic Messages response for what botocore's ``converse()`` returned."""
    stop_reason = anthropic_stop_reason(response.get("stopReason"))
    output = response.get("output")
    message = output.get("message") if output else None
    raw = (message.get("content") if message else None) or []
    blocks = (anthropic_block(b, call.document_titles) for b in raw)
    content = [b for b in blocks if b is not None]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": matched_stop_sequence(
            stop_reason, response.get("additionalModelResponseFields"), call
        ),
        "usage": anthropic_usage(TokenUsage.from_converse(response.get("usage"))),
    }

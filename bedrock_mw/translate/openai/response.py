"""Converse response → OpenAI ``chat.completion``; the finish-reason and usage rules both paths share."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import orjson

from ..types import ConverseCall, TokenUsage
from .request import structured_tool_name
from .shapes import AssistantMessage, ChatCompletion, ToolCall, Usage

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import ConverseResponseTypeDef

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    # The model produced something unparseable; OpenAI has no word for it, so the turn just ends.
    "malformed_model_output": "stop",
    "malformed_tool_use": "stop",
}


def finish_reason(stop_reason: str | None, *, structured_tool: bool = False) -> str:
    """OpenAI's ``finish_reason`` for a Bedrock ``stopReason``."""
    reason = FINISH_REASONS.get(stop_reason or "", "stop")
    if structured_tool and reason == "tool_calls":
        return "stop"  # the forced tool *is* the answer
    return reason


def openai_usage(usage: TokenUsage) -> Usage:
    """OpenAI ``usage``: cached tokens count inside ``prompt_tokens``, as OpenAI counts them."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_write_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "cache_creation_input_tokens": usage.cache_write_input_tokens,
    }


def new_completion_id() -> str:
    """A fresh ``chatcmpl-`` id."""
    return "chatcmpl-" + secrets.token_urlsafe(18).replace("-", "a").replace("_", "b")


def converse_to_openai(
    response: ConverseResponseTypeDef, *, model: str, call: ConverseCall, completion_id: str, created: int
) -> ChatCompletion:
    """Translate a Converse response into an OpenAI ``chat.completion`` object."""
    forced = structured_tool_name(call.request, call.notes)
    output = response.get("output")
    message_out = output.get("message") if output else None
    blocks = (message_out.get("content") if message_out else None) or []
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[ToolCall] = []
    for block in blocks:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input", {})).decode()
            if forced is not None and use.get("name") == forced:
                texts.append(arguments)
            else:
                tool_calls.append(
                    {
                        "id": use["toolUseId"],
                        "type": "function",
                        "function": {"name": use["name"], "arguments": arguments},
                    }
                )
        elif "reasoningContent" in block:
            thought = block["reasoningContent"].get("reasoningText")
            if thought is not None and thought.get("text"):
                reasoning.append(thought["text"])
    message: AssistantMessage = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(
                    response.get("stopReason"), structured_tool=forced is not None
                ),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(TokenUsage.from_converse(response.get("usage"))),
        "system_fingerprint": None,
    }

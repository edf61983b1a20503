"""Converse answer → OpenAI ``response`` object: output items, status and usage, shared with the stream.

One Converse content block is one output item: text → a ``message`` item with one ``output_text``
part, ``toolUse`` → a ``function_call`` item, ``reasoningContent`` → a ``reasoning`` item whose
summary is Claude's thinking text and whose ``encrypted_content`` is the sealed block. The stream
transcoder builds the same items with the same functions, so a streamed answer's final response equals
the non-streamed one.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import orjson

from ..openai.request import structured_tool_name
from ..types import TokenUsage
from .request import ResponsesCall
from .sealing import ReasoningSeal

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import ContentBlockOutputTypeDef, ConverseResponseTypeDef

    from .shapes import (
        Echo,
        FunctionCallItem,
        IncompleteDetails,
        IncompleteReason,
        ItemStatus,
        MessageItem,
        OutputItem,
        OutputText,
        ReasoningItem,
        ResponseError,
        ResponseObject,
        ResponseStatus,
        Usage,
    )

# Bedrock stop reasons that end a response early, with OpenAI's incomplete_details reason.
INCOMPLETE_REASONS: dict[str, IncompleteReason] = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def new_id(prefix: str) -> str:
    """A fresh id in OpenAI's style (``resp_``, ``msg_``, ``fc_``, ``rs_``)."""
    return f"{prefix}_{secrets.token_hex(24)}"


@dataclass(slots=True)
class ResponseHead:
    """What every copy of one response shares: id, creation time, model and the echoed request."""

    model: str
    echo: Echo
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def reasoning_id(self, output_index: int) -> str:
        """A reasoning item's id, naming its response so a stored item can be found from the id alone."""
        return f"rs_{self.id.removeprefix('resp_')}_{output_index}"

    def response(
        self,
        *,
        status: Literal["in_progress", "completed", "failed"],
        output: list[OutputItem],
        usage: TokenUsage | None = None,
        stop_reason: str | None = None,
        error: ResponseError | None = None,
    ) -> ResponseObject:
        """The ``response`` object in ``status`` with ``output`` (completed may become incomplete)."""
        shown: ResponseStatus = status
        details: IncompleteDetails | None = None
        incomplete = INCOMPLETE_REASONS.get(stop_reason or "")
        if status == "completed" and incomplete is not None:
            shown, details = "incomplete", {"reason": incomplete}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": shown,
            "background": False,
            "error": error,
            "incomplete_details": details,
            "model": self.model,
            "output": output,
            **self.echo,
            "usage": responses_usage(usage) if usage is not None else None,
        }


def responses_usage(usage: TokenUsage) -> Usage:
    """OpenAI's ``usage``: cached tokens count inside ``input_tokens``, as OpenAI counts them."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_write_input_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        # Bedrock counts thinking inside outputTokens and does not report it apart.
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + usage.output_tokens,
    }


def message_item(item_id: str, text: str, status: ItemStatus = "completed") -> MessageItem:
    """An assistant ``message`` output item with one ``output_text`` part."""
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [output_text(text)],
    }


def output_text(text: str) -> OutputText:
    """An ``output_text`` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: ItemStatus = "completed"
) -> FunctionCallItem:
    """A ``function_call`` output item."""
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(item_id: str, block: ContentBlockOutputTypeDef, seal: ReasoningSeal) -> ReasoningItem:
    """A ``reasoning`` item: the thinking text as its summary, the sealed block as encrypted_content."""
    reasoning = block["reasoningContent"].get("reasoningText")
    text = (reasoning.get("text") if reasoning else None) or ""
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
        "encrypted_content": seal.seal([block]),
    }


def public_items(items: list[OutputItem], include_encrypted: bool) -> list[OutputItem]:
    """Output items as the caller sees them: ``encrypted_content`` only when it was asked for."""
    if include_encrypted:
        return items
    return [_without_sealed(item) if item["type"] == "reasoning" else item for item in items]


def _without_sealed(item: ReasoningItem) -> ReasoningItem:
    return {**item, "encrypted_content": None}


def converse_output_items(
    response: ConverseResponseTypeDef, head: ResponseHead, call: ResponsesCall, seal: ReasoningSeal
) -> list[OutputItem]:
    """The output items of a Converse answer (reasoning sealed, whatever the caller included)."""
    forced = structured_tool_name(call.converse.request, call.converse.notes)
    output = response.get("output")
    message = output.get("message") if output else None
    blocks = (message.get("content") if message else None) or []
    items: list[OutputItem] = []
    for block in blocks:
        if "text" in block:
            items.append(message_item(new_id("msg"), block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input", {})).decode()
            if forced is not None and use.get("name") == forced:
                items.append(message_item(new_id("msg"), arguments))
            else:
                items.append(function_call_item(new_id("fc"), use["toolUseId"], use["name"], arguments))
        elif "reasoningContent" in block:
            items.append(reasoning_item(head.reasoning_id(len(items)), block, seal))
    return items


def converse_to_response(
    response: ConverseResponseTypeDef, head: ResponseHead, call: ResponsesCall, seal: ReasoningSeal
) -> tuple[ResponseObject, list[OutputItem]]:
    """The caller's ``response`` object and the output items to keep (with sealed reasoning)."""
    items = converse_output_items(response, head, call, seal)
    body = head.response(
        status="completed",
        output=public_items(items, call.include_encrypted),
        usage=TokenUsage.from_converse(response.get("usage")),
        stop_reason=response.get("stopReason"),
    )
    return body, items


def response_of_reasoning_id(item_id: object) -> str | None:
    """The response id a gateway-made reasoning item id names (see ``ResponseHead.reasoning_id``)."""
    if not isinstance(item_id, str) or not item_id.startswith("rs_"):
        return None
    response_hex, _, index = item_id[3:].rpartition("_")
    return f"resp_{response_hex}" if response_hex and index.isdigit() else None

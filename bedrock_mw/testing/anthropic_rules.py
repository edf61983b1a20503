"""Bedrock's rules for Anthropic Messages bodies on InvokeModel (and the Anthropic fields of Converse).

Sources, each quoting Bedrock's reply:
  * body schema: JSON-schema wording, see native_schema;
  * keys outside Bedrock's list: "The model returned the following errors: <key>: Extra inputs are
    not permitted" (BerriAI/litellm#13825 `guardrails`, #13609 `reasoning`; anthropics/claude-code-action
    #1005 `output_config.effort` shows nested keys get a dotted path);
  * `anthropic_beta` outside Bedrock's list: "The model returned the following errors: invalid beta
    flag" (BerriAI/litellm#19875, whose list is taken from AWS's Claude parameters page; litellm#41203
    adds `computer-use-2025-11-24` and `compact-2026-01-12` as accepted; AWS's "Tool use" page lists
    `fine-grained-tool-streaming-2025-05-14`);
  * `temperature` with `top_p` on Claude Opus 4.1 and the 4.5 generation onwards: "`temperature` and
    `top_p` cannot both be specified for this model. Please use only one." (litellm#15070 on Sonnet 4.5,
    skydiscover-ai/skydiscover#15 on Sonnet 4.6, mem0ai/mem0#4147);
  * blank text blocks: "messages: text content blocks must be non-empty" (anomalyco/opencode#15715) and,
    for whitespace-only text, "... must contain non-whitespace text" (NousResearch/hermes-agent#64858).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import BedrockError, validation_error
from .native_schema import (
    ANY,
    BOOLEAN,
    STRINGS,
    Schema,
    arr,
    check_native,
    integer,
    number,
    obj,
    string,
    string_or_list,
)

MODEL_ERROR = "The model returned the following errors: "
ANTHROPIC_FIELDS = frozenset(
    {
        "anthropic_version",
        "anthropic_beta",
        "max_tokens",
        "system",
        "messages",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "stop_sequences",
        "thinking",
        "metadata",
        "output_config",
        "context_management",
    }
)
METADATA_FIELDS = frozenset({"user_id"})
BEDROCK_BETAS = frozenset(
    {
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "computer-use-2025-11-24",
        "token-efficient-tools-2025-02-19",
        "fine-grained-tool-streaming-2025-05-14",
        "interleaved-thinking-2025-05-14",
        "output-128k-2025-02-19",
        "dev-full-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "context-management-2025-06-27",
        "effort-2025-11-24",
        "tool-search-tool-2025-10-19",
        "tool-examples-2025-10-29",
        "compact-2026-01-12",
    }
)
SAMPLING_CONFLICT = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."

_CACHE_CONTROL = obj({"type": string(), "ttl": string()})
_RESULT_PART = obj({"type": string()}, required=("type",))
_BLOCK = obj(
    {
        "type": string(),
        "text": string(),
        "id": string(),
        "name": string(),
        "input": obj(),
        "tool_use_id": string(),
        "content": string_or_list(_RESULT_PART),
        "is_error": BOOLEAN,
        "thinking": string(),
        "signature": string(),
        "data": string(),
        "source": obj(),
        "cache_control": _CACHE_CONTROL,
        "citations": ANY,
        "title": string(),
        "context": string(),
    },
    required=("type",),
)
# What each block type must carry beyond `type`.
BLOCK_REQUIRED: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "tool_use": ("id", "name", "input"),
    "tool_result": ("tool_use_id",),
    "thinking": ("thinking", "signature"),
    "redacted_thinking": ("data",),
    "image": ("source",),
    "document": ("source",),
}
_MESSAGE = obj(
    {"role": string("user", "assistant"), "content": string_or_list(_BLOCK)}, required=("role", "content")
)
_TOOL = obj(
    {
        "name": string(),
        "description": string(),
        "input_schema": obj(),
        "type": string(),
        "cache_control": _CACHE_CONTROL,
    },
    required=("name",),
)
ANTHROPIC_SCHEMA: Schema = obj(
    {
        "anthropic_version": string(),
        "anthropic_beta": STRINGS,
        "max_tokens": integer(minimum=1),
        "system": string_or_list(_BLOCK),
        "messages": arr(_MESSAGE),
        "temperature": number(0, 1),
        "top_p": number(0, 1),
        "top_k": integer(minimum=0),
        "tools": arr(_TOOL),
        "tool_choice": obj(
            {
                "type": string("auto", "any", "tool", "none"),
                "name": string(),
                "disable_parallel_tool_use": BOOLEAN,
            },
            required=("type",),
        ),
        "stop_sequences": STRINGS,
        "thinking": obj({"type": string(), "budget_tokens": integer()}, required=("type",)),
        "metadata": obj(),
        "output_config": obj(),
        "context_management": obj(),
    },
    required=("anthropic_version", "messages", "max_tokens"),
)


def model_error(message: str) -> BedrockError:
    """A 400 whose text Bedrock relays from the model."""
    return validation_error(MODEL_ERROR + message)


def check_betas(betas: Any) -> None:
    """Refuse `anthropic_beta` flags Bedrock does not accept."""
    if isinstance(betas, str):
        betas = [betas]
    if not isinstance(betas, list):
        raise model_error("anthropic_beta: Input should be a valid list")
    if any(not isinstance(b, str) or b not in BEDROCK_BETAS for b in betas):
        raise model_error("invalid beta flag")


def check_sampling(temperature: Any, top_p: Any, exclusive: bool) -> None:
    """Newer Claude models take `temperature` or `top_p`, not both."""
    if exclusive and temperature is not None and top_p is not None:
        raise model_error(SAMPLING_CONFLICT)


def _check_text(block: Mapping[str, Any], where: str) -> None:
    if block.get("type") != "text":
        return
    text = block["text"]
    if not text:
        raise model_error(f"{where}: text content blocks must be non-empty")
    if not text.strip():
        raise model_error(f"{where}: text content blocks must contain non-whitespace text")


def check_anthropic_body(raw: Any, sampling_exclusive: bool) -> Mapping[str, Any]:
    """Apply Bedrock's Anthropic rules; return the body once it is known to be well-formed."""
    body = check_native(raw, ANTHROPIC_SCHEMA)
    for key in body:
        if key not in ANTHROPIC_FIELDS:
            raise model_error(f"{key}: Extra inputs are not permitted")
    for key in body.get("metadata") or {}:
        if key not in METADATA_FIELDS:
            raise model_error(f"metadata.{key}: Extra inputs are not permitted")
    if "anthropic_beta" in body:
        check_betas(body["anthropic_beta"])
    check_sampling(body.get("temperature"), body.get("top_p"), sampling_exclusive)
    for index, message in enumerate(body["messages"]):
        content = message["content"]
        for number_, block in enumerate(content if isinstance(content, list) else []):
            path = f"#/messages/{index}/content/{number_}"
            check_native(block, obj(required=BLOCK_REQUIRED.get(block["type"], ())), path)
            _check_text(block, "messages")
    system = body.get("system")
    for block in system if isinstance(system, list) else []:
        check_native(block, obj(required=BLOCK_REQUIRED.get(block["type"], ())), "#/system")
        _check_text(block, "system")
    return body

"""Extended-thinking rules: emulator-made signatures, and the history checks Claude applies."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import validation_error

# Fixed so signatures survive an emulator restart, as real ones survive a new connection.
_SIGNING_KEY = b"bedrock-mw-emulator-thinking-signature-key"
_MODEL_ERROR = "The model returned the following errors: "
_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
_BLOCK_TYPES = {"text": "text", "toolUse": "tool_use", "toolResult": "tool_result", "image": "image"}


def thinking_config(request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `thinking` object of additionalModelRequestFields when it turns thinking on."""
    fields = request.get("additionalModelRequestFields") or {}
    config = fields.get("thinking") if isinstance(fields, Mapping) else None
    if isinstance(config, Mapping) and config.get("type") in ("enabled", "adaptive"):
        return config
    return None


def sign_thinking(text: str) -> str:
    """The signature the emulator attaches to a reasoning block."""
    return base64.b64encode(hmac.new(_SIGNING_KEY, text.encode(), hashlib.sha256).digest()).decode()


def signature_valid(text: str, signature: str) -> bool:
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, so a 500),
    # and a forged signature may hold any character; it is just invalid.
    return hmac.compare_digest(sign_thinking(text).encode(), signature.encode("utf-8", "surrogatepass"))


def _check_signatures(messages: Sequence[Mapping[str, Any]]) -> None:
    for message in messages:
        if message.get("role") != "assistant":
            continue
        for block in message.get("content") or []:
            reasoning = block.get("reasoningContent") if isinstance(block, Mapping) else None
            if not isinstance(reasoning, Mapping) or "reasoningText" not in reasoning:
                continue
            text_block = reasoning["reasoningText"]
            if not signature_valid(str(text_block.get("text", "")), str(text_block.get("signature", ""))):
                raise validation_error(_MODEL_ERROR + "Invalid `signature` in `thinking` block")


def _check_final_assistant(messages: Sequence[Mapping[str, Any]]) -> None:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "assistant":
            continue
        content = [b for b in message.get("content") or [] if "cachePoint" not in b]
        if not any("toolUse" in b for b in content):
            return
        first = content[0] if content else {}
        if "reasoningContent" in first:
            return
        found = next((name for key, name in _BLOCK_TYPES.items() if key in first), "text")
        raise validation_error(
            f"{_MODEL_ERROR}messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            f"but found `{found}`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). "
            "We recommend you include thinking blocks from previous turns. To avoid this requirement, "
            f"disable `thinking`. Please consult our documentation at {_DOCS}"
        )


def validate_thinking(request: Mapping[str, Any], model_supports: bool) -> None:
    """Apply Claude's thinking rules to a Converse-shaped request."""
    messages: Sequence[Mapping[str, Any]] = request.get("messages") or []
    _check_signatures(messages)
    config = thinking_config(request)
    if config is None:
        return
    if not model_supports:
        raise validation_error(_MODEL_ERROR + "thinking: Extra inputs are not permitted")
    if config.get("type") == "enabled":
        budget = config.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise validation_error(
                _MODEL_ERROR + "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        max_tokens = (request.get("inferenceConfig") or {}).get("maxTokens")
        if isinstance(max_tokens, int) and max_tokens <= budget:
            raise validation_error(
                _MODEL_ERROR + "`max_tokens` must be greater than `thinking.budget_tokens`. "
                f"Please consult our documentation at {_DOCS}#max-tokens-and-context-window-size"
            )
    _check_final_assistant(messages)

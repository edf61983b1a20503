"""Request rules Bedrock enforces on Converse-shaped input, with Bedrock's own wording."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from .errors import BedrockError, validation_error
from .models import ResolvedModel
from .thinking import validate_thinking
from .tokens import count_cache_points

CONVERSE_FIELDS = frozenset(
    {
        "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
        "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
        "requestMetadata", "performanceConfig", "serviceTier", "outputConfig",
    }
)  # fmt: skip
COUNT_TOKENS_CONVERSE_FIELDS = frozenset({"messages", "system", "toolConfig", "additionalModelRequestFields"})
MAX_CACHE_POINTS = 4
NOT_CHAT_MODEL = (
    "This action doesn't support the model that you provided. Try again with a supported text or chat model."
)
PROMPT_CACHE_DENIED = (
    "You invoked an unsupported model or your request did not allow prompt caching. "
    "See the documentation for more information."
)
_START_WITH_USER = (
    "A conversation must start with a user message. "
    "Try again with a conversation that starts with a user message."
)
_ALTERNATE = (
    "A conversation must alternate between user and assistant roles. "
    "Make sure the conversation alternates between user and assistant roles and try again."
)


def check_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Reject members the operation does not define, as Bedrock's deserializer does."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise validation_error(f"Unknown field(s) in request body: {', '.join(unknown)}.")


def _check_roles(request: Mapping[str, Any]) -> None:
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
        raise validation_error(_START_WITH_USER)
    for previous, current in itertools.pairwise(messages):
        if current.get("role") not in ("user", "assistant") or current.get("role") == previous.get("role"):
            raise validation_error(_ALTERNATE)


def _check_tools(request: Mapping[str, Any], model: ResolvedModel, streaming: bool) -> None:
    config = request.get("toolConfig")
    if not config:
        return
    if not model.rule.tools:
        raise validation_error("This model doesn't support tool use.")
    if streaming and not model.rule.tools_in_stream:
        raise validation_error("This model doesn't support tool use in streaming mode.")
    choice = config.get("toolChoice") or {}
    if "tool" in choice:
        names = {t["toolSpec"].get("name") for t in config.get("tools") or [] if "toolSpec" in t}
        if choice["tool"].get("name") not in names:
            raise validation_error(
                f"The tool {choice['tool'].get('name')} in toolChoice is not defined in tools."
            )


def _check_cache_points(request: Mapping[str, Any], model: ResolvedModel) -> None:
    count = count_cache_points(request)
    if count == 0:
        return
    if not model.rule.prompt_cache:
        raise BedrockError("AccessDeniedException", PROMPT_CACHE_DENIED)
    if count > MAX_CACHE_POINTS:
        raise validation_error(
            f"A maximum of {MAX_CACHE_POINTS} blocks with cache_control may be provided. Found {count}."
        )


def validate_converse(request: Mapping[str, Any], model: ResolvedModel, streaming: bool) -> None:
    """All Converse rules for one resolved model; raise the first violation."""
    if model.rule.embedding:
        raise validation_error(NOT_CHAT_MODEL)
    _check_roles(request)
    if request.get("system") and not model.rule.system:
        raise validation_error("This model doesn't support system messages.")
    _check_tools(request, model, streaming)
    _check_cache_points(request, model)
    validate_thinking(request, model.rule.thinking)

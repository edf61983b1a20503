"""Request rules Bedrock enforces on Converse-shaped input, with Bedrock's own wording."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from .anthropic_rules import ANTHROPIC_FIELDS, check_betas, check_sampling, model_error
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


TOOL_CONFIG_REQUIRED = (
    "The toolConfig field must be defined when using toolUse and toolResult content blocks."
)


def _check_content(messages: Any) -> None:
    """Empty content lists and blank text blocks.

    Wording from Bedrock replies quoted in earendil-works/pi#3443 and smg-project/smg#1472.
    """
    for index, message in enumerate(messages or []):
        content = message.get("content")
        if not content:
            raise validation_error(
                f"The content field in the Message object at messages.{index} is empty. "
                "Add a ContentBlock object to the content field and try again."
            )
        for position, block in enumerate(content):
            text = block.get("text")
            if isinstance(text, str) and not text.strip():
                raise validation_error(
                    f"The text field in the ContentBlock object at messages.{index}.content.{position} "
                    "is blank. Add text to the text field, and try again."
                )


def _uses_tools(messages: Any) -> bool:
    return any(
        "toolUse" in block or "toolResult" in block
        for message in messages or []
        for block in message.get("content") or []
    )


def _check_tool_specs(config: Mapping[str, Any]) -> None:
    """A tool's JSON schema must be an object schema (Bedrock reply in alibaba/spring-ai-alibaba#3082)."""
    for index, tool in enumerate(config.get("tools") or []):
        spec = tool.get("toolSpec")
        if spec is None:
            continue
        schema = spec["inputSchema"].get("json")
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            raise validation_error(
                f"The value at toolConfig.tools.{index}.toolSpec.inputSchema.json.type must be one of "
                "the following: object."
            )


def validate_converse_body(request: Mapping[str, Any], model: ResolvedModel) -> None:
    """Bedrock's content rules for a Converse body that already fits the shape."""
    messages = request.get("messages")
    _check_content(messages)
    config = request.get("toolConfig")
    if config is None and _uses_tools(messages):
        # pentagi#166 quotes this reply; it applies to every model.
        raise validation_error(TOOL_CONFIG_REQUIRED)
    if config is not None:
        _check_tool_specs(config)
    if model.rule.family != "anthropic":
        return
    fields = request.get("additionalModelRequestFields")
    fields = fields if isinstance(fields, Mapping) else {}
    for key in fields:
        # Bedrock merges these into Claude's own body, which refuses keys it does not know
        # (BerriAI/litellm#13825: "guardrails: Extra inputs are not permitted" on Converse).
        if key not in ANTHROPIC_FIELDS:
            raise model_error(f"{key}: Extra inputs are not permitted")
    if "anthropic_beta" in fields:
        check_betas(fields["anthropic_beta"])
    inference = request.get("inferenceConfig") or {}
    top_p = inference.get("topP", fields.get("top_p"))
    check_sampling(
        inference.get("temperature", fields.get("temperature")), top_p, model.rule.sampling_exclusive
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

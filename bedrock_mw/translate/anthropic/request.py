"""Anthropic Messages requests to Bedrock Converse (and CountTokens) parameters.

The body is untrusted JSON: everything is validated here and refused with a 400 naming the field,
before Bedrock is called. The rules, and every choice made where the two APIs differ, are listed in
``docs/anthropic.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ...routing.families import ModelFamily
from ..bedrock import DROPPED_CACHE_HEADER, clean_metadata_text, is_blank, synthesized_tools, uses_tools
from ..types import ConverseCall, ConverseParams

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockTypeDef,
        ConverseTokensRequestTypeDef,
        CountTokensInputTypeDef,
        InferenceConfigurationTypeDef,
        MessageTypeDef,
        OutputConfigTypeDef,
        SystemContentBlockTypeDef,
        ToolConfigurationTypeDef,
    )

    from ..types import JSONObject
    from .shapes import AdditionalFields, ThinkingConfig
from . import tools as anthropic_tools
from .betas import (
    CONTEXT_MANAGEMENT,
    DEFAULT_SUPPORTED_BETAS,
    INTERLEAVED_THINKING,
    parse_beta_header,
    split_betas,
)
from .content import (
    ContentContext,
    as_bool,
    as_dict,
    as_int,
    as_list,
    as_number,
    as_str,
    fail,
    is_claude,
    message_blocks,
)
from .lowering import NOTE_LOWERED, Lowered, lower_request

NOTE_DROPPED_BETAS = "x-bedrock-mw-dropped-betas"
NOTE_IGNORED = "x-bedrock-mw-ignored-params"
NOTE_SYNTHESIZED_TOOLS = "x-bedrock-mw-synthesized-tools"

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
EFFORTS = ("low", "medium", "high", "xhigh", "max")

_MESSAGE_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "stream",
        "service_tier",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
        "context_management",
    }
)
# Sampling and delivery fields a count_tokens body may carry from a copied create body: no effect on a count.
_COUNT_IGNORED = frozenset(
    {"max_tokens", "stop_sequences", "temperature", "top_p", "top_k", "metadata", "stream", "service_tier"}
)
# Fields with no Bedrock counterpart that change nothing the model sees: accepted, reported in a header.
_IGNORED_FIELDS = frozenset({"diagnostics", "user_profile_id", "workspace_id"})
# Fields with no Bedrock counterpart that would change the answer: refused unless empty.
_REFUSED_FIELDS = {
    "container": "containers (code execution) run on Anthropic's servers, not on Bedrock",
    "mcp_servers": "the MCP connector runs on Anthropic's servers, not on Bedrock",
    "inference_geo": "the gateway chooses the Bedrock region; inference_geo cannot be honoured",
}


@dataclass(frozen=True, slots=True)
class AnthropicOptions:
    """Host settings that shape translation."""

    allow_url_fetch: bool = False
    supported_betas: frozenset[str] = DEFAULT_SUPPORTED_BETAS
    max_cache_points: int = 4
    reject_unknown_fields: bool = False


@dataclass(slots=True)
class _Translation:
    """What a messages or count_tokens body becomes, before being shaped into one of the two calls."""

    messages: list[MessageTypeDef]
    system: list[SystemContentBlockTypeDef]
    tool_config: ToolConfigurationTypeDef | None
    additional: AdditionalFields  # additionalModelRequestFields: a JSON document for the model
    output_config: OutputConfigTypeDef
    notes: dict[str, str]
    document_titles: tuple[str | None, ...]


def anthropic_to_converse(
    body: Any,
    family: ModelFamily,
    options: AnthropicOptions,
    *,
    beta_header: str | None = None,
    media: Mapping[str, tuple[bytes, str]] | None = None,
    model_id: str = "",
) -> ConverseCall:
    """Translate an Anthropic Messages request body into Converse parameters (without ``modelId``).

    ``model_id`` is the base Bedrock model id, for lowerings that depend on the model's generation.
    """
    low = lower_request(body, base_model_id=model_id, reject_unknown_fields=options.reject_unknown_fields)
    body = low.body
    max_tokens = as_int(body.get("max_tokens"), "max_tokens", minimum=1)
    tr = _translate(body, family, options, beta_header, media, max_tokens=max_tokens, lowered=low)
    request: ConverseParams = {"messages": tr.messages}
    if tr.system:
        request["system"] = tr.system
    inference: InferenceConfigurationTypeDef = {"maxTokens": max_tokens}
    thinking_on = "thinking" in tr.additional
    temperature = body.get("temperature")
    if temperature is not None:
        inference["temperature"] = as_number(temperature, "temperature", 0.0, 1.0)
        if thinking_on and inference["temperature"] != 1.0:
            raise fail("temperature", "may only be set to 1 when thinking is enabled")
    top_p = body.get("top_p")
    if top_p is not None:
        inference["topP"] = as_number(top_p, "top_p", 0.0, 1.0)
        if thinking_on and inference["topP"] < 0.95:
            raise fail("top_p", "must be between 0.95 and 1 when thinking is enabled")
    top_k = body.get("top_k")
    if top_k is not None:
        as_int(top_k, "top_k", minimum=0)
        if thinking_on:
            raise fail("top_k", "may not be set when thinking is enabled")
        if is_claude(family):
            tr.additional["top_k"] = top_k
        elif family.name.startswith("amazon-nova"):
            tr.additional["inferenceConfig"] = {"topK": top_k}
        else:
            raise fail("top_k", f"model family '{family.name}' takes no top_k")
    stop_sequences = _stop_sequences(body.get("stop_sequences"))
    if stop_sequences:
        inference["stopSequences"] = list(stop_sequences)
        if is_claude(family):
            # Converse reports which sequence matched only when asked for this model-specific field.
            request["additionalModelResponseFieldPaths"] = ["/stop_sequence"]
    request["inferenceConfig"] = inference
    if tr.tool_config is not None:
        request["toolConfig"] = tr.tool_config
    if tr.additional:
        request["additionalModelRequestFields"] = tr.additional
    if tr.output_config:
        request["outputConfig"] = tr.output_config
    metadata = _request_metadata(body.get("metadata"))
    if metadata:
        request["requestMetadata"] = metadata
    tier = body.get("service_tier")
    if tier == "standard_only":
        request["serviceTier"] = {"type": "default"}
    elif tier not in (None, "auto"):
        raise fail("service_tier", "must be 'auto' or 'standard_only'")
    stream = body.get("stream")
    return ConverseCall(
        request=request,
        stream=False if stream is None else as_bool(stream, "stream"),
        stop_sequences=stop_sequences,
        notes=tr.notes,
        document_titles=tr.document_titles,
    )


def anthropic_count_tokens_request(
    body: Any,
    family: ModelFamily,
    options: AnthropicOptions,
    *,
    beta_header: str | None = None,
    media: Mapping[str, tuple[bytes, str]] | None = None,
    model_id: str = "",
) -> CountTokensInputTypeDef:
    """The ``input`` member of a Bedrock CountTokens call for an Anthropic count_tokens body."""
    low = lower_request(
        body, base_model_id=model_id, reject_unknown_fields=options.reject_unknown_fields, counting=True
    )
    tr = _translate(low.body, family, options, beta_header, media, max_tokens=None, lowered=low)
    converse: ConverseTokensRequestTypeDef = {"messages": tr.messages}
    if tr.system:
        converse["system"] = tr.system
    if tr.tool_config is not None:
        converse["toolConfig"] = tr.tool_config
    if tr.additional:
        converse["additionalModelRequestFields"] = tr.additional
    return {"converse": converse}


def _translate(
    body: JSONObject,
    family: ModelFamily,
    options: AnthropicOptions,
    beta_header: str | None,
    media: Mapping[str, tuple[bytes, str]] | None,
    *,
    max_tokens: int | None,
    lowered: Lowered,
) -> _Translation:
    counting = max_tokens is None
    notes: dict[str, str] = {}
    ignored: list[str] = list(lowered.ignored)
    if lowered.lowered:
        notes[NOTE_LOWERED] = ",".join(lowered.lowered)
    for key, value in body.items():
        if key in _MESSAGE_FIELDS or (counting and key in _COUNT_IGNORED):
            continue
        if key in _IGNORED_FIELDS:
            ignored.append(key)
        elif key in _REFUSED_FIELDS:
            if value not in (None, [], {}, ""):
                raise fail(key, _REFUSED_FIELDS[key])
        elif key == "speed":
            if value not in (None, "standard"):
                raise fail(key, "fast mode is not available through Bedrock")
        else:
            raise fail(key, "unknown field")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise fail("model", "is required and must be a non-empty string")

    ctx = ContentContext(family, options.allow_url_fetch, media or {})
    system = _system(body.get("system"), ctx)
    messages, last_blocks = _messages(body.get("messages"), ctx)
    top_point = ctx.cache_point(body.get("cache_control"), "cache_control")
    if top_point is not None and "cachePoint" not in last_blocks[-1]:
        last_blocks.append({"cachePoint": top_point})  # the last cacheable block of the request

    additional: AdditionalFields = {}
    betas, dropped = split_betas(parse_beta_header(beta_header), options.supported_betas)
    if betas and not is_claude(family):
        betas, dropped = [], dropped + betas
    if betas:
        additional["anthropic_beta"] = betas
    if dropped:
        notes[NOTE_DROPPED_BETAS] = ",".join(dropped)

    thinking = _thinking(body.get("thinking"), family, max_tokens, INTERLEAVED_THINKING in betas)
    if thinking is not None:
        additional["thinking"] = thinking
    output_config = _output_config(body.get("output_config"), family)
    context_management = body.get("context_management")
    if context_management is not None:
        as_dict(context_management, "context_management")
        if CONTEXT_MANAGEMENT in betas:
            additional["context_management"] = context_management
        else:
            ignored.append("context_management")

    tool_config, passthrough_choice = anthropic_tools.tool_config(body, ctx, thinking is not None, ignored)
    if passthrough_choice is not None:
        additional["tool_choice"] = passthrough_choice
    if tool_config is None and uses_tools(messages):
        if not family.tools:
            raise fail("messages", f"model family '{family.name}' does not support tools")
        tool_config = synthesized_tools(messages)
        notes[NOTE_SYNTHESIZED_TOOLS] = ",".join(t["toolSpec"]["name"] for t in tool_config["tools"])

    if ctx.cache_points > options.max_cache_points:
        raise fail(
            "cache_control",
            f"at most {options.max_cache_points} cache_control blocks are allowed, found {ctx.cache_points}",
        )
    if ctx.cache_points and not family.prompt_caching:
        notes[DROPPED_CACHE_HEADER] = str(ctx.cache_points)
    if ignored:
        notes[NOTE_IGNORED] = ",".join(dict.fromkeys(ignored))
    titles = tuple(ctx.document_titles)
    return _Translation(messages, system, tool_config, additional, output_config, notes, titles)


def _system(value: Any, ctx: ContentContext) -> list[SystemContentBlockTypeDef]:
    if value is None:
        return []
    blocks = [{"type": "text", "text": value}] if isinstance(value, str) else as_list(value, "system")
    out: list[SystemContentBlockTypeDef] = []
    for i, item in enumerate(blocks):
        path = f"system.{i}" if not isinstance(value, str) else "system"
        block = as_dict(item, path)
        if block.get("type") != "text":
            raise fail(f"{path}.type", "system blocks must be of type 'text'")
        text = as_str(block.get("text"), f"{path}.text")
        if text.startswith(BILLING_HEADER_PREFIX):
            continue  # Claude Code's per-session billing line: dropped with its cache mark (see docs).
        point = ctx.cache_point(block.get("cache_control"), f"{path}.cache_control")
        if is_blank(text):
            continue
        out.append({"text": text})
        if point is not None:
            out.append({"cachePoint": point})
    if out and not ctx.family.system_prompt:
        raise fail("system", f"model family '{ctx.family.name}' takes no system prompt")
    return out


def _messages(value: Any, ctx: ContentContext) -> tuple[list[MessageTypeDef], list[ContentBlockTypeDef]]:
    """The Converse messages, and the last one's content list (the same list, to append to)."""
    items = as_list(value, "messages")
    if not items:
        raise fail("messages", "must contain at least one message")
    out: list[MessageTypeDef] = []
    last: list[ContentBlockTypeDef] = []
    for i, item in enumerate(items):
        message = as_dict(item, f"messages.{i}")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise fail(f"messages.{i}.role", "must be 'user' or 'assistant'")
        extra = set(message) - {"role", "content"}
        if extra:
            raise fail(f"messages.{i}.{sorted(extra)[0]}", "unknown field")
        if i == 0 and role != "user":
            raise fail("messages.0.role", "the first message must use the 'user' role")
        blocks = message_blocks(message.get("content"), f"messages.{i}.content", role, ctx)
        if not any("cachePoint" not in b for b in blocks):
            raise fail(f"messages.{i}.content", "must contain at least one non-blank content block")
        if out and out[-1]["role"] == role:
            last.extend(blocks)  # Anthropic combines consecutive same-role turns; so do we
        else:
            last = blocks
            out.append({"role": role, "content": blocks})
    return out, last


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    out = []
    for i, item in enumerate(as_list(value, "stop_sequences")):
        text = as_str(item, f"stop_sequences.{i}")
        if not text:
            raise fail(f"stop_sequences.{i}", "must not be empty")
        out.append(text)
    return tuple(out)


def _request_metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    metadata = as_dict(value, "metadata")
    extra = set(metadata) - {"user_id"}
    if extra:
        raise fail(f"metadata.{sorted(extra)[0]}", "unknown field")
    user_id = metadata.get("user_id")
    if user_id is None:
        return {}
    # requestMetadata is log-only: an id outside Bedrock's alphabet is cleaned rather than refused.
    cleaned = clean_metadata_text(as_str(user_id, "metadata.user_id"))
    return {"user_id": cleaned} if cleaned else {}


def _thinking(
    value: Any, family: ModelFamily, max_tokens: int | None, interleaved: bool
) -> ThinkingConfig | None:
    if value is None:
        return None
    thinking = as_dict(value, "thinking")
    kind = thinking.get("type")
    if kind == "disabled":
        return None
    if kind not in ("enabled", "adaptive"):
        raise fail("thinking.type", "must be 'enabled', 'adaptive' or 'disabled'")
    if not family.reasoning or not is_claude(family):
        raise fail("thinking", f"model family '{family.name}' does not take a thinking configuration")
    out: ThinkingConfig = {"type": kind}
    allowed = {"type", "display"}
    if kind == "enabled":
        allowed.add("budget_tokens")
        budget = as_int(thinking.get("budget_tokens"), "thinking.budget_tokens", minimum=1024)
        # Interleaved thinking lets the budget span several tool turns, so it may exceed max_tokens.
        if max_tokens is not None and budget >= max_tokens and not interleaved:
            raise fail("thinking.budget_tokens", "must be less than max_tokens")
        out["budget_tokens"] = budget
    display = thinking.get("display")
    if display is not None:
        if display not in ("summarized", "omitted"):
            raise fail("thinking.display", "must be 'summarized' or 'omitted'")
        out["display"] = display
    extra = set(thinking) - allowed
    if extra:
        raise fail(f"thinking.{sorted(extra)[0]}", "unknown field")
    return out


def _output_config(value: Any, family: ModelFamily) -> OutputConfigTypeDef:
    if value is None:
        return {}
    config = as_dict(value, "output_config")
    out: OutputConfigTypeDef = {}
    extra = set(config) - {"effort", "format"}
    if extra:
        raise fail(f"output_config.{sorted(extra)[0]}", "unknown field")
    effort = config.get("effort")
    if effort is not None:
        if effort not in EFFORTS:
            raise fail("output_config.effort", f"must be one of {', '.join(EFFORTS)}")
        out["effort"] = effort
    fmt = config.get("format")
    if fmt is not None:
        fmt = as_dict(fmt, "output_config.format")
        if fmt.get("type") != "json_schema":
            raise fail("output_config.format.type", "must be 'json_schema'")
        if not family.structured_output:
            raise fail("output_config.format", f"model family '{family.name}' has no structured output")
        schema = as_dict(fmt.get("schema"), "output_config.format.schema")
        try:
            encoded = orjson.dumps(schema).decode()
        except orjson.JSONEncodeError:
            raise fail("output_config.format.schema", "is not serialisable JSON") from None
        out["textFormat"] = {"type": "json_schema", "structure": {"jsonSchema": {"schema": encoded}}}
    return out

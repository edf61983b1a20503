"""OpenAI chat-completions request → Converse call: messages, tools, response format, reasoning.

Every rule here is documented in ``docs/openai.md``; shared parameters are read by
``openai_params`` and messages translated by ``openai_messages``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ...errors import invalid
from ...routing.families import ModelFamily, NativeBody
from ..bedrock import (
    DROPPED_CACHE_HEADER,
    LOWERED_HEADER,
    METADATA_MAX_LENGTH,
    METADATA_MAX_PAIRS,
    TOOL_NAME,
    TOOL_NAME_RULE,
    is_metadata_text,
    object_schema,
    sampling_config,
    settle_thinking,
    synthesized_tools,
    tool_spec,
    unique_urls,
)
from ..types import ConverseCall, ConverseParams, JSONObject

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import ServiceTierTypeType
    from mypy_boto3_bedrock_runtime.type_defs import (
        InferenceConfigurationTypeDef,
        JsonSchemaDefinitionTypeDef,
        ToolConfigurationTypeDef,
        ToolTypeDef,
    )

    from .shapes import AdditionalFields
from .messages import (
    CacheMarkers,
    ConvertedMessages,
    is_remote_url,
    translate_messages,
)
from .params import (
    DROPPED_PARAMS_HEADER,
    JSON_OBJECT_INSTRUCTION,
    OpenAIOptions,
    read_chat_params,
    require_object,
)

FOLDED_SYSTEM_HEADER = "x-bedrock-mw-system-folded"
SYNTHESIZED_TOOLS_HEADER = "x-bedrock-mw-synthesized-tools"
STRUCTURED_OUTPUT_NOTE = "x-bedrock-mw-structured-output"

THINKING_BUDGETS = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}
# gpt-oss on Bedrock takes reasoning_effort low/medium/high only.
GPT_OSS_EFFORT = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
# Room left for the visible answer when thinking is on and the caller set no token limit.
THINKING_ANSWER_TOKENS = 4096
SERVICE_TIERS: dict[str, ServiceTierTypeType | None] = {
    "auto": None,
    "default": None,
    "flex": "flex",
    "priority": "priority",
}


def image_urls(body: JSONObject) -> list[str]:
    """The remote (non-``data:``) image URLs of a request, for the app to fetch when it allows it."""
    return unique_urls(_remote_image_urls(body))


def _remote_image_urls(body: JSONObject) -> Iterator[str]:
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else None
                if is_remote_url(url):
                    yield url


def openai_to_converse(
    body: Any,
    family: ModelFamily,
    options: OpenAIOptions,
    *,
    media: Mapping[str, tuple[bytes, str]] | None = None,
    restores_thinking: bool = False,
) -> ConverseCall:
    """Translate and validate an OpenAI chat-completions body into Converse parameters.

    ``restores_thinking``: the caller puts thinking blocks back into the history afterwards (the
    Responses translator) and settles thinking itself; chat messages cannot carry them.
    """
    body = require_object(body)
    params = read_chat_params(body, options)
    notes: dict[str, str] = {}
    dropped = list(params.dropped)
    cache = CacheMarkers(enabled=family.prompt_caching)
    converted = translate_messages(
        body.get("messages"),
        family,
        fold_system=options.drop_unsupported_params,
        allow_url_fetch=options.allow_url_fetch,
        media=media,
        cache=cache,
    )
    request: ConverseParams = {"messages": converted.messages}
    if converted.folded_system:
        notes[FOLDED_SYSTEM_HEADER] = "true"

    tools, uses_tools = _tool_config(body, family, converted, cache, dropped)
    structured = _response_format(body.get("response_format"), family, request, converted, tools)
    if tools is not None:
        request["toolConfig"] = tools
        if not body.get("tools"):
            notes[SYNTHESIZED_TOOLS_HEADER] = ",".join(t["toolSpec"]["name"] for t in tools["tools"])
    if converted.system:
        request["system"] = converted.system
    if structured:
        notes[STRUCTURED_OUTPUT_NOTE] = structured
    if params.stream and (uses_tools or structured == "tool") and not family.streamed_tools:
        raise invalid(
            f"model family {family.name} cannot stream tool use; send stream: false", param="stream"
        )

    inference: InferenceConfigurationTypeDef = {}
    if params.max_tokens is not None:
        inference["maxTokens"] = params.max_tokens
    sampling, lowered = sampling_config(params.temperature, params.top_p, exclusive=family.exclusive_sampling)
    inference.update(sampling)
    if params.stop:
        inference["stopSequences"] = list(params.stop)
    additional: AdditionalFields = {}
    if _reasoning(body.get("reasoning_effort"), family, additional, inference, options):
        dropped.append("reasoning_effort")
    if additional:
        request["additionalModelRequestFields"] = additional
    if inference:
        request["inferenceConfig"] = inference
    _metadata(body, request)

    if cache.requested:
        if not family.prompt_caching:
            notes[DROPPED_CACHE_HEADER] = str(cache.requested)
        elif cache.requested > options.max_cache_points:
            raise invalid(
                f"at most {options.max_cache_points} cache_control markers allowed, got {cache.requested}",
                param="messages",
            )
    if dropped:
        notes[DROPPED_PARAMS_HEADER] = ",".join(dropped)
    if not restores_thinking and (thinking_off := settle_thinking(request)):
        lowered.append(thinking_off)
    if lowered:
        notes[LOWERED_HEADER] = ",".join(lowered)
    return ConverseCall(request=request, stream=params.stream, stop_sequences=params.stop, notes=notes)


def _tool_config(
    body: JSONObject,
    family: ModelFamily,
    converted: ConvertedMessages,
    cache: CacheMarkers,
    dropped: list[str],
) -> tuple[ToolConfigurationTypeDef | None, bool]:
    """Converse ``toolConfig`` (or None) and whether the model may call the caller's tools."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is None or tools == []:
        if choice not in (None, "none", "auto"):
            raise invalid("tool_choice needs tools", param="tool_choice")
        if converted.has_tool_blocks:
            # Bedrock refuses toolUse/toolResult history without a toolConfig: declare the tools the
            # history names (the model may not call them: the caller offered none).
            return synthesized_tools(converted.messages), False
        return None, False
    if not isinstance(tools, list):
        raise invalid("tools must be an array", param="tools")
    if not family.tools:
        raise invalid(f"model family {family.name} does not support tools", param="tools")
    specs: list[ToolTypeDef] = []
    names: set[str] = set()
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise invalid(f"{param}.type must be 'function'", param=f"{param}.type")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise invalid(f"{param}.function must be an object", param=f"{param}.function")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            raise invalid(f"{param}.function.name {TOOL_NAME_RULE}", f"{param}.function.name")
        if name in names:
            raise invalid(f"{param}.function.name {name!r} is used twice", param=f"{param}.function.name")
        names.add(name)
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid(f"{param}.function.description must be a string", f"{param}.function.description")
        specs.append(
            tool_spec(
                name, _schema(function, param), description, strict=_strict(function, param, family, dropped)
            )
        )
        cache.after(specs, tool, param)

    config: ToolConfigurationTypeDef = {"tools": specs}
    if choice is None or choice == "auto":
        pass
    elif choice == "none":
        # Bedrock has no "none": without tool blocks in the history the tools are simply not sent;
        # with them Bedrock insists on a toolConfig, so the tools stay (on "auto").
        if not converted.has_tool_blocks:
            return None, False
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or name not in names:
            raise invalid("tool_choice.function.name must name one of the tools", "tool_choice.function.name")
        config["toolChoice"] = {"tool": {"name": name}}
    else:
        raise invalid("tool_choice must be none, auto, required or a function choice", param="tool_choice")
    return config, True


def _strict(function: JSONObject, param: str, family: ModelFamily, dropped: list[str]) -> bool | None:
    """``strict`` for the toolSpec: kept where the family enforces schemas, else lowered and named."""
    strict = function.get("strict")
    if strict is None:
        return None
    if not isinstance(strict, bool):
        raise invalid(f"{param}.function.strict must be a boolean", param=f"{param}.function.strict")
    if family.structured_output:
        return strict
    if strict and "strict" not in dropped:
        dropped.append("strict")  # the model is asked, not forced, to follow the schema
    return None


def _schema(function: JSONObject, param: str) -> JSONObject:
    schema = function.get("parameters")
    if schema is None:
        return {"type": "object", "properties": {}}
    if not isinstance(schema, dict):
        raise invalid(
            f"{param}.function.parameters must be a JSON Schema object", f"{param}.function.parameters"
        )
    return dict(object_schema(schema, f"{param}.function.parameters"))


def _response_format(
    response_format: object,
    family: ModelFamily,
    request: ConverseParams,
    converted: ConvertedMessages,
    tools: ToolConfigurationTypeDef | None,
) -> str | None:
    """Apply ``response_format``; the structured-output mode used ("native", "tool") or None."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        # Converse has no schema-less JSON mode: the model is told, in the system prompt where the
        # family has one and otherwise at the end of the last user turn.
        if family.system_prompt:
            converted.system.append({"text": JSON_OBJECT_INSTRUCTION})
        else:
            turns = converted.messages
            last_user = next(i for i in reversed(range(len(turns))) if turns[i]["role"] == "user")
            converted.contents[last_user].append({"text": JSON_OBJECT_INSTRUCTION})
        return None
    if kind != "json_schema":
        raise invalid("response_format.type must be text, json_object or json_schema", "response_format.type")
    assert isinstance(response_format, dict)  # for mypy: kind was read from it
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise invalid("response_format.json_schema must be an object", param="response_format.json_schema")
    name = spec.get("name")
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise invalid(
            f"response_format.json_schema.name {TOOL_NAME_RULE}",
            "response_format.json_schema.name",
        )
    schema = spec.get("schema", {"type": "object"})
    if not isinstance(schema, dict):
        raise invalid(
            "response_format.json_schema.schema must be an object", "response_format.json_schema.schema"
        )
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid(
            "response_format.json_schema.description must be a string", "response_format.json_schema"
        )
    if family.structured_output:
        definition: JsonSchemaDefinitionTypeDef = {"schema": orjson.dumps(schema).decode(), "name": name}
        if description:
            definition["description"] = description
        request["outputConfig"] = {
            "textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}
        }
        return "native"
    # No native structured output: force a tool whose input is the answer (read back as content).
    if not family.tools:
        raise invalid(
            f"model family {family.name} supports neither structured output nor tools",
            param="response_format",
        )
    if tools is not None:
        raise invalid(
            f"response_format json_schema together with tools needs native structured output, "
            f"which model family {family.name} lacks",
            param="response_format",
        )
    # The schema becomes a tool's input schema, which Bedrock takes only as an object schema.
    schema = object_schema(schema, "response_format.json_schema.schema")
    answer = tool_spec(name, schema, description or "Return the final answer in this structure.")
    request["toolConfig"] = {"tools": [answer], "toolChoice": {"tool": {"name": name}}}
    return "tool"


def structured_tool_name(request: ConverseParams, notes: Mapping[str, str]) -> str | None:
    """The name of the forced tool standing in for ``json_schema`` output, if the call uses one."""
    if notes.get(STRUCTURED_OUTPUT_NOTE) != "tool":
        return None
    return request["toolConfig"]["toolChoice"]["tool"]["name"]


def _reasoning(
    effort: object,
    family: ModelFamily,
    additional: AdditionalFields,
    inference: InferenceConfigurationTypeDef,
    options: OpenAIOptions,
) -> bool:
    """Apply ``reasoning_effort``; True when it was dropped on the caller's opt-in."""
    if effort is None or effort == "none":
        return False
    if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
        raise invalid(
            f"reasoning_effort must be one of none, {', '.join(THINKING_BUDGETS)}", "reasoning_effort"
        )
    if not family.reasoning:
        raise invalid(f"model family {family.name} does not reason", param="reasoning_effort")
    if family.native_body == NativeBody.ANTHROPIC:
        budget = THINKING_BUDGETS[effort]
        max_tokens = inference.get("maxTokens")
        if max_tokens is None:
            inference["maxTokens"] = budget + THINKING_ANSWER_TOKENS
        elif max_tokens <= budget:
            # OpenAI's limit counts reasoning tokens too: the budget shrinks to fit under it.
            budget = max_tokens - 1
            if budget < THINKING_BUDGETS["minimal"]:
                raise invalid(
                    "max_completion_tokens must exceed 1024 to leave room for reasoning",
                    "max_completion_tokens",
                )
        additional["thinking"] = {"type": "enabled", "budget_tokens": budget}
        return False
    if family.name == "openai-gpt-oss":
        additional["reasoning_effort"] = GPT_OSS_EFFORT[effort]
        return False
    # The family reasons by design but offers no knob the gateway knows how to turn.
    if not options.drop_unsupported_params:
        raise invalid(f"reasoning_effort cannot be set on model family {family.name}", "reasoning_effort")
    return True


def _metadata(body: JSONObject, request: ConverseParams) -> None:
    metadata = body.get("metadata")
    if metadata is not None and metadata != {}:
        if not isinstance(metadata, dict) or len(metadata) > METADATA_MAX_PAIRS:
            raise invalid(
                f"metadata must be an object of at most {METADATA_MAX_PAIRS} string pairs", param="metadata"
            )
        for key, value in metadata.items():
            lengths = (len(key), len(value)) if isinstance(value, str) else (0, 0)
            if not isinstance(value, str) or not key or max(lengths) > METADATA_MAX_LENGTH:
                raise invalid(
                    f"metadata.{key} must be a string of at most {METADATA_MAX_LENGTH} characters",
                    f"metadata.{key}",
                )
            if not is_metadata_text(key) or not is_metadata_text(value):
                raise invalid(f"metadata.{key} holds characters Bedrock does not accept", f"metadata.{key}")
        request["requestMetadata"] = dict(metadata)
    tier = body.get("service_tier")
    if tier is not None:
        if not isinstance(tier, str) or tier not in SERVICE_TIERS:
            raise invalid("service_tier must be auto, default, flex or priority on Bedrock", "service_tier")
        if (service_tier := SERVICE_TIERS[tier]) is not None:
            request["serviceTier"] = {"type": service_tier}

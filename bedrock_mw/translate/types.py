"""Shapes that cross the boundary between translators, the dispatcher and the app."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        GuardrailConfigurationTypeDef,
        GuardrailStreamConfigurationTypeDef,
        InferenceConfigurationTypeDef,
        MessageUnionTypeDef,
        OutputConfigTypeDef,
        PerformanceConfigurationTypeDef,
        PromptVariableValuesTypeDef,
        ServiceTierTypeDef,
        SystemContentBlockTypeDef,
        TokenUsageTypeDef,
        ToolConfigurationTypeDef,
    )

    from .native_shapes import NativeChatRequest

# The JSON boundary, named so it is visible: a caller's JSON (a parsed body before validation, unknown
# fields tolerated and passed on, a tool's JSON-schema parameters, a tool's input) is arbitrary by
# nature, and so is an InvokeModel answer until the translator of its model family reads it.
# Everything the gateway builds itself has a TypedDict instead.
JSONValue: TypeAlias = Any
JSONObject: TypeAlias = dict[str, Any]


class ConverseParams(TypedDict, total=False):
    """Converse's and ConverseStream's parameters without ``modelId`` (chosen per attempt)."""

    messages: Sequence[MessageUnionTypeDef]
    system: Sequence[SystemContentBlockTypeDef]
    inferenceConfig: InferenceConfigurationTypeDef
    toolConfig: ToolConfigurationTypeDef
    guardrailConfig: GuardrailConfigurationTypeDef | GuardrailStreamConfigurationTypeDef
    additionalModelRequestFields: Mapping[str, Any]
    promptVariables: Mapping[str, PromptVariableValuesTypeDef]
    additionalModelResponseFieldPaths: Sequence[str]
    requestMetadata: Mapping[str, str]
    performanceConfig: PerformanceConfigurationTypeDef
    serviceTier: ServiceTierTypeDef
    outputConfig: OutputConfigTypeDef


@dataclass(slots=True)
class TokenUsage:
    """Token counts of one call, in Bedrock's terms (input excludes cached tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0

    @classmethod
    def from_converse(cls, usage: TokenUsageTypeDef | Mapping[str, Any] | None) -> TokenUsage:
        """Read Converse's ``usage`` member, typed or as parsed JSON (absent counts are zero)."""
        if not usage:
            return cls()
        return cls(
            int(usage.get("inputTokens") or 0),
            int(usage.get("outputTokens") or 0),
            int(usage.get("cacheReadInputTokens") or 0),
            int(usage.get("cacheWriteInputTokens") or 0),
        )


@dataclass(slots=True)
class ConverseCall:
    """A translated Converse/ConverseStream call, without ``modelId`` (that is chosen per attempt).

    ``request`` holds the operation's parameters exactly as botocore takes them (bytes for blobs).
    ``notes`` are response headers telling the caller what the gateway changed (dropped betas,
    dropped cache hints, dropped parameters). ``document_titles`` are the client's document titles
    (None where it gave none) by Converse document index, so citations can name them as sent.
    """

    request: ConverseParams
    stream: bool = False
    stop_sequences: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)
    document_titles: tuple[str | None, ...] = ()


@dataclass(slots=True)
class InvokeCall:
    """A translated InvokeModel/InvokeModelWithResponseStream call with the family's native body."""

    body: NativeChatRequest
    stream: bool = False
    stop_sequences: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)

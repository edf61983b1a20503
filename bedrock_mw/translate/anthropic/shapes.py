"""The Anthropic Messages shapes the gateway writes, as TypedDicts (no run-time cost).

The SDK's own response types are pydantic models, built per object; these describe the same JSON
for mypy while the hot path moves plain dicts. Field names and meanings follow Anthropic's API
reference for ``Message`` and its content blocks, and Bedrock's page on Claude's InvokeModel body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NotRequired, Required, TypeAlias, TypedDict

if TYPE_CHECKING:
    from ..types import JSONObject, JSONValue


class Usage(TypedDict):
    """``usage``: ``input_tokens`` excludes cached tokens, as Bedrock's ``inputTokens`` does."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class CharLocation(TypedDict):
    type: Literal["char_location"]
    cited_text: str
    document_index: int
    document_title: str | None
    start_char_index: int
    end_char_index: int


class PageLocation(TypedDict):
    type: Literal["page_location"]
    cited_text: str
    document_index: int
    document_title: str | None
    start_page_number: int
    end_page_number: int


class ContentBlockLocation(TypedDict):
    type: Literal["content_block_location"]
    cited_text: str
    document_index: int
    document_title: str | None
    start_block_index: int
    end_block_index: int


Citation: TypeAlias = "CharLocation | PageLocation | ContentBlockLocation"


class TextBlock(TypedDict):
    type: Literal["text"]
    text: str
    citations: NotRequired[list[Citation]]


class ToolUseBlock(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: JSONObject  # the model's tool input: arbitrary JSON


class ThinkingBlock(TypedDict):
    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlock(TypedDict):
    type: Literal["redacted_thinking"]
    data: str


ContentBlock: TypeAlias = "TextBlock | ToolUseBlock | ThinkingBlock | RedactedThinkingBlock"


class Message(TypedDict):
    """A Messages response: complete, or (in ``message_start``) empty, with no stop reason yet."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Usage


class TextDelta(TypedDict):
    type: Literal["text_delta"]
    text: str


class InputJsonDelta(TypedDict):
    type: Literal["input_json_delta"]
    partial_json: str


class ThinkingDelta(TypedDict):
    type: Literal["thinking_delta"]
    thinking: str


class SignatureDelta(TypedDict):
    type: Literal["signature_delta"]
    signature: str


class CitationsDelta(TypedDict):
    type: Literal["citations_delta"]
    citation: Citation


# The ``delta`` of a streamed ``content_block_delta`` event.
BlockDelta: TypeAlias = "TextDelta | InputJsonDelta | ThinkingDelta | SignatureDelta | CitationsDelta"


class InvokeBody(TypedDict, total=False):
    """Claude's InvokeModel body: the caller's Messages body, with the members Bedrock's schema takes.

    Members the gateway checks or writes are typed; the rest go as the caller sent them (JSON), for
    Bedrock to judge. The keys are exactly ``native.BEDROCK_FIELDS`` (a unit test holds them equal).
    """

    anthropic_version: Required[str]
    anthropic_beta: list[str]
    max_tokens: int
    messages: list[JSONObject]  # each an object with a user/assistant role; content as sent
    system: JSONValue  # a string or a list of blocks
    tools: list[JSONObject]  # server tools removed, fields Bedrock refuses dropped
    tool_choice: JSONValue
    metadata: JSONValue  # only ``user_id`` is kept
    temperature: JSONValue
    top_p: JSONValue
    top_k: JSONValue
    stop_sequences: JSONValue
    thinking: JSONValue
    output_config: JSONValue
    context_management: JSONValue


class TextBlockParam(TypedDict):
    """A text block the gateway writes into a request (a lowered system turn's reminder)."""

    type: Literal["text"]
    text: str
    cache_control: NotRequired[JSONValue]  # the caller's, carried over


# -- what the Converse path sends Claude in additionalModelRequestFields --------------------------
class ThinkingConfig(TypedDict):
    """Anthropic's ``thinking`` as Bedrock's Claude takes it (``disabled`` is sent as no member)."""

    type: Literal["enabled", "adaptive"]
    budget_tokens: NotRequired[int]
    display: NotRequired[Literal["summarized", "omitted"]]


class ToolChoice(TypedDict):
    """Anthropic's own ``tool_choice``: the only way to say ``disable_parallel_tool_use`` on Bedrock."""

    type: Literal["auto", "any", "tool"]
    disable_parallel_tool_use: bool
    name: NotRequired[str]


class NovaInferenceConfig(TypedDict):
    topK: int


class AdditionalFields(TypedDict, total=False):
    """``additionalModelRequestFields`` of an Anthropic request: Claude's own members (top_k, betas,
    thinking, context management, tool_choice), or Nova's ``inferenceConfig.topK``."""

    anthropic_beta: list[str]
    thinking: ThinkingConfig
    context_management: JSONObject  # the caller's, as sent (behind its beta)
    tool_choice: ToolChoice
    top_k: int
    inferenceConfig: NovaInferenceConfig

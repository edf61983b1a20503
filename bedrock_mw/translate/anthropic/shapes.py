"""The Anthropic Messages response shapes the gateway writes, as TypedDicts (no run-time cost).

The SDK's own response types are pydantic models, built per object; these describe the same JSON
for mypy while the hot path moves plain dicts. Field names and meanings follow Anthropic's API
reference for ``Message`` and its content blocks.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict


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
    input: dict[str, Any]  # the model's tool input: arbitrary JSON


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

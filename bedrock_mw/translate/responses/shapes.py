"""The OpenAI Responses shapes the gateway reads and writes, as TypedDicts (no run-time cost).

The SDK's types are pydantic models; these describe the same JSON for mypy while the hot path moves
plain dicts. Names follow OpenAI's API reference for ``response``, its output items and its stream
events. Three kinds of shape live here:

- what the gateway writes (output items, ``usage``, the ``response`` object, stream events): every
  field typed;
- the chat-completions body the request is lowered to (``Chat*``): its structure is ours, but values
  copied from the caller stay ``JSONValue`` until ``openai_to_converse`` validates them;
- the caller's own JSON kept verbatim (``InputItem``, echoed tools and formats): ``JSONObject``, the
  named JSON boundary, since unknown fields are tolerated and handed back as sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Never, NotRequired, Required, TypeAlias, TypedDict

from ..types import JSONObject, JSONValue

# -- the caller's input, kept as sent -----------------------------------------------------------
# An item of ``input`` (or of a stored conversation) with its ``type`` filled in: the caller's JSON,
# unknown fields included, listed back verbatim by GET .../input_items; read-only, the lowering
# validates what it reads. Output items (below) are input items too, so a conversation holds both.
InputItem: TypeAlias = Mapping[str, JSONValue]

# -- the chat-completions body a Responses request is lowered to --------------------------------


class ChatTextPart(TypedDict):
    type: Literal["text"]
    text: JSONValue  # the caller's text, checked by the chat translator


class ChatImageUrl(TypedDict):
    url: str


class ChatImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ChatImageUrl


class ChatFile(TypedDict):
    file_data: str
    filename: NotRequired[str]


class ChatFilePart(TypedDict):
    type: Literal["file"]
    file: ChatFile


ChatPart: TypeAlias = "ChatTextPart | ChatImagePart | ChatFilePart"


class ChatFunctionCall(TypedDict):
    name: JSONValue
    arguments: JSONValue


class ChatToolCall(TypedDict):
    id: JSONValue
    type: Literal["function"]
    function: ChatFunctionCall


class ChatContentMessage(TypedDict):
    """A system, developer or user message."""

    role: Literal["system", "developer", "user"]
    # A string, the lowered parts, or whatever else the caller sent (the chat translator refuses it).
    content: JSONValue


class ChatAssistantMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None
    tool_calls: NotRequired[list[ChatToolCall]]


class ChatToolMessage(TypedDict):
    role: Literal["tool"]
    tool_call_id: JSONValue
    content: list[ChatTextPart]


ChatMessage: TypeAlias = "ChatContentMessage | ChatAssistantMessage | ChatToolMessage"


class ChatTool(TypedDict):
    type: Literal["function"]
    function: JSONObject  # the caller's name, description, JSON-schema parameters and strict


class ChatFunctionName(TypedDict):
    name: JSONValue


class ChatFunctionChoice(TypedDict):
    type: Literal["function"]
    function: ChatFunctionName


class ChatPlainFormat(TypedDict):
    type: Literal["text", "json_object"]


class ChatSchemaFormat(TypedDict):
    type: Literal["json_schema"]
    json_schema: JSONObject  # the caller's name, schema, description and strict


class ChatBody(TypedDict, total=False):
    """The chat-completions body handed to ``openai_to_converse``; caller values it validates."""

    messages: Required[list[ChatMessage]]
    max_completion_tokens: JSONValue
    temperature: JSONValue
    top_p: JSONValue
    metadata: JSONValue
    service_tier: JSONValue
    stream: JSONValue
    tools: list[ChatTool]
    tool_choice: JSONValue  # the caller's string, or a ChatFunctionChoice
    response_format: ChatPlainFormat | ChatSchemaFormat
    reasoning_effort: JSONValue


# -- output items ---------------------------------------------------------------------------------
ItemStatus: TypeAlias = Literal["in_progress", "completed", "incomplete"]


class OutputText(TypedDict):
    type: Literal["output_text"]
    text: str
    annotations: list[Never]  # Converse citations have no Responses form here
    logprobs: list[Never]  # Bedrock reports none


class MessageItem(TypedDict):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    status: ItemStatus
    content: list[OutputText]


class FunctionCallItem(TypedDict):
    id: str
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str  # JSON text
    status: ItemStatus


class SummaryText(TypedDict):
    type: Literal["summary_text"]
    text: str


class ReasoningItem(TypedDict):
    id: str
    type: Literal["reasoning"]
    summary: list[SummaryText]
    # The sealed Converse blocks; None in what the caller sees unless it included them, absent while
    # the item is still streaming.
    encrypted_content: NotRequired[str | None]


OutputItem: TypeAlias = "MessageItem | FunctionCallItem | ReasoningItem"

# -- the response object --------------------------------------------------------------------------


class InputTokensDetails(TypedDict):
    cached_tokens: int


class OutputTokensDetails(TypedDict):
    reasoning_tokens: int


class Usage(TypedDict):
    """``usage``: cached tokens count inside ``input_tokens``, as OpenAI counts them."""

    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


IncompleteReason: TypeAlias = Literal["max_output_tokens", "content_filter"]


class IncompleteDetails(TypedDict):
    reason: IncompleteReason


class ResponseError(TypedDict):
    code: str
    message: str


class ErrorObject(TypedDict):
    """OpenAI's error object, as ``errors.openai_error_body`` writes it under ``error``."""

    message: str
    type: str
    param: str | None
    code: str | None


class ReasoningEcho(TypedDict):
    effort: str | None
    summary: JSONValue  # echoed as sent


class TextEcho(TypedDict):
    format: JSONObject  # the caller's text.format as sent ({"type": "text"} when absent)


class Echo(TypedDict):
    """The request fields a ``response`` object repeats, as validated (or, where marked, as sent)."""

    instructions: str | None
    max_output_tokens: int | None
    metadata: dict[str, str]
    parallel_tool_calls: JSONValue  # as sent: only false changes anything
    previous_response_id: str | None
    reasoning: ReasoningEcho
    store: bool
    temperature: float | None
    text: TextEcho
    tool_choice: str | JSONObject
    tools: list[JSONObject]  # the caller's tools as sent, JSON-schema parameters included
    top_p: float | None
    truncation: Literal["auto", "disabled"] | None
    user: JSONValue  # as sent: advisory


ResponseStatus: TypeAlias = Literal["in_progress", "completed", "incomplete", "failed"]


class ResponseObject(Echo):
    """The ``response`` object: the non-streamed answer, and every stream snapshot of it."""

    id: str
    object: Literal["response"]
    created_at: int
    status: ResponseStatus
    background: Literal[False]
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    model: str
    output: list[OutputItem]
    usage: Usage | None


# -- stream events (each carries its ``sequence_number``) -----------------------------------------


class ResponseEvent(TypedDict):
    type: Literal[
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
    ]
    sequence_number: int
    response: ResponseObject


class OutputItemEvent(TypedDict):
    type: Literal["response.output_item.added", "response.output_item.done"]
    sequence_number: int
    output_index: int
    item: OutputItem


class ContentPartEvent(TypedDict):
    type: Literal["response.content_part.added", "response.content_part.done"]
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class OutputTextDeltaEvent(TypedDict):
    type: Literal["response.output_text.delta"]
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Never]


class OutputTextDoneEvent(TypedDict):
    type: Literal["response.output_text.done"]
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Never]


class ArgumentsDeltaEvent(TypedDict):
    type: Literal["response.function_call_arguments.delta"]
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(TypedDict):
    type: Literal["response.function_call_arguments.done"]
    sequence_number: int
    item_id: str
    output_index: int
    name: str
    arguments: str


class SummaryPartEvent(TypedDict):
    type: Literal["response.reasoning_summary_part.added", "response.reasoning_summary_part.done"]
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryTextDeltaEvent(TypedDict):
    type: Literal["response.reasoning_summary_text.delta"]
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class SummaryTextDoneEvent(TypedDict):
    type: Literal["response.reasoning_summary_text.done"]
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    text: str


StreamEvent: TypeAlias = (
    "ResponseEvent | OutputItemEvent | ContentPartEvent | OutputTextDeltaEvent | OutputTextDoneEvent"
    " | ArgumentsDeltaEvent | ArgumentsDoneEvent | SummaryPartEvent | SummaryTextDeltaEvent"
    " | SummaryTextDoneEvent"
)

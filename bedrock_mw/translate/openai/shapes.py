"""The OpenAI shapes the gateway writes, as TypedDicts (no run-time cost).

The SDK's response types are pydantic models; these describe the same JSON for mypy while the hot
path moves plain dicts. Names follow OpenAI's API reference for ``chat.completion``, its chunks and
the embeddings list, and Bedrock's for the ``additionalModelRequestFields`` a chat request carries.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class PromptTokensDetails(TypedDict):
    cached_tokens: int


class Usage(TypedDict):
    """``usage``: cached tokens count inside ``prompt_tokens``, as OpenAI counts them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    cache_creation_input_tokens: int  # an extension: Bedrock reports cache writes apart


class FunctionCall(TypedDict):
    name: str
    arguments: str  # JSON text


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class AssistantMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None
    refusal: None
    tool_calls: NotRequired[list[ToolCall]]
    reasoning_content: NotRequired[str]


class Choice(TypedDict):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None


class ChatCompletion(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: None


class FunctionDelta(TypedDict, total=False):
    name: str
    arguments: str


class ToolCallDelta(TypedDict):
    index: int
    id: NotRequired[str]
    type: NotRequired[Literal["function"]]
    function: FunctionDelta


class ChunkDelta(TypedDict, total=False):
    """The ``delta`` of one ``chat.completion.chunk`` choice (empty in the finish chunk)."""

    role: Literal["assistant"]
    content: str
    tool_calls: list[ToolCallDelta]
    reasoning_content: str


class ChunkChoice(TypedDict):
    index: int
    delta: ChunkDelta
    logprobs: None
    finish_reason: str | None


class ChunkHead(TypedDict):
    """The members every chunk of one stream repeats (``usage`` only when the caller asked for it)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    usage: NotRequired[Usage | None]  # null on every chunk but the last, usage-only one


class ChatCompletionChunk(ChunkHead):
    """One ``chat.completion.chunk``."""

    system_fingerprint: None
    choices: list[ChunkChoice]


class ClaudeThinking(TypedDict):
    type: Literal["enabled"]
    budget_tokens: int


class AdditionalFields(TypedDict, total=False):
    """``additionalModelRequestFields`` of a chat request: Claude's thinking, or gpt-oss's effort."""

    thinking: ClaudeThinking
    reasoning_effort: str


class Embedding(TypedDict):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # base64 of little-endian float32 when asked for


class EmbeddingsUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(TypedDict):
    """The ``/v1/embeddings`` answer."""

    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingsUsage

"""InvokeModel bodies of the model families the gateway writes and reads, as TypedDicts (no run-time cost).

Bedrock's service model types an InvokeModel body as a blob: each family's JSON is its own, described
in Bedrock's model-parameters documentation (Titan Text, Meta Llama, Titan Text Embeddings, Cohere
Embed). These name the members the translators build and read; a family's answer may carry more
members, which the gateway ignores. The Anthropic body is in ``translate/anthropic/shapes.py``.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict


class InvocationMetrics(TypedDict, total=False):
    """Bedrock's own totals, in a stream's last chunk (under ``amazon-bedrock-invocationMetrics``)."""

    inputTokenCount: int
    outputTokenCount: int
    invocationLatency: int
    firstByteLatency: int


# -- Titan Text ------------------------------------------------------------------------------------
class TitanTextConfig(TypedDict, total=False):
    temperature: float
    topP: float
    maxTokenCount: int
    stopSequences: list[str]


class TitanTextRequest(TypedDict):
    inputText: str  # the whole conversation as one ``User: ...`` / ``Bot:`` transcript
    textGenerationConfig: NotRequired[TitanTextConfig]


class TitanTextResult(TypedDict, total=False):
    tokenCount: int
    outputText: str
    completionReason: str  # FINISH, LENGTH, STOP_CRITERIA_MET, CONTENT_FILTERED...


class TitanTextResponse(TypedDict, total=False):
    inputTextTokenCount: int
    results: list[TitanTextResult]


# One decoded stream chunk: running totals, one text fragment, and (on the last) the reason and metrics.
TitanTextChunk = TypedDict(
    "TitanTextChunk",
    {
        "index": int,
        "inputTextTokenCount": int,
        "totalOutputTextTokenCount": int,
        "outputText": str,
        "completionReason": str | None,
        "amazon-bedrock-invocationMetrics": InvocationMetrics,
    },
    total=False,
)


# -- Meta Llama ------------------------------------------------------------------------------------
class LlamaRequest(TypedDict):
    prompt: str  # Llama 3's header-token prompt format
    max_gen_len: NotRequired[int]
    temperature: NotRequired[float]
    top_p: NotRequired[float]


class LlamaResponse(TypedDict, total=False):
    generation: str
    prompt_token_count: int
    generation_token_count: int
    stop_reason: str | None  # stop, length


LlamaChunk = TypedDict(
    "LlamaChunk",
    {
        "generation": str,
        "prompt_token_count": int | None,
        "generation_token_count": int,
        "stop_reason": str | None,
        "amazon-bedrock-invocationMetrics": InvocationMetrics,
    },
    total=False,
)

NativeChatRequest: TypeAlias = "TitanTextRequest | LlamaRequest"
NativeChatResponse: TypeAlias = "TitanTextResponse | LlamaResponse"
NativeChatChunk: TypeAlias = "TitanTextChunk | LlamaChunk"


# -- Titan Text Embeddings (v1 takes only inputText) -----------------------------------------------
class TitanEmbedRequest(TypedDict):
    inputText: str
    dimensions: NotRequired[int]  # v2: 256, 512 or 1024
    normalize: NotRequired[bool]  # v2


class TitanEmbedResponse(TypedDict, total=False):
    embedding: list[float]
    inputTextTokenCount: int


# -- Cohere Embed v3 -------------------------------------------------------------------------------
class CohereEmbedRequest(TypedDict):
    texts: list[str]  # at most 96
    input_type: str
    embedding_types: list[Literal["float", "int8", "uint8", "binary", "ubinary"]]
    truncate: NotRequired[str]  # NONE, START or END


class CohereEmbeddingsByType(TypedDict, total=False):
    float: list[list[float]]


class CohereEmbedResponse(TypedDict, total=False):
    """``embeddings`` is a list of vectors, or by type when ``embedding_types`` was sent."""

    id: str
    response_type: Literal["embeddings_floats", "embeddings_by_type"]
    embeddings: list[list[float]] | CohereEmbeddingsByType
    texts: list[str]


EmbedRequest: TypeAlias = "TitanEmbedRequest | CohereEmbedRequest"
EmbedResponse: TypeAlias = "TitanEmbedResponse | CohereEmbedResponse"

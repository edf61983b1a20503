"""The model-family table: which Bedrock API serves a model and what it can do.

This is data, kept in one place. Routing uses it to recognise the family behind any model-id form;
translators use it to refuse, before Bedrock is called, a feature the model lacks. Rows are tried in
order and the first whose pattern matches the *base* model id (no geo prefix, no ARN, no version
suffix needed) wins, so narrower rows come first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import lru_cache


class ChatApi(StrEnum):
    """The Bedrock operation that serves chat for a family."""

    CONVERSE = "converse"
    INVOKE = "invoke"
    NONE = "none"  # embedding-only models


class NativeBody(StrEnum):
    """The InvokeModel body dialect of a family, where it has one we speak."""

    NONE = "none"
    ANTHROPIC = "anthropic"
    TITAN_TEXT = "titan-text"
    LLAMA = "llama"
    TITAN_EMBED = "titan-embed"
    COHERE_EMBED = "cohere-embed"


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """One row of the family table."""

    name: str
    patterns: tuple[str, ...]
    chat_api: ChatApi
    native_body: NativeBody = NativeBody.NONE
    system_prompt: bool = True
    tools: bool = True
    streamed_tools: bool = True
    images: bool = False
    documents: bool = False
    prompt_caching: bool = False
    reasoning: bool = False
    structured_output: bool = False
    embeddings: bool = False
    # Claude 3.7, 4.x and later, Nova Premier, Llama 4, DeepSeek R1: Bedrock serves them only through
    # inference profiles (``us.``, ``eu.``, ...), a bare id is refused for on-demand throughput.
    needs_inference_profile: bool = False
    # Claude Opus 4.1 and the 4.5 generation onwards take ``temperature`` or ``topP``, not both
    # ("`temperature` and `top_p` cannot both be specified for this model").
    exclusive_sampling: bool = False


# The current Claude row; its newest generations differ only in how sampling may be set.
_CLAUDE = ModelFamily(
    "anthropic-claude",
    (
        "anthropic.claude-3-7-*",
        "anthropic.claude-*-4*",
        "anthropic.claude-*-5*",
        "anthropic.claude-*-6*",
        "anthropic.claude-*-7*",
        "anthropic.claude-*",
    ),
    ChatApi.CONVERSE,
    NativeBody.ANTHROPIC,
    images=True,
    documents=True,
    prompt_caching=True,
    reasoning=True,
    structured_output=True,
    needs_inference_profile=True,
)
_CLAUDE_EXCLUSIVE_SAMPLING = (
    "anthropic.claude-opus-4-1*",
    "anthropic.claude-[a-z]*-4-[5-9]*",
    "anthropic.claude-[a-z]*-[5-9]-*",
    "anthropic.claude-[a-z]*-[5-9]",
)

FAMILIES: tuple[ModelFamily, ...] = (
    # Anthropic: Claude 3 (Haiku/Sonnet/Opus) and 3.5 Sonnet have no prompt caching on Bedrock.
    ModelFamily(
        "anthropic-claude-3-legacy",
        (
            "anthropic.claude-3-haiku*",
            "anthropic.claude-3-sonnet*",
            "anthropic.claude-3-opus*",
            "anthropic.claude-3-5-sonnet*",
        ),
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        images=True,
        documents=True,
    ),
    ModelFamily(
        "anthropic-claude-instant",
        ("anthropic.claude-instant*", "anthropic.claude-v2*"),
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        tools=False,
        streamed_tools=False,
    ),
    ModelFamily(
        "anthropic-claude-3-5-haiku",
        ("anthropic.claude-3-5-haiku*",),
        ChatApi.CONVERSE,
        NativeBody.ANTHROPIC,
        images=False,
        documents=True,
        prompt_caching=True,
    ),
    replace(_CLAUDE, patterns=_CLAUDE_EXCLUSIVE_SAMPLING, exclusive_sampling=True),
    _CLAUDE,
    ModelFamily(
        "amazon-nova-premier",
        ("amazon.nova-premier*",),
        ChatApi.CONVERSE,
        images=True,
        documents=True,
        prompt_caching=True,
        needs_inference_profile=True,
    ),
    ModelFamily(
        "amazon-nova-micro",
        ("amazon.nova-micro*",),
        ChatApi.CONVERSE,
        prompt_caching=True,
    ),
    ModelFamily(
        "amazon-nova",
        ("amazon.nova-*",),
        ChatApi.CONVERSE,
        images=True,
        documents=True,
        prompt_caching=True,
    ),
    ModelFamily(
        "amazon-titan-embed",
        ("amazon.titan-embed-*",),
        ChatApi.NONE,
        NativeBody.TITAN_EMBED,
        system_prompt=False,
        tools=False,
        streamed_tools=False,
        embeddings=True,
    ),
    ModelFamily(
        "amazon-titan-text",
        ("amazon.titan-text-*", "amazon.titan-tg1-*"),
        ChatApi.INVOKE,
        NativeBody.TITAN_TEXT,
        system_prompt=False,
        tools=False,
        streamed_tools=False,
    ),
    ModelFamily(
        "meta-llama-4",
        ("meta.llama4*",),
        ChatApi.CONVERSE,
        NativeBody.LLAMA,
        images=True,
        streamed_tools=False,
        needs_inference_profile=True,
    ),
    # Llama 3.2 and 3.3 have no on-demand ids either: Bedrock answers "Invocation of model ID ... with
    # on-demand throughput isn't supported" for the bare id (the emulator enforces it too).
    ModelFamily(
        "meta-llama-3-2-vision",
        ("meta.llama3-2-11b*", "meta.llama3-2-90b*"),
        ChatApi.CONVERSE,
        NativeBody.LLAMA,
        images=True,
        streamed_tools=False,
        needs_inference_profile=True,
    ),
    ModelFamily(
        "meta-llama-3-2-3",
        ("meta.llama3-2-*", "meta.llama3-3-*"),
        ChatApi.CONVERSE,
        NativeBody.LLAMA,
        streamed_tools=False,
        needs_inference_profile=True,
    ),
    ModelFamily(
        "meta-llama",
        ("meta.llama*",),
        ChatApi.CONVERSE,
        NativeBody.LLAMA,
        streamed_tools=False,
    ),
    ModelFamily(
        "mistral-large",
        ("mistral.mistral-large*", "mistral.pixtral*"),
        ChatApi.CONVERSE,
        documents=True,
        images=True,
    ),
    ModelFamily(
        "mistral",
        ("mistral.*",),
        ChatApi.CONVERSE,
        system_prompt=False,
        tools=False,
        streamed_tools=False,
        documents=True,
    ),
    ModelFamily(
        "cohere-embed",
        ("cohere.embed-*",),
        ChatApi.NONE,
        NativeBody.COHERE_EMBED,
        system_prompt=False,
        tools=False,
        streamed_tools=False,
        embeddings=True,
    ),
    ModelFamily(
        "cohere-command",
        ("cohere.command-*",),
        ChatApi.CONVERSE,
        streamed_tools=False,
    ),
    ModelFamily(
        "deepseek",
        ("deepseek.*",),
        ChatApi.CONVERSE,
        tools=False,
        streamed_tools=False,
        reasoning=True,
        needs_inference_profile=True,
    ),
    ModelFamily(
        "openai-gpt-oss",
        ("openai.gpt-oss-*",),
        ChatApi.CONVERSE,
        reasoning=True,
    ),
    ModelFamily(
        "qwen",
        ("qwen.*",),
        ChatApi.CONVERSE,
    ),
)

# A model whose family we do not know still goes to Converse, Bedrock's uniform API, with every
# feature allowed: Bedrock itself then decides, and its answer is mapped and explained.
UNKNOWN_FAMILY = ModelFamily(
    "unknown",
    ("*",),
    ChatApi.CONVERSE,
    images=True,
    documents=True,
    prompt_caching=True,
    reasoning=True,
)


@lru_cache(maxsize=1024)
def family_of(base_model_id: str) -> ModelFamily:
    """The family of a base Bedrock model id such as ``anthropic.claude-haiku-4-5-20251001-v1:0``."""
    model = base_model_id.lower()
    for family in FAMILIES:
        if any(fnmatchcase(model, pattern) for pattern in family.patterns):
            return family
    return UNKNOWN_FAMILY

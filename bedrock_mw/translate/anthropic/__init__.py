"""Anthropic Messages API <-> Bedrock Converse: the translator's public surface.

Request translation lives in :mod:`anthropic_request` (with content blocks in :mod:`anthropic_content`),
response translation in :mod:`anthropic_response`; the streamed form is
:class:`bedrock_mw.stream.anthropic.AnthropicStreamTranscoder`. Every rule is listed in
``docs/anthropic.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..bedrock import unique_urls
from ..types import JSONObject
from .betas import DEFAULT_SUPPORTED_BETAS
from .request import (
    AnthropicOptions,
    anthropic_count_tokens_request,
    anthropic_to_converse,
)
from .response import converse_to_anthropic, new_message_id

__all__ = [
    "DEFAULT_SUPPORTED_BETAS",
    "AnthropicOptions",
    "anthropic_count_tokens_request",
    "anthropic_to_converse",
    "converse_to_anthropic",
    "image_urls",
    "new_message_id",
]


def image_urls(body: JSONObject) -> list[str]:
    """Every URL-source image or document in a request, in order and without repeats (never raises)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return []
    return unique_urls(url for m in messages if isinstance(m, dict) for url in _source_urls(m.get("content")))


def _source_urls(blocks: Any) -> Iterator[str]:
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") in ("image", "document"):
            source = block.get("source")
            if (
                isinstance(source, dict)
                and source.get("type") == "url"
                and isinstance(source.get("url"), str)
            ):
                yield source["url"]
        elif block.get("type") == "tool_result":
            yield from _source_urls(block.get("content"))

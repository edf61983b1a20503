"""Anthropic Messages API <-> Bedrock Converse: the translator's public surface.

Request translation lives in :mod:`anthropic_request` (with content blocks in :mod:`anthropic_content`),
response translation in :mod:`anthropic_response`; the streamed form is
:class:`bedrock_mw.stream.anthropic.AnthropicStreamTranscoder`. Every rule is listed in
``docs/anthropic.md``.
"""

from __future__ import annotations

from typing import Any

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


def image_urls(body: dict[str, Any]) -> list[str]:
    """Every URL-source image or document in a request, in order and without repeats (never raises)."""
    urls: dict[str, None] = {}

    def visit(blocks: Any) -> None:
        if not isinstance(blocks, list):
            return
        for block in blocks:
            if not isinstance(block, dict):
                continue
            if block.get("type") in ("image", "document"):
                source = block.get("source")
                if (
                    isinstance(source, dict)
                    and source.get("type") == "url"
                    and isinstance(source.get("url"), str)
                ):
                    urls.setdefault(source["url"], None)
            elif block.get("type") == "tool_result":
                visit(block.get("content"))

    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                visit(message.get("content"))
    return list(urls)

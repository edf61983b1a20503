"""The OpenAI chat-completions dialect on Converse: the public surface the app calls.

The rules live in ``openai_params`` (shared parameters), ``openai_request`` (tools, response
format, reasoning), ``openai_messages`` (messages and content parts) and ``openai_response`` (the
answer); see ``docs/openai.md``.
"""

from __future__ import annotations

from ..bedrock import DROPPED_CACHE_HEADER
from .params import DROPPED_PARAMS_HEADER, OpenAIOptions
from .request import (
    FOLDED_SYSTEM_HEADER,
    STRUCTURED_OUTPUT_NOTE,
    image_urls,
    openai_to_converse,
)
from .response import converse_to_openai, new_completion_id

__all__ = [
    "DROPPED_CACHE_HEADER",
    "DROPPED_PARAMS_HEADER",
    "FOLDED_SYSTEM_HEADER",
    "STRUCTURED_OUTPUT_NOTE",
    "OpenAIOptions",
    "converse_to_openai",
    "image_urls",
    "new_completion_id",
    "openai_to_converse",
]

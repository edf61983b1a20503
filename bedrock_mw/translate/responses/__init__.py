"""The OpenAI Responses dialect on Converse: the public surface the routes call.

``request`` lowers a Responses body through the chat-completions translator, ``response`` builds
output items and the response object (shared with ``stream.responses``), and ``sealing`` seals
Claude's reasoning for the client to carry; see ``docs/responses.md``.
"""

from __future__ import annotations

from .request import (
    ENCRYPTED_REASONING,
    IGNORED_PARAMS_HEADER,
    ResponsesCall,
    ResponsesOptions,
    image_urls,
    input_items,
    responses_to_converse,
)
from .response import (
    ResponseHead,
    converse_output_items,
    converse_to_response,
    new_id,
    response_of_reasoning_id,
    responses_usage,
)
from .sealing import ReasoningSeal

__all__ = [
    "ENCRYPTED_REASONING",
    "IGNORED_PARAMS_HEADER",
    "ReasoningSeal",
    "ResponseHead",
    "ResponsesCall",
    "ResponsesOptions",
    "converse_output_items",
    "converse_to_response",
    "image_urls",
    "input_items",
    "new_id",
    "response_of_reasoning_id",
    "responses_to_converse",
    "responses_usage",
]

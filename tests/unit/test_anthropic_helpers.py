"""Helpers (no tests) shared by the Anthropic translator tests: families, bodies, botocore checks."""

from __future__ import annotations

import base64
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from bedrock_mw.routing.families import ModelFamily, family_of

CLAUDE: ModelFamily = family_of("anthropic.claude-sonnet-4-5-20250929-v1:0")
CLAUDE_3: ModelFamily = family_of("anthropic.claude-3-haiku-20240307-v1:0")  # no prompt caching
NOVA: ModelFamily = family_of("amazon.nova-pro-v1:0")
MISTRAL: ModelFamily = family_of("mistral.mistral-7b-instruct-v0:2")  # no system prompt, no tools
LLAMA: ModelFamily = family_of("meta.llama3-1-8b-instruct-v1:0")  # no images, no documents

PNG = b"\x89PNG\r\n\x1a\n0000"
PNG_B64 = base64.b64encode(PNG).decode()
PDF = b"%PDF-1.4 fake"
PDF_B64 = base64.b64encode(PDF).decode()

_SERVICE = botocore.session.get_session().get_service_model("bedrock-runtime")


def body(**fields: Any) -> dict[str, Any]:
    """A minimal valid Messages body with ``fields`` merged in (a value of ``...`` removes the field)."""
    out: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not ...}


def assert_valid(operation: str, params: dict[str, Any]) -> None:
    """Fail unless botocore's own validator accepts ``params`` for ``operation``."""
    shape = _SERVICE.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()

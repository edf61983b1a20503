"""Host-facing types: the usage record given to the host's hook, the hook, and the key resolver.

These are what a host app writes code against; the request pipeline (:mod:`.gateway`) fills them in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request

from .config import VirtualKeyConfig
from .translate.types import TokenUsage

__all__ = ["KeyResolver", "UsageHook", "UsageRecord"]


@dataclass(slots=True)
class UsageRecord:
    """What one request cost and how it went; given to the host's usage hook after the response."""

    request_id: str
    key_id: str | None
    endpoint: str
    model: str | None
    provider_id: str | None = None
    region: str | None = None
    model_id: str | None = None
    status: int = 200
    stream: bool = False
    usage: TokenUsage = field(default_factory=TokenUsage)
    # USD at the price table's rates (cache reads and writes priced apart); None when no price is known.
    cost_usd: float | None = None
    latency_s: float = 0.0
    time_to_first_token_s: float | None = None
    attempts: int = 0
    error_type: str | None = None
    key_metadata: dict[str, str] = field(default_factory=dict)
    # Who the caller says the work is for: Claude Code's session (``X-Claude-Code-Session-Id``, else
    # the ``session_id`` inside its ``metadata.user_id``) and the end user (Anthropic ``metadata.user_id``,
    # OpenAI ``user``). Caller-supplied text: for attribution, never for authorisation.
    session_id: str | None = None
    end_user: str | None = None
    # "<identifier>:<version>" of the guardrail the call carried, what it did (INTERVENED / NONE) and
    # its trace (the assessments Bedrock returned; None when tracing was off).
    guardrail: str | None = None
    guardrail_action: str | None = None
    guardrail_trace: Any = None


UsageHook = Callable[[UsageRecord], Awaitable[None]]


class KeyResolver(Protocol):
    """Host hook: map the host's own authenticated user (on the request) to a virtual key, or None."""

    async def __call__(self, request: Request) -> VirtualKeyConfig | None: ...

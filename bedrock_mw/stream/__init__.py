"""Pure stream transcoders: Bedrock stream events in, SSE bytes out (no I/O, no awaits)."""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import GatewayError
from ..translate.types import TokenUsage


class StreamTranscoder(Protocol):
    """What the relay drives: one upstream event in, the caller's SSE bytes out."""

    def feed(self, event: dict[str, Any]) -> bytes: ...
    def finish(self) -> bytes: ...
    def fail(self, error: GatewayError) -> bytes: ...
    @property
    def usage(self) -> TokenUsage: ...

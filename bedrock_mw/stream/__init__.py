"""Pure stream transcoders: Bedrock stream events in, SSE bytes out (no I/O, no awaits)."""

from __future__ import annotations

from typing import Protocol, TypeVar

from ..errors import GatewayError
from ..translate.types import TokenUsage

E_contra = TypeVar("E_contra", contravariant=True)


class StreamTranscoder(Protocol[E_contra]):
    """What the relay drives: one upstream event in, the caller's bytes (SSE, or event-stream) out."""

    def feed(self, event: E_contra) -> bytes: ...
    def finish(self) -> bytes: ...
    def fail(self, error: GatewayError) -> bytes: ...
    @property
    def usage(self) -> TokenUsage: ...

"""Everything one emulator instance remembers, shared by its app, control API and runner."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from .credentials import Keyring
from .faults import FaultBook
from .guardrails import GuardrailBook
from .prompt_cache import PromptCache
from .request_log import RequestLog
from .sts import AssumedRole


@dataclass
class EmulatorSettings:
    """Knobs that are not per-request."""

    default_region: str = "us-east-1"
    # Pause between stream events for every stream (a fault's event_delay_s overrides it).
    event_delay_s: float = 0.0
    check_clock_skew: bool = True


@dataclass
class EmulatorState:
    """Keys, faults, log, prompt cache, and live counters."""

    keyring: Keyring = field(default_factory=Keyring.default)
    faults: FaultBook = field(default_factory=FaultBook)
    log: RequestLog = field(default_factory=RequestLog)
    cache: PromptCache = field(default_factory=PromptCache)
    guardrails: GuardrailBook = field(default_factory=GuardrailBook)
    settings: EmulatorSettings = field(default_factory=EmulatorSettings)
    counters: Counter[str] = field(default_factory=Counter)
    open_streams: int = 0
    # Bytes handed to the server by the streams open now: what a non-reading client can make the
    # emulator buffer (bounded by backpressure: send() waits once the transport's buffer is full).
    open_stream_bytes: int = 0
    assumed_roles: list[AssumedRole] = field(default_factory=list)
    warm: set[tuple[str, str]] = field(default_factory=set)
    # Set on shutdown so hanging requests let go instead of holding the server open.
    closing: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        """Clear faults, log, cache, guardrails, counters and cold-start memory (keys stay)."""
        self.faults.clear()
        self.guardrails.clear()
        self.log.clear()
        self.cache.clear()
        self.counters.clear()
        self.warm.clear()
        self.assumed_roles.clear()

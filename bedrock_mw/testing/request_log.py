"""The request log: what each call to the emulator carried, for tests to assert on."""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LogEntry:
    """One request as the emulator saw it. Secrets are never stored, only key ids/fingerprints."""

    time: float
    request_id: str
    operation: str
    model_id: str
    body: Any = None
    region: str | None = None
    auth_kind: str | None = None
    access_key_id: str | None = None
    session_token_present: bool = False
    session_token: str | None = None
    bearer_key_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    error: str | None = None
    fault_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULT_MAX_ENTRIES = 10_000


class RequestLog:
    """The most recent LogEntry objects (bounded, so benchmark runs do not grow without limit)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._lock = threading.Lock()

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def entries(self) -> list[LogEntry]:
        """A snapshot of the entries."""
        with self._lock:
            return list(self._entries)

    def for_operation(self, operation: str) -> list[LogEntry]:
        return [e for e in self.entries if e.operation == operation]

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> LogEntry:
        return self.entries[index]

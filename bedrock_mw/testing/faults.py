"""Scriptable faults: errors, delays, cold starts, hangs and mid-stream exceptions.

A fault matches by region, model id (glob, as sent or bare), operation and auth kind. The first
matching fault in insertion order applies and spends one of its `times` (None = permanent).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BedrockError, error_type_for_status

OPERATIONS = {
    "converse": "converse",
    "conversestream": "converse-stream",
    "converse-stream": "converse-stream",
    "invoke": "invoke",
    "invokemodel": "invoke",
    "invoke-with-response-stream": "invoke-with-response-stream",
    "invokemodelwithresponsestream": "invoke-with-response-stream",
    "count-tokens": "count-tokens",
    "counttokens": "count-tokens",
}
STREAMING_OPERATIONS = frozenset({"converse-stream", "invoke-with-response-stream"})
_ids = itertools.count(1)


@dataclass
class Fault:
    """One scripted misbehaviour. `error`/`status` make it an error; the rest shape timing."""

    error: str | None = None
    status: int | None = None
    message: str | None = None
    region: str = "*"
    model: str = "*"
    operation: str = "*"
    auth: str = "*"
    times: int | None = None
    delay_s: float = 0.0
    cold_start_s: float = 0.0
    hang: bool = False
    stream_error_after: int | None = None
    event_delay_s: float | None = None
    retry_after: str | None = None
    id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self) -> None:
        self.operation = OPERATIONS.get(self.operation.lower(), self.operation)
        if self.status is not None and self.error is None:
            self.error = error_type_for_status(self.status)
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build from the control API's JSON; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)} - {"id"}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**dict(data))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def matches(self, region: str, model_ids: tuple[str, ...], operation: str, auth: str) -> bool:
        if self.stream_error_after is not None and operation not in STREAMING_OPERATIONS:
            return False
        return (
            fnmatch.fnmatchcase(region, self.region)
            and fnmatch.fnmatchcase(operation, self.operation)
            and fnmatch.fnmatchcase(auth, self.auth)
            and any(fnmatch.fnmatchcase(m, self.model) for m in model_ids)
        )

    def to_error(self) -> BedrockError | None:
        """The error to answer with before any body is sent (None for timing-only faults)."""
        if self.error is None or self.stream_error_after is not None:
            return None
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        return BedrockError(self.error, self.message, self.status, headers)

    # Shorthands for the common cases.
    @classmethod
    def throttling(cls, **kw: Any) -> Fault:
        return cls(error="ThrottlingException", **kw)

    @classmethod
    def access_denied(cls, **kw: Any) -> Fault:
        return cls(error="AccessDeniedException", **kw)

    @classmethod
    def validation(cls, message: str, **kw: Any) -> Fault:
        return cls(error="ValidationException", message=message, **kw)

    @classmethod
    def internal_error(cls, **kw: Any) -> Fault:
        return cls(error="InternalServerException", **kw)

    @classmethod
    def unavailable(cls, **kw: Any) -> Fault:
        return cls(error="ServiceUnavailableException", **kw)

    @classmethod
    def model_not_ready(cls, **kw: Any) -> Fault:
        return cls(error="ModelNotReadyException", **kw)

    @classmethod
    def delay(cls, seconds: float, **kw: Any) -> Fault:
        return cls(delay_s=seconds, **kw)

    @classmethod
    def cold_start(cls, seconds: float, **kw: Any) -> Fault:
        return cls(cold_start_s=seconds, **kw)

    @classmethod
    def hanging(cls, **kw: Any) -> Fault:
        return cls(hang=True, **kw)

    @classmethod
    def stream_error(cls, after: int, error: str = "ModelStreamErrorException", **kw: Any) -> Fault:
        return cls(error=error, stream_error_after=after, **kw)


class FaultBook:
    """The active faults; safe to edit from the test thread while the server thread reads."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        """Activate a fault; returns it (its `id` can be used to remove it)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if f.id != fault_id]

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, region: str, model_ids: tuple[str, ...], operation: str, auth: str) -> Fault | None:
        """The first matching fault, spending one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(region, model_ids, operation, auth):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)

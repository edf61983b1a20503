"""One way to unwrap exception groups: callers map one error to one answer.

A task group wraps even a single failure in an ``ExceptionGroup``; a route, a media fetch or a
stream wants the error itself so that it is converted and reported like any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def collapse_excgroups() -> Iterator[None]:
    """Re-raise the first error of an exception group (nested groups included) instead of the group."""
    try:
        yield
    except BaseExceptionGroup as group:
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None

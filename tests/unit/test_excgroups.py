"""One exception-group unwrapper for every task group the gateway runs."""

from __future__ import annotations

import anyio
import pytest

from bedrock_mw.excgroups import collapse_excgroups

pytestmark = pytest.mark.anyio


def test_a_single_error_in_a_group_is_raised_as_itself() -> None:
    with pytest.raises(KeyError), collapse_excgroups():
        raise ExceptionGroup("one", [KeyError("k")])


def test_nested_groups_give_their_first_error() -> None:
    with pytest.raises(ValueError, match="first"), collapse_excgroups():
        raise ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("first")]), KeyError("second")])


def test_an_error_outside_a_group_passes_unchanged() -> None:
    with pytest.raises(LookupError), collapse_excgroups():
        raise LookupError("plain")


async def test_a_failing_task_of_a_task_group_reaches_the_caller_unwrapped() -> None:
    async def fail() -> None:
        raise ConnectionError("upstream gone")

    with pytest.raises(ConnectionError, match="upstream gone"), collapse_excgroups():
        async with anyio.create_task_group() as tg:
            tg.start_soon(fail)
            tg.start_soon(anyio.sleep_forever)

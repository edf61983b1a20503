"""The per-phase profiler's accounting and its reach into the gateway (no timing is asserted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import phases


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A clock the test moves by hand: each read returns the list's last value."""
    now = [0]
    monkeypatch.setattr(phases, "_clock", lambda: now[-1])
    yield now


def test_each_phase_is_charged_its_own_time_and_the_phases_add_up_to_the_whole(ticks: list[int]) -> None:
    p = phases.Phases()
    ticks.append(5)  # 5 in the server
    p.enter("outer")
    ticks.append(8)  # 3 in outer
    p.enter("inner")
    ticks.append(15)  # 7 in inner
    p.leave("inner")
    ticks.append(16)  # 1 more in outer
    p.leave("outer")
    ticks.append(20)  # 4 more in the server
    snap = p.snapshot()
    assert snap["ns"] == {phases.SERVER: 9, "outer": 4, "inner": 7}
    assert sum(snap["ns"].values()) == snap["whole_ns"] == 20
    assert snap["entries"] == {"outer": 1, "inner": 1}
    assert snap["mismatches"] == 0


def test_a_reset_starts_the_window_again(ticks: list[int]) -> None:
    p = phases.Phases()
    p.enter("a")
    ticks.append(10)
    p.reset()
    ticks.append(13)
    p.leave("a")
    snap = p.snapshot()
    assert {k: v for k, v in snap["ns"].items() if v} == {"a": 3}
    assert snap["whole_ns"] == 3


def test_leaving_a_phase_that_is_not_on_top_is_counted_and_repaired(ticks: list[int]) -> None:
    p = phases.Phases()
    p.enter("a")
    p.enter("b")
    p.leave("a")
    assert p.stack == [phases.SERVER]
    assert p.snapshot()["mismatches"] == 1


def test_every_step_the_profiler_wraps_still_exists_under_its_name() -> None:
    points = phases.points()
    missing = [f"{owner!r}.{attr}" for owner, attr, _ in points if phases.resolve(owner, attr) is None]
    assert missing == []


@pytest.mark.anyio
async def test_a_timed_coroutine_function_stays_one_and_returns_its_value(ticks: list[int]) -> None:
    async def answer(x: int) -> int:
        return x + 1

    timed = phases.timed(answer, "answer")
    assert await timed(41) == 42
    assert phases.PHASES.stack == [phases.SERVER]

"""The benchmark's in-process pieces run and report (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from bench import report
from bench.micro import converse_events, run_micro, transcode_anthropic, transcode_openai
from bench.stats import percentile, spread


def test_a_thousand_event_stream_is_a_thousand_deltas_plus_its_frame() -> None:
    events = converse_events(1000)
    assert len(events) == 1004
    assert sum("contentBlockDelta" in e for e in events) == 1000


def test_both_transcoders_take_the_whole_stream() -> None:
    events = converse_events(10)
    assert transcode_anthropic(events) == len(events)
    assert transcode_openai(events) == len(events)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) == 0.0
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}


def test_quick_micro_results_render_into_the_docs_section(tmp_path: Path) -> None:
    micro = run_micro(min_s=0.01, reps=1)
    assert set(micro) == {
        "transcode_anthropic_stream",
        "transcode_openai_stream",
        "translate_anthropic_request",
        "translate_openai_request",
    }
    results = {
        "machine": {"nproc": 2, "cpu": "test", "python": "3.11", "platform": "linux", "packages": {"x": "1"}},
        "settings": {"reps": 1, "duration_s": 0.1, "warmup_s": 0.1},
        "micro": micro,
    }
    table = report.render(results)
    assert "transcode_anthropic_stream" in table
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nprose\n\n{report.START}\nold\n{report.END}\n\nmore prose\n")
    report.write_docs(doc, table)
    text = doc.read_text()
    assert "old" not in text
    assert text.startswith("# Benchmarks\n\nprose")
    assert text.endswith("more prose\n")


def test_every_route_row_is_compared_with_its_raw_row_in_the_same_repetition() -> None:
    from bench.routes import ROUTES, render, summarise

    names = {r.name for r in ROUTES}
    assert all(r.reference in names for r in ROUTES if r.reference is not None)
    assert all(r.target == "emulator" for r in ROUTES if r.name.startswith("raw "))

    def run(p50: float, cpu: float | None) -> dict[str, float | None]:
        return {
            "rps": 100.0,
            "p50_ms": p50,
            "p99_ms": 2 * p50,
            "errors": 0,
            "gateway_cpu_ms_per_request": cpu,
        }

    runs = {
        r.name: {1: [run(1.0 if r.target == "gateway" else 0.25, 0.4 if r.target == "gateway" else None)]}
        for r in ROUTES
    }
    summary = summarise(runs, ROUTES, (1,))
    messages = summary["/v1/messages"]["1"]
    assert messages["added_p50_ms"]["median"] == 0.75
    assert messages["p99_over_p50"]["median"] == 2.0
    assert messages["gateway_cpu_ms_per_request"]["median"] == 0.4
    assert "added_p50_ms" not in summary["raw converse"]["1"]
    table = "\n".join(render(summary, report._cell))
    assert "| /v1/messages | 1 | 100 | 1.00 | 2.00 | 2.0 | +0.75 | 0.40 |" in table


def test_the_pass_through_verdict_compares_gateway_cpu_with_v1_messages_in_the_same_run() -> None:
    from bench.routes import PASS_THROUGH, PASS_THROUGH_BAR, pass_through_verdict

    def row(cpu: float, p50: float) -> dict[str, object]:
        return {"1": {"gateway_cpu_ms_per_request": {"median": cpu}, "p50_ms": {"median": p50}}}

    cheaper = pass_through_verdict({PASS_THROUGH: row(0.7, 9.0), PASS_THROUGH_BAR: row(0.8, 1.0)})
    dearer = pass_through_verdict({PASS_THROUGH: row(0.9, 1.0), PASS_THROUGH_BAR: row(0.8, 1.0)})
    assert "no more than" in cheaper[0] and "MORE than" in dearer[0]
    assert pass_through_verdict({PASS_THROUGH_BAR: row(0.8, 1.0)}) == []

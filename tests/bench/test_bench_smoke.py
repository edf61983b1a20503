"""The benchmark's in-process pieces run and report (no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
            "ttfb_p50_ms": p50 / 2,
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
    assert "| /v1/messages | 1 | 100 | 1.00 | 2.00 | 2.0 | +0.75 | — | 0.40 |" in table
    # A streamed route is also compared by its first byte with the raw stream's.
    assert summary["/v1/messages (stream)"]["1"]["added_ttfb_p50_ms"]["median"] == 0.375
    assert "| /v1/messages (stream) | 1 | 100 | 1.00 | 2.00 | 2.0 | +0.75 | +0.38 | 0.40 |" in table


def test_the_pass_through_verdict_compares_gateway_cpu_with_v1_messages_in_the_same_run() -> None:
    from bench.routes import PASS_THROUGH, PASS_THROUGH_BAR, pass_through_verdict

    def row(cpu: float, p50: float) -> dict[str, object]:
        return {"1": {"gateway_cpu_ms_per_request": {"median": cpu}, "p50_ms": {"median": p50}}}

    cheaper = pass_through_verdict({PASS_THROUGH: row(0.7, 9.0), PASS_THROUGH_BAR: row(0.8, 1.0)})
    dearer = pass_through_verdict({PASS_THROUGH: row(0.9, 1.0), PASS_THROUGH_BAR: row(0.8, 1.0)})
    assert "no more than" in cheaper[0] and "MORE than" in dearer[0]
    assert pass_through_verdict({PASS_THROUGH_BAR: row(0.8, 1.0)}) == []


def _cell(median: float) -> dict[str, float]:
    return {"median": median, "min": median, "max": median, "n": 1}


def _full_run_results(*, cpu16: float, drift: float, soak_s: float = 600.0) -> dict[str, object]:
    from bench.routes import ROUTES

    routes = {}
    for r in ROUTES:
        if r.target != "gateway":
            continue
        cells = {
            c: {
                "errors": 0,
                "added_p50_ms": _cell(0.2),
                "added_ttfb_p50_ms": _cell(0.1),
                "gateway_cpu_ms_per_request": _cell(cpu16 if c == "16" else 0.5),
            }
            for c in ("1", "16")
        }
        routes[r.name] = {"target": "gateway", "streamed": r.streamed, **cells}
    tail_row = {"1": {"p99_over_p50": _cell(1.5)}, "16": {"p99_over_p50": _cell(2.5)}}
    return {
        "routes": routes,
        "tail": {"duration_s": 30.0, "routes": dict.fromkeys(routes, tail_row)},
        "streaming": {"events_per_cpu_s": {"messages": _cell(160_000), "chat": _cell(140_000)}},
        "memory": {"kib_per_stream": _cell(30.0), "runs": [{"open": 2000}]},
        "soak": {
            "duration_s": soak_s,
            "drift_pct": drift,
            "rss_start": 100 * 2**20,
            "rss_end": 103 * 2**20,
            "requests": 1000,
            "errors": 0,
        },
        "mount": {
            c: _mount_cell(p50=p50, cpu=cpu, layers_us=20.0)
            for c, p50, cpu in (("1", 0.01, 0.02), ("16", 0.5, 0.03))
        },
    }


def _mount_cell(*, p50: float, cpu: float, layers_us: float, wrapped: float = 0.01) -> dict[str, object]:
    """One concurrency of the mount part: ``app.mount`` ``p50`` and ``cpu`` over serve, the middleware
    form ``wrapped`` for both, FastAPI's layers in place ``layers_us``."""
    return {
        **{f"{prefix}added_p50_ms": _cell(p50) for prefix in ("", "frozen_")},
        "added_cpu_ms_per_request": _cell(cpu),
        "frozen_added_cpu_ms_per_request": _cell(cpu),
        "wrapped_added_p50_ms": _cell(wrapped),
        "wrapped_added_cpu_ms_per_request": _cell(wrapped),
        "clock": {
            "mount_us": _cell(layers_us + 5),
            "bare_us": _cell(5.0),
            "host_layers_us": _cell(layers_us),
        },
    }


def test_every_issue_18_target_is_judged_from_the_run() -> None:
    from bench.targets import evaluate

    verdicts = evaluate(_full_run_results(cpu16=0.28, drift=3.0))
    met = [v["met"] for v in verdicts]
    # added p50, CPU, tail, every route: met; events: chat under the bar; memory, soak, mount: met.
    assert met == [True, True, True, True, False, True, True, True]
    worse = evaluate(_full_run_results(cpu16=0.31, drift=-6.0))
    assert [v["met"] for v in worse][1] is False
    assert [v["met"] for v in worse][6] is False
    assert "worst 0.310 ms" in worse[1]["value"]


def test_a_target_not_measured_or_measured_too_briefly_is_not_judged() -> None:
    from bench.targets import evaluate, render

    short = _full_run_results(cpu16=0.2, drift=0.0, soak_s=3.0)
    short["memory"] = {"kib_per_stream": _cell(1.0), "runs": [{"open": 50}]}
    del short["mount"]
    verdicts = {v["target"].split(" ")[0]: v for v in evaluate(short)}
    assert all(v["met"] is None for k, v in verdicts.items() if k in ("resident", "≤", "mounted"))
    assert [v["met"] for v in evaluate({})] == [None] * 8
    assert "not judged" in "\n".join(render(evaluate({})))


def test_a_full_run_writes_the_docs_block_and_the_readme_table(tmp_path: Path) -> None:
    from bench.targets import evaluate

    results: dict[str, object] = {
        "machine": {"nproc": 2, "cpu": "test", "python": "3.11", "platform": "linux", "packages": {"x": "1"}},
        "settings": {"reps": 1, "duration_s": 0.1, "warmup_s": 0.1},
    }
    results["targets"] = evaluate(results)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "benchmarks.md").write_text(f"# B\n\n{report.START}\nold\n{report.END}\n")
    readme_before = f"# R\n\n{report.README_START}\nround 1\n{report.README_END}\n\nrest\n"
    (tmp_path / "README.md").write_text(readme_before)
    report.write_all(tmp_path, results)
    readme = (tmp_path / "README.md").read_text()
    assert "round 1" not in readme and "| target (issue #18) | this run | met |" in readme
    assert readme.endswith("rest\n")
    assert "### Against the targets" in (tmp_path / "docs" / "benchmarks.md").read_text()


def test_a_quick_run_of_the_process_parts_measures_and_reports_them(tmp_path: Path) -> None:
    """tail, mount (FastAPI host app), held streams and the soak, end to end with --quick."""
    import orjson
    import pytest

    pytest.importorskip("psutil")
    pytest.importorskip("fastapi")
    from bench import run

    out = tmp_path / "quick.json"
    argv = ["--quick", "--no-litellm", "--only", "tail,mount,memory,soak", "--out", str(out), "--soak-s", "2"]
    assert run.main(argv) == 0
    results = orjson.loads(out.read_bytes())
    assert set(results["tail"]["routes"]) == {"/v1/messages", "/v1/messages (stream)"}
    assert all(row[c]["errors"] == 0 for row in results["tail"]["routes"].values() for c in ("1", "16"))
    # The streamed route's raw stream is measured beside it: the machine's own tail, judged by no bar.
    assert set(results["tail"]["references"]) == {"raw invoke stream (Claude)"}
    if sys.platform == "linux":  # schedstat: how long the gateway waited for a CPU in each window
        rows = results["tail"]["routes"].values()
        assert all("gateway_wait_share" in row[c] for row in rows for c in ("1", "16"))
    for c in ("1", "16"):
        sides = ("serve", "mounted", "mounted, gc.freeze", "wrapped, gc.freeze")
        assert all(results["mount"][c][side]["errors"] == 0 for side in sides)
        assert "frozen_added_cpu_ms_per_request" in results["mount"][c]
        assert "wrapped_added_cpu_ms_per_request" in results["mount"][c]
        clock = results["mount"][c]["clock"]
        assert clock["mount_us"]["min"] > 0 and clock["bare_us"]["min"] > 0
    assert results["memory"]["runs"][0]["open"] == run.QUICK.held_streams
    soak = results["soak"]
    assert soak["requests"] > 0 and soak["errors"] == 0 and soak["duration_s"] == 2.0
    assert soak["statuses"] == {"200": soak["requests"]}
    verdicts = {v["target"]: v["met"] for v in results["targets"]}
    assert len(verdicts) == 8
    # A smoke run is too short to judge the soak, the tail or 2,000 streams.
    assert sum(met is None for met in verdicts.values()) >= 3


def test_the_mount_verdict_takes_fastapis_own_layers_off_app_mount_and_judges_the_middleware_whole() -> None:
    from bench.targets import mount

    results = _full_run_results(cpu16=0.2, drift=0.0)
    # app.mount 0.06 ms over serve, of which FastAPI's layers in place 0.03: the gateway's share 0.03.
    results["mount"] = {c: _mount_cell(p50=0.06, cpu=0.06, layers_us=30.0) for c in ("1", "16")}
    results["mount"]["dispatch"] = {"added_us": _cell(18.0)}
    verdict = mount(results)
    assert verdict["met"] is True
    assert "FastAPI's own layers timed in place +0.030 ms (c=1), +0.030 ms (c=16)" in verdict["value"]
    assert "less those, p50 +0.030 ms; CPU +0.030 ms (c=1), +0.030 ms (c=16)" in verdict["value"]
    assert (
        "`GatewayMiddleware` in front, `gc.freeze()`: p50 +0.010 ms; CPU +0.010 ms (c=1)" in verdict["value"]
    )
    assert "caches warm: +0.0180 ms" in verdict["value"]
    # FastAPI's layers explain too little of app.mount's cost: not met.
    results["mount"]["1"] = _mount_cell(p50=0.06, cpu=0.06, layers_us=5.0)
    assert mount(results)["met"] is False
    # The middleware form over the bar on its own: not met either.
    results["mount"]["1"] = _mount_cell(p50=0.06, cpu=0.06, layers_us=30.0, wrapped=0.06)
    assert mount(results)["met"] is False
    # A run from before the middleware host and the clock is reported, not judged.
    results["mount"] = {"1": {"added_p50_ms": _cell(0.01), "added_cpu_ms_per_request": _cell(0.01)}}
    assert mount(results)["met"] is None


def test_the_in_process_mount_measurement_routes_every_call_through_fastapi() -> None:
    import pytest

    pytest.importorskip("fastapi")
    from bench.mount import host_dispatch

    # host_dispatch raises unless each call produced the mounted app's two ASGI messages.
    result = host_dispatch(2, 50)
    assert result["calls"] == 50
    assert result["direct_us"]["n"] == result["mounted_us"]["n"] == result["added_us"]["n"] == 2
    assert result["mounted_us"]["min"] > 0 and result["direct_us"]["min"] > 0


@pytest.mark.anyio
async def test_the_fixed_app_completes_lifespan_and_answers_any_request_with_its_body() -> None:
    from bench.fixed_app import BODY, app

    lifespan = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, object]] = []

    async def receive_lifespan() -> dict[str, object]:
        return next(lifespan)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive_lifespan, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent.clear()
    chunks = iter(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.request", "body": b"}"}]
    )

    async def receive_body() -> dict[str, object]:
        return next(chunks)

    await app({"type": "http", "method": "POST", "path": "/"}, receive_body, send)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == BODY
    assert next(chunks, None) is None  # the whole request body was read


def test_the_server_comparison_renders_each_sides_median_and_the_ratio() -> None:
    from bench.servers import SIDES, render

    runs = {
        (side, "fixed", 1): [{"cpu_ms": cpu, "p50_ms": 0.1, "p99_ms": 0.2} for cpu in values]
        for side, values in zip(
            SIDES, ([0.04, 0.05, 0.06], [0.05, 0.05, 0.05], [0.10, 0.12, 0.11]), strict=True
        )
    }
    table = render(runs, SIDES)
    assert (
        "| fixed | 1 | cpu_ms | 0.050 (0.040-0.060) | 0.050 (0.050-0.050) | 0.110 (0.100-0.120) | 2.20 |"
        in table
    )


def test_the_floor_verdict_puts_the_gateways_cpu_beside_the_relays_on_the_same_call() -> None:
    from bench.routes import RELAY, floor_verdict

    def row(cpu: float) -> dict[str, object]:
        return {"16": {"gateway_cpu_ms_per_request": {"median": cpu}}}

    (line,) = floor_verdict({RELAY: row(0.25), "/v1/messages": row(1.0)})[:-1]
    assert "relay used 0.250" in line and "/v1/messages 1.000" in line and "0.750 ms (75 %)" in line
    assert floor_verdict({"/v1/messages": row(1.0)}) == []


def test_the_mount_table_has_every_host_side_and_fastapis_layers_in_place() -> None:
    from bench import mount as mount_part

    side = {"p50_ms": _cell(1.0), "cpu_ms_per_request": _cell(0.5)}
    cell = {
        "serve": side,
        "mounted": side,
        mount_part.FROZEN: side,
        mount_part.WRAPPED: side,
        **_mount_cell(p50=0.02, cpu=0.3, layers_us=40.0),
    }
    result = {"path": "/v1/messages", "prefix": "/llm", "pinned": True, "separate_run": "a rerun", "1": cell}
    table = "\n".join(mount_part.render(result, report._cell))
    assert "| `app.mount`, as is | 1 | 1.00 | 1.00 | +0.020 | 0.500 | 0.500 | +0.300 |" in table
    assert (
        "| `app.mount`, `gc.freeze()` after start-up | 1 | 1.00 | 1.00 | +0.020 | 0.500 | 0.500 | +0.300 |"
        in table
    )
    assert (
        "| `GatewayMiddleware` in front, `gc.freeze()` | 1 | 1.00 | 1.00 | +0.010 | 0.500 | 0.500 | +0.010 |"
        in table
    )
    assert "| 1 | 45.0 | 5.0 | **+40.0** |" in table
    assert "pinned to one CPU" in table and "Measured in a rerun." in table


def test_the_latency_and_cpu_targets_state_the_floor_relays_figure_on_the_same_call() -> None:
    from bench.routes import RELAY, RELAY_COHERE
    from bench.targets import added_latency, cpu_per_request

    results = _full_run_results(cpu16=0.5, drift=0.0)
    routes = results["routes"]
    assert isinstance(routes, dict)
    routes["/v1/embeddings (Cohere, 16)"]["1"]["added_p50_ms"] = _cell(4.0)
    routes["/v1/embeddings (Cohere, 16)"]["reference"] = "raw invoke (Cohere, 16 texts)"
    for name, added, cpu in ((RELAY, 0.1, 0.2), (RELAY_COHERE, 1.5, 0.9)):
        figures = {"added_p50_ms": _cell(added), "gateway_cpu_ms_per_request": _cell(cpu)}
        cells = {c: figures for c in ("1", "16")}
        reference = "raw invoke (Claude)" if name == RELAY else "raw invoke (Cohere, 16 texts)"
        routes[name] = {"target": "relay", "reference": reference, "streamed": False, **cells}
    latency = added_latency(results)["value"]
    assert "worst +4.00 ms (/v1/embeddings (Cohere, 16))" in latency
    assert f"floor relay ({RELAY_COHERE}: server, client, signer alone): +1.50 ms" in latency
    cpu = cpu_per_request(results)["value"]
    assert f"floor relay ({RELAY}: server, client, signer alone): 0.200 ms" in cpu


def test_the_readme_table_shows_the_floor_relay_beside_the_routes() -> None:
    from bench.routes import RELAY

    results = _full_run_results(cpu16=0.5, drift=0.0)
    routes = results["routes"]
    assert isinstance(routes, dict)
    figures = {"added_p50_ms": _cell(0.1), "gateway_cpu_ms_per_request": _cell(0.2)}
    routes[RELAY] = {"target": "relay", "reference": "raw invoke (Claude)", "streamed": False, "1": figures}
    routes[RELAY]["16"] = figures
    results["machine"] = {"nproc": 2, "cpu": "test"}
    readme = report.render_readme(results)
    assert f"| `{RELAY}` (the floor: no gateway work) | +0.10 ms | 0.200 | 0.200 |" in readme
    assert "Floor at c=16: the relay used 0.200 CPU ms/request and /v1/messages 0.500" in readme

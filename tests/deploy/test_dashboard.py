"""deploy/grafana: the dashboard loads, and every query names a metric a running gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from bedrock_mw import create_gateway
from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "bedrock-mw.json"
_METRIC = re.compile(r"\bbedrock_mw_[a-z0-9_]+")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


async def exported_names(emulator: BedrockEmulator) -> set[str]:
    """Every sample name the gateway's /metrics can carry, read from its ``# TYPE`` lines."""
    app = create_gateway({**emulator_gateway_config(emulator), "observability": {"metrics": True}})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        text = (await http.get("/metrics")).text
    await app.state.gateway.aclose()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            base = name.removesuffix("_total") if kind == "counter" else name
            names.add(name)
            names.update(base + suffix for suffix in _SUFFIXES.get(kind, ()))
    return names


def test_the_dashboard_is_grafana_json_with_a_query_per_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


@pytest.mark.anyio
async def test_every_query_names_only_metrics_the_gateway_exports(bedrock_emulator: BedrockEmulator) -> None:
    exported = await exported_names(bedrock_emulator)
    used = {name for expr in queries(json.loads(DASHBOARD.read_text())) for name in _METRIC.findall(expr)}
    assert used, "the dashboard queries no gateway metric"
    assert used <= exported, f"not exported by the gateway: {sorted(used - exported)}"


def test_the_dashboard_covers_what_operators_ask_for() -> None:
    text = " ".join(queries(json.loads(DASHBOARD.read_text())))
    for needed in (
        "bedrock_mw_requests_total",  # requests and errors by route, key and model
        "bedrock_mw_request_seconds_bucket",  # latency percentiles
        "bedrock_mw_time_to_first_token_seconds_bucket",
        "bedrock_mw_tokens_total",
        "bedrock_mw_fallbacks_total",
        "bedrock_mw_refusals_total",
        "bedrock_mw_cost_usd_total",
        "bedrock_mw_open_streams",
    ):
        assert needed in text, needed
    for label in ("endpoint", "key", "model", "provider"):
        assert f"by ({label}" in text or f", {label})" in text, label

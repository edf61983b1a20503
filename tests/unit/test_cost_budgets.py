"""Cost arithmetic (cache tokens priced apart, global vs regional) and the in-process budget ledger."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from importlib import resources

import pytest

from bedrock_mw.config import BudgetConfig, GatewayConfig, PriceConfig, VirtualKeyConfig, load_config
from bedrock_mw.cost import PRICES_FILE, PriceTable, load_shipped_prices
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.limits.budgets import (
    BudgetScope,
    InProcessBudgets,
    budget_exceeded,
    micro_usd,
    period_field,
    period_reset,
    scopes_for,
)
from bedrock_mw.translate.types import TokenUsage

pytestmark = pytest.mark.anyio
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_shipped_price_table_is_dated_and_prices_every_catalogued_claude() -> None:
    date, prices = load_shipped_prices()
    assert datetime.strptime(date, "%Y-%m-%d")
    assert prices[HAIKU] == PriceConfig(
        input=1.0, output=5.0, cache_write=1.25, cache_read=0.1, regional_premium=0.1
    )
    from bedrock_mw.routing.catalogue import KNOWN_MODELS

    assert {m.bedrock_id for m in KNOWN_MODELS} <= set(prices)


@pytest.mark.parametrize(
    ("usage", "served", "expected"),
    [
        # 1M of each kind, priced apart: input 1, output 5, cache write 1.25, cache read 0.1.
        (TokenUsage(1_000_000, 0, 0, 0), "global.anthropic.claude-haiku-4-5-20251001-v1:0", 1.0),
        (TokenUsage(0, 1_000_000, 0, 0), "global.anthropic.claude-haiku-4-5-20251001-v1:0", 5.0),
        (TokenUsage(0, 0, 1_000_000, 0), "global.anthropic.claude-haiku-4-5-20251001-v1:0", 0.1),
        (TokenUsage(0, 0, 0, 1_000_000), "global.anthropic.claude-haiku-4-5-20251001-v1:0", 1.25),
        (TokenUsage(1000, 200, 5000, 3000), "global.anthropic.claude-haiku-4-5-20251001-v1:0", 0.00625),
        # Geographic profiles and in-Region ids pay the regional premium (10% for this generation).
        (TokenUsage(1000, 200, 5000, 3000), "us.anthropic.claude-haiku-4-5-20251001-v1:0", 0.006875),
        (TokenUsage(1000, 200, 5000, 3000), HAIKU, 0.006875),
        (TokenUsage(), "us.anthropic.claude-haiku-4-5-20251001-v1:0", 0.0),
    ],
)
def test_cost_prices_input_output_and_both_cache_kinds_apart(
    usage: TokenUsage, served: str, expected: float
) -> None:
    assert PriceTable().cost(HAIKU, served, usage) == pytest.approx(expected, abs=1e-12)


def test_older_models_have_no_regional_premium() -> None:
    sonnet4 = "anthropic.claude-sonnet-4-20250514-v1:0"
    usage = TokenUsage(1_000_000, 1_000_000)
    assert PriceTable().cost(sonnet4, "us." + sonnet4, usage) == pytest.approx(18.0)


def test_config_prices_override_and_extend_the_table() -> None:
    table = PriceTable(
        {HAIKU: PriceConfig(input=2.0, output=10.0), "acme.model-v1": PriceConfig(input=1, output=1)}
    )
    assert table.cost(HAIKU, HAIKU, TokenUsage(1_000_000, 0)) == pytest.approx(2.0)
    assert table.cost("acme.model-v1", "acme.model-v1", TokenUsage(500_000, 500_000)) == pytest.approx(1.0)


def test_an_unknown_price_is_null_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable()
    with caplog.at_level(logging.WARNING, logger="bedrock_mw"):
        assert table.cost("acme.unknown-v1", "acme.unknown-v1", TokenUsage(10, 10)) is None
        assert table.cost("acme.unknown-v1", "acme.unknown-v1", TokenUsage(10, 10)) is None
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "acme.unknown-v1" in caplog.records[0].message
    # Cache tokens on a model priced without a cache rate are unknown too, not free.
    no_cache = PriceTable({"acme.m": PriceConfig(input=1, output=1)})
    assert no_cache.cost("acme.m", "acme.m", TokenUsage(10, 10, 0, 5)) is None


def test_the_streamed_and_the_plain_answer_cost_the_same() -> None:
    from bedrock_mw.stream.anthropic import AnthropicStreamTranscoder
    from bedrock_mw.translate.types import ConverseCall

    usage = {"inputTokens": 12, "outputTokens": 34, "cacheReadInputTokens": 56, "cacheWriteInputTokens": 78}
    plain = TokenUsage.from_converse(usage)
    transcoder = AnthropicStreamTranscoder(model="m", message_id="msg_1", call=ConverseCall(request={}))
    for event in (
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "hi"}}},
        {"messageStop": {"stopReason": "end_turn"}},
        {"metadata": {"usage": usage, "metrics": {"latencyMs": 1}}},
    ):
        transcoder.feed(event)
    table = PriceTable()
    served = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert table.cost(HAIKU, served, transcoder.usage) == table.cost(HAIKU, served, plain)


def test_max_cost_takes_the_dearer_input_rate() -> None:
    # 1000 input at cache-write 1.25 + 100 output at 5, global.
    assert PriceTable().max_cost(HAIKU, "global." + HAIKU, 1000, 100) == pytest.approx(0.00175)
    assert PriceTable().max_cost("acme.x", "acme.x", 1, 1) is None


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "now", "field", "reset"),
    [
        ("day", "2026-12-05T17:30:00", "d20792", "2026-12-06T00:00:00+00:00"),
        ("month", "2026-12-05T17:30:00", "m202612", "2027-01-01T00:00:00+00:00"),
        ("month", "2026-02-28T23:59:59", "m202602", "2026-03-01T00:00:00+00:00"),
        ("total", "2026-12-05T17:30:00", "t", None),
    ],
)
def test_periods_are_utc_calendar_days_and_months(
    period: str, now: str, field: str, reset: str | None
) -> None:
    assert period_field(period, _at(now)) == field
    resets = period_reset(period, _at(now))
    assert (resets.isoformat() if resets else None) == reset


def test_a_spent_budget_is_a_429_with_retry_after_until_it_resets_or_none_for_total() -> None:
    now = _at("2026-12-05T23:00:00")
    daily = budget_exceeded(BudgetScope("key", "a", 1.0, "day"), micro_usd(1.2), now)
    assert daily.kind is ErrorKind.RATE_LIMIT and daily.http_status == 429
    assert daily.response_headers()["retry-after"] == "3600"
    total = budget_exceeded(BudgetScope("group", "t", 1.0, "total"), micro_usd(1.0), now)
    assert "retry-after" not in total.response_headers()
    assert "does not reset" in total.message


async def test_admission_stops_once_spent_or_reserved_reaches_the_budget() -> None:
    clock = [_at("2026-12-05T12:00:00")]
    ledger = InProcessBudgets(clock=lambda: clock[0])
    scope = [BudgetScope("key", "a", 1.0, "day")]
    holds = [await ledger.reserve(scope, 0.4) for _ in range(3)]  # 0, 0.4, 0.8 reserved: under 1.0
    with pytest.raises(GatewayError):
        await ledger.reserve(scope, 0.4)  # 1.2 reserved: over by less than one reservation
    for hold in holds:
        await hold.settle(0.1)
    (status,) = await ledger.status(scope)
    assert status.used_usd == pytest.approx(0.3) and status.remaining_usd == pytest.approx(0.7)
    await holds[0].settle(5.0)  # settling twice is a no-op
    assert (await ledger.status(scope))[0].used_usd == pytest.approx(0.3)
    clock[0] = _at("2026-12-06T00:00:01")  # a new UTC day starts from nothing
    assert (await ledger.status(scope))[0].used_usd == 0.0


async def test_a_request_counts_against_its_key_and_every_group_of_it() -> None:
    cfg: GatewayConfig = load_config(
        {
            "budget_groups": [
                {"id": "team-x", "usd": 100.0, "period": "month", "keys": ["team-a", "team-b"]},
                {"id": "all", "usd": 0.5, "period": "total", "keys": ["team-a"]},
            ],
        }
    )
    key = VirtualKeyConfig(id="team-a", providers=["p"], budget=BudgetConfig(usd=25.0, period="day"))
    scopes = scopes_for(cfg, key)
    assert [(s.kind, s.id, s.period) for s in scopes] == [
        ("key", "team-a", "day"),
        ("group", "team-x", "month"),
        ("group", "all", "total"),
    ]
    ledger = InProcessBudgets()
    await ledger.reserve(scopes, 0.6)
    with pytest.raises(GatewayError) as refused:
        await ledger.reserve(scopes, 0.01)
    assert "group 'all'" in refused.value.message
    other = VirtualKeyConfig(id="team-b", providers=["p"])
    assert [s.id for s in scopes_for(cfg, other)] == ["team-x"]


def test_every_shipped_price_names_its_sources_and_how_firmly_they_back_it() -> None:
    raw = json.loads(resources.files("bedrock_mw").joinpath(PRICES_FILE).read_text("utf-8"))
    assert set(raw["provenance"]) == set(raw["models"])
    for model, provenance in raw["provenance"].items():
        assert provenance["verification"] in {"price-list", "secondary", "unverified"}, model
        assert provenance["sources"] and set(provenance["sources"]) <= set(raw["sources"]), model
        assert provenance["note"], model
    # A model backed by the Price List transcription is backed by one of its two copies.
    price_lists = {s for s in raw["sources"] if s.startswith("price-list")}
    for model, provenance in raw["provenance"].items():
        if provenance["verification"] == "price-list":
            assert price_lists & set(provenance["sources"]), model


def test_a_cached_claude_3_5_sonnet_v2_request_is_priced_with_its_cache_rates() -> None:
    model = "anthropic.claude-3-5-sonnet-20241022-v2:0"
    cost = PriceTable().cost(model, "us." + model, TokenUsage(0, 0, 1_000_000, 1_000_000))
    assert cost == pytest.approx(0.3 + 3.75)  # read + write, no regional premium for this model

"""Cost per request and dollar budgets through the gateway: the official SDKs against the emulator."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

import bedrock_mw.app
from bedrock_mw.cost import PriceTable
from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config
from bedrock_mw.usage import UsageRecord

from .conftest import GatewayFactory, SDKClients, ServedApp

pytestmark = pytest.mark.anyio

MODEL = "claude-haiku-4-5"
BASE = "anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def records() -> list[UsageRecord]:
    return []


def _serve(
    serve_gateway: GatewayFactory, emulator: BedrockEmulator, records: list[UsageRecord], **cfg: Any
) -> ServedApp:
    config = emulator_gateway_config(emulator)
    key = cfg.pop("key", {})
    config["virtual_keys"][0].update(key)
    config.update(cfg)

    async def hook(record: UsageRecord) -> None:
        records.append(record)

    return serve_gateway(config, usage_hook=hook)


async def test_every_request_carries_its_cost_and_streaming_costs_the_same(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    records: list[UsageRecord],
) -> None:
    client = sdk.anthropic(_serve(serve_gateway, bedrock_emulator, records))
    request: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "emit 30 words"}],
    }
    plain = await client.messages.create(**request)
    async with client.messages.stream(**request) as stream:
        streamed = await stream.get_final_message()
    assert plain.usage.output_tokens == streamed.usage.output_tokens == 30
    plain_record, stream_record = records[-2:]
    assert not plain_record.stream and stream_record.stream
    assert plain_record.cost_usd is not None and plain_record.cost_usd > 0
    assert plain_record.cost_usd == stream_record.cost_usd
    expected = PriceTable().cost(BASE, plain_record.model_id or "", plain_record.usage)
    assert plain_record.cost_usd == expected


async def test_a_model_without_a_price_costs_null(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    records: list[UsageRecord],
) -> None:
    gateway = _serve(serve_gateway, bedrock_emulator, records)
    await sdk.openai(gateway).chat.completions.create(
        model="bedrock/mistral.mistral-large-2402-v1:0", messages=[{"role": "user", "content": "hi"}]
    )
    assert records[-1].status == 200 and records[-1].cost_usd is None


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
async def test_a_spent_daily_budget_is_a_429_in_the_callers_shape_with_retry_after(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    records: list[UsageRecord],
    dialect: str,
) -> None:
    gateway = _serve(
        serve_gateway, bedrock_emulator, records, key={"budget": {"usd": 0.0005, "period": "day"}}
    )
    messages: Any = [{"role": "user", "content": "emit 60 words"}]
    error: Exception | None = None
    for _ in range(20):
        try:
            if dialect == "anthropic":
                await sdk.anthropic(gateway).messages.create(model=MODEL, max_tokens=80, messages=messages)
            else:
                await sdk.openai(gateway).chat.completions.create(
                    model=MODEL, max_tokens=80, messages=messages
                )
        except (anthropic.RateLimitError, openai.RateLimitError) as refused:
            error = refused
            break
    assert error is not None, "the budget never ran out"
    response = error.response  # type: ignore[attr-defined]
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 86400
    body = response.json()
    if dialect == "anthropic":
        assert body["error"]["type"] == "rate_limit_error"
    else:
        assert body["error"]["code"] == "budget_exceeded"
    spent = sum(r.cost_usd or 0 for r in records)
    assert 0.0005 <= spent < 0.0005 + 0.001  # at most one request's worth over
    calls_before = len(bedrock_emulator.log)
    (status,) = await bedrock_mw.app.budget_status(gateway.app, "test")  # type: ignore[arg-type]
    assert status.remaining_usd == 0.0 and status.used_usd == pytest.approx(spent, abs=1e-5)
    assert status.resets_at is not None
    assert len(bedrock_emulator.log) == calls_before  # reading what is left calls nothing


async def test_a_total_group_budget_refuses_without_retry_after(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    records: list[UsageRecord],
) -> None:
    gateway = _serve(
        serve_gateway,
        bedrock_emulator,
        records,
        budget_groups=[{"id": "team", "usd": 0.0001, "period": "total", "keys": ["test"]}],
    )
    client = sdk.openai(gateway)
    await client.chat.completions.create(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(10):
            await client.chat.completions.create(
                model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "emit 40 words"}]
            )
    assert "retry-after" not in refused.value.response.headers
    assert "group 'team'" in refused.value.message


async def test_a_budgeted_key_may_not_use_a_model_without_a_price(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    records: list[UsageRecord],
) -> None:
    gateway = _serve(
        serve_gateway, bedrock_emulator, records, key={"budget": {"usd": 1.0, "period": "month"}}
    )
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await sdk.openai(gateway).chat.completions.create(
            model="bedrock/mistral.mistral-large-2402-v1:0", messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.code == "budget_unpriced_model"
    assert len(bedrock_emulator.log) == 0

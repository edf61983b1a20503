"""Claude Code with zero model configuration: names the catalogue lacks resolve through the account."""

from __future__ import annotations

import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.control_plane import application_profile_arn
from bedrock_mw.testing.credentials import EMULATOR_ACCOUNT_ID
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import GatewayFactory, SDKClients, ServedApp

pytestmark = pytest.mark.anyio


async def test_a_name_the_catalogue_lacks_resolves_through_the_accounts_control_plane(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    # "claude-sonnet-5" is in no catalogue, and Bedrock's id for it is dated: only the account knows it.
    raw = await sdk.anthropic(gateway).messages.with_raw_response.create(
        model="claude-sonnet-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    message = await raw.parse()
    assert message.model == "claude-sonnet-5"
    assert raw.headers["x-bedrock-mw-model-id"] == "us.anthropic.claude-sonnet-5-20261015-v1:0"
    assert bedrock_emulator.log.entries[-1].model_id == "us.anthropic.claude-sonnet-5-20261015-v1:0"


async def test_claude_codes_default_model_resolves_with_nothing_configured(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    message = await sdk.anthropic(gateway).messages.create(
        model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.stop_reason == "end_turn"
    assert bedrock_emulator.log.entries[-1].model_id == "us.anthropic.claude-opus-5-5"


async def test_with_discovery_off_a_new_name_follows_the_id_convention(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["model_discovery"] = {"enabled": False}
    gateway = serve_gateway(config)
    await sdk.anthropic(gateway).messages.create(
        model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert bedrock_emulator.log.entries[-1].model_id == "us.anthropic.claude-opus-5-5"
    assert bedrock_emulator.state.counters["control_plane_requests"] == 0


async def test_an_application_profile_arn_needs_no_arn_models_entry(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    arn = application_profile_arn("us-east-1", EMULATOR_ACCOUNT_ID)
    client = sdk.anthropic(gateway)
    message = await client.messages.create(
        model=arn, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text"
    assert bedrock_emulator.log.entries[-1].model_id == arn
    # Counting needs the base model behind the ARN: the account said which it is.
    counted = await client.messages.count_tokens(model=arn, messages=[{"role": "user", "content": "hi"}])
    assert counted.input_tokens > 0
    assert bedrock_emulator.log.entries[-1].model_id == "anthropic.claude-3-5-haiku-20241022-v1:0"


async def test_models_lists_what_the_account_offers(sdk: SDKClients, gateway: ServedApp) -> None:
    listed = [m.id async for m in sdk.anthropic(gateway).models.list()]
    assert {"claude-sonnet-5", "claude-opus-5-5", "claude-haiku-4-5"} <= set(listed)
    assert "claude-3-opus" not in listed  # the catalogue knows it, this account does not offer it

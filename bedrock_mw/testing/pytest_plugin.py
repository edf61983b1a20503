"""pytest fixtures: a session-wide Bedrock emulator and a gateway config pointing at it.

Loaded through the `pytest11` entry point, so it must import nothing beyond bedrock_mw.testing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .credentials import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY
from .guardrails import GuardrailBook
from .server import BedrockEmulator


@pytest.fixture(scope="session")
def bedrock_emulator_session() -> Iterator[BedrockEmulator]:
    """One emulator on a free loopback port for the whole session."""
    with BedrockEmulator(host="127.0.0.1", port=0) as emulator:
        yield emulator


@pytest.fixture
def bedrock_emulator(bedrock_emulator_session: BedrockEmulator) -> Iterator[BedrockEmulator]:
    """The session emulator with faults, log, prompt cache and counters cleared for this test."""
    bedrock_emulator_session.reset()
    yield bedrock_emulator_session
    bedrock_emulator_session.reset()


bedrock_emulator_clean = bedrock_emulator


def emulator_gateway_config(emulator: BedrockEmulator, region: str = "us-east-1") -> dict[str, Any]:
    """A gateway config dict with one provider (the emulator) and one virtual key `vk-test`."""
    return {
        "providers": [
            {
                "id": "emulator",
                "auth": {
                    "mode": "access_keys",
                    "access_key_id": EMULATOR_ACCESS_KEY_ID,
                    "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
                },
                "region": region,
                "endpoint_url": emulator.endpoint_url,
            }
        ],
        "virtual_keys": [{"id": "test", "key": "vk-test", "providers": ["emulator"]}],
    }


@pytest.fixture
def bedrock_emulator_config(bedrock_emulator: BedrockEmulator) -> dict[str, Any]:
    """Gateway config (dict) pointing at the emulator with the built-in access key pair."""
    return emulator_gateway_config(bedrock_emulator)


@pytest.fixture
def bedrock_guardrails(bedrock_emulator: BedrockEmulator) -> GuardrailBook:
    """The emulator's guardrails for this test (emptied, and the require rule off, after it)."""
    return bedrock_emulator.state.guardrails

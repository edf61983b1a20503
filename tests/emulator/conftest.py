"""Shared fixtures: the emulator (from the shipped plugin) and real aiobotocore clients for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.config
import pytest
from aiobotocore.session import get_session

from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY, BedrockEmulator

# Imported so the fixtures exist even when the package (and its pytest11 entry point) is not installed.
from bedrock_mw.testing.pytest_plugin import (  # noqa: F401
    bedrock_emulator,
    bedrock_emulator_config,
    bedrock_emulator_session,
)

NO_RETRIES = botocore.config.Config(retries={"max_attempts": 0}, read_timeout=10, connect_timeout=5)
ClientFactory = Callable[..., Any]
# One session for all tests: it caches the loaded service model, which dominates client creation.
_SESSION = get_session()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emu(bedrock_emulator: BedrockEmulator) -> BedrockEmulator:  # noqa: F811
    return bedrock_emulator


@pytest.fixture
def make_client(emu: BedrockEmulator) -> ClientFactory:
    """`async with make_client(region=..., key=..., secret=..., token=...) as client:`."""

    def make(
        region: str = "us-east-1",
        key: str = EMULATOR_ACCESS_KEY_ID,
        secret: str = EMULATOR_SECRET_ACCESS_KEY,
        token: str | None = None,
        config: botocore.config.Config = NO_RETRIES,
        fresh_session: bool = False,
    ) -> Any:
        session = get_session() if fresh_session else _SESSION
        return session.create_client(
            "bedrock-runtime",
            region_name=region,
            endpoint_url=emu.endpoint_url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=config,
        )

    return make


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}

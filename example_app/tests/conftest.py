"""Fixtures for the example host's tests: the emulator (bedrock-mw's pytest plugin) and the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

# The plugin's fixtures, imported so they exist even when bedrock-mw is not pip-installed
# (installed, its pytest11 entry point provides them and these definitions simply shadow them).
from bedrock_mw.testing.pytest_plugin import (  # noqa: F401
    bedrock_emulator,
    bedrock_emulator_config,
    bedrock_emulator_session,
)
from example_app.app import create_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def example_app(tmp_path: Path, bedrock_emulator_config: dict[str, Any]) -> FastAPI:  # noqa: F811
    """The example host, its database in a temporary SQLite file, seeded with the emulator provider."""
    provider = bedrock_emulator_config["providers"][0]
    return create_app(default_provider=provider, db_url=f"sqlite+aiosqlite:///{tmp_path / 'example.db'}")


@pytest.fixture
async def client(example_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """httpx calling the app in-process (httpx's ASGI transport sends no lifespan events)."""
    transport = httpx.ASGITransport(app=example_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example.test") as http:
        yield http
    await example_app.state.gateway.state.gateway.aclose()
    await example_app.state.db.dispose()

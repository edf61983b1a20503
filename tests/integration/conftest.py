"""Fixtures for the integration tests: the emulator, a manual ASGI lifespan driver, a Django site."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

# example_app (and bedrock_mw, when not pip-installed) live at the repository root.
_ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("example_app") is None or importlib.util.find_spec("bedrock_mw") is None:
    sys.path.insert(0, str(_ROOT))

from bedrock_mw.dispatch import Dispatcher  # noqa: E402
from bedrock_mw.testing import BedrockEmulator  # noqa: E402

# The plugin's fixtures, so they exist even when bedrock-mw's pytest11 entry point is not installed.
from bedrock_mw.testing.pytest_plugin import (  # noqa: E402, F401
    bedrock_emulator,
    bedrock_emulator_config,
    bedrock_emulator_session,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def dispatcher() -> AsyncIterator[Dispatcher]:
    """A dispatcher with its own client pool, closed after the test."""
    dispatcher = Dispatcher()
    yield dispatcher
    await dispatcher.aclose()


class LifespanOutcome:
    """What a driven lifespan produced: the startup/shutdown message types, or the app's error."""

    def __init__(self) -> None:
        self.startup: str | None = None
        self.shutdown: str | None = None
        self.error: BaseException | None = None


@contextlib.asynccontextmanager
async def drive_lifespan(app: Any, timeout_s: float = 10.0) -> AsyncIterator[LifespanOutcome]:
    """Run ``app``'s ASGI lifespan like uvicorn's ``lifespan="auto"``: startup on enter, shutdown on exit.

    An app that raises instead of answering (e.g. Django) is treated as not supporting lifespan:
    ``outcome.startup == "unsupported"`` and no shutdown is sent, as uvicorn would.
    """
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, Any]](8)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, Any]](8)
    outcome = LifespanOutcome()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

    async def run() -> None:
        try:
            await app(scope, app_inbox.receive, app_outbox.send)
        except Exception as exc:
            outcome.error = exc
            await app_outbox.send({"type": "unsupported"})

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await to_app.send({"type": "lifespan.startup"})
        with anyio.fail_after(timeout_s):
            outcome.startup = (await from_app.receive())["type"]
        try:
            yield outcome
        finally:
            if outcome.startup == "lifespan.startup.complete":
                await to_app.send({"type": "lifespan.shutdown"})
                with anyio.fail_after(timeout_s):
                    outcome.shutdown = (await from_app.receive())["type"]
            tg.cancel_scope.cancel()


@pytest.fixture
def lifespan() -> Callable[..., contextlib.AbstractAsyncContextManager[LifespanOutcome]]:
    """``async with lifespan(app) as outcome:`` drives the app's lifespan startup and shutdown."""
    return drive_lifespan


# A real redis-server for the limiter tests; the server and its fixtures live in redis_server.py.
from redis_server import redis_prefix, redis_server, redis_url  # noqa: E402, F401

# -- Django (for test_mounting.py) --------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Django configured with example_app.django_site, its SQLite database migrated."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "example_app.django_site.settings"
    os.environ.setdefault("DJANGO_DB_PATH", str(tmp_path_factory.mktemp("django") / "db.sqlite3"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    yield


@pytest.fixture
def django_keys(
    django_site: None,
    bedrock_emulator: BedrockEmulator,  # noqa: F811
    bedrock_emulator_config: dict[str, Any],  # noqa: F811
) -> None:
    """The emulator provider and the ``vk-test`` key as Django rows (sync ORM, outside the event loop)."""
    from example_app.django_site.gatewaykeys.models import Provider, VirtualKey

    os.environ["BEDROCK_ENDPOINT_URL"] = bedrock_emulator.endpoint_url
    provider = bedrock_emulator_config["providers"][0]
    Provider.objects.update_or_create(id=provider["id"], defaults={"config": provider})
    VirtualKey.objects.update_or_create(
        id="test",
        defaults={
            "key_sha256": VirtualKey.digest("vk-test"),
            "providers": [provider["id"]],
            "disabled": False,
        },
    )

"""bedrock_mw.testing.sdk picks the HTTP library each SDK release is built on."""

from __future__ import annotations

import sys
from types import ModuleType

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bedrock_mw.testing.sdk import asgi_http_client, sdk_http_module

pytestmark = pytest.mark.anyio


def _app() -> Starlette:
    return Starlette(routes=[Route("/ping", lambda request: PlainTextResponse("pong"))])


def test_the_installed_sdks_are_built_on_httpx2() -> None:
    assert sdk_http_module("anthropic").__name__ == "httpx2"
    assert sdk_http_module("openai").__name__ == "httpx2"


async def test_an_sdk_built_on_httpx_gets_an_httpx_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # An older SDK release: its _base_client imports httpx, not httpx2.
    base_client = ModuleType("anthropic._base_client")
    base_client.httpx = httpx  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "anthropic._base_client", base_client)
    client = asgi_http_client(_app(), "http://host", sdk="anthropic")
    assert isinstance(client, httpx.AsyncClient)
    async with client:
        assert (await client.get("/ping")).text == "pong"


async def test_an_sdk_built_on_httpx2_gets_an_httpx2_client() -> None:
    import httpx2

    client = asgi_http_client(_app(), "http://host", sdk="openai")
    assert isinstance(client, httpx2.AsyncClient)
    async with client:
        assert (await client.get("/ping")).text == "pong"


def test_an_sdk_on_neither_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai._base_client", ModuleType("openai._base_client"))
    with pytest.raises(RuntimeError, match="openai"):
        sdk_http_module("openai")

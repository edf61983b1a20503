"""Point the official Anthropic/OpenAI SDKs at an ASGI app in-process, with no socket.

The SDKs take an ``http_client``. SDK releases built on ``httpx`` need an ``httpx.AsyncClient``;
releases built on ``httpx2`` (anthropic 2.x, openai 3.x) reject ``httpx`` objects and need an
``httpx2.AsyncClient``. :func:`asgi_http_client` picks the right one for the installed SDK:

    client = anthropic.AsyncAnthropic(
        base_url="http://host/llm", api_key="vk-test",
        http_client=asgi_http_client(app, "http://host", sdk="anthropic"),
    )

Note: these ASGI transports send no lifespan events (the gateway works without them) and buffer
each response, so a streamed reply arrives whole (it is still parsed as a stream of events).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Literal

__all__ = ["anthropic_client", "asgi_http_client", "openai_client", "sdk_http_module"]

Sdk = Literal["anthropic", "openai"]


def sdk_http_module(sdk: Sdk = "anthropic") -> ModuleType:
    """The HTTP library (``httpx2`` or ``httpx``) the installed ``sdk`` is built on."""
    base_client = importlib.import_module(f"{sdk}._base_client")
    for name in ("httpx2", "httpx"):
        module = getattr(base_client, name, None)
        if isinstance(module, ModuleType):
            return module
    raise RuntimeError(f"cannot tell which HTTP library {sdk} uses")


def asgi_http_client(app: Any, base_url: str = "http://testserver", *, sdk: Sdk = "anthropic") -> Any:
    """An async HTTP client (of the kind ``sdk`` accepts) that calls ``app`` in-process."""
    http = sdk_http_module(sdk)
    return http.AsyncClient(transport=http.ASGITransport(app=app), base_url=base_url)


def anthropic_client(
    app: Any, base_url: str = "http://testserver/llm", api_key: str = "vk-test", **kw: Any
) -> Any:
    """``anthropic.AsyncAnthropic`` calling ``app`` in-process; ``base_url`` includes the mount prefix."""
    import anthropic

    return anthropic.AsyncAnthropic(
        base_url=base_url, api_key=api_key, http_client=asgi_http_client(app, base_url, sdk="anthropic"), **kw
    )


def openai_client(
    app: Any, base_url: str = "http://testserver/llm/v1", api_key: str = "vk-test", **kw: Any
) -> Any:
    """``openai.AsyncOpenAI`` calling ``app`` in-process; ``base_url`` includes the prefix and ``/v1``."""
    import openai

    return openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key, http_client=asgi_http_client(app, base_url, sdk="openai"), **kw
    )

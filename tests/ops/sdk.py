"""Official SDK clients pointed at a served gateway, closed before the test's event loop is."""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from .conftest import KEY, ServedGateway


class SDKClients:
    """Makes SDK clients in a test (no retries) and closes every one at teardown."""

    def __init__(self) -> None:
        self._open: list[Any] = []

    def anthropic(self, gateway: ServedGateway, api_key: str = KEY, **kw: Any) -> anthropic.AsyncAnthropic:
        kw.setdefault("max_retries", 0)
        client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=api_key, **kw)
        self._open.append(client)
        return client

    def openai(self, gateway: ServedGateway, api_key: str = KEY, **kw: Any) -> openai.AsyncOpenAI:
        kw.setdefault("max_retries", 0)
        client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=api_key, **kw)
        self._open.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._open:
            await client.close()

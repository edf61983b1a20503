"""Closing a mounted gateway with its host: ``app.mount`` does not run a sub-app's lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette


@contextlib.asynccontextmanager
async def gateway_lifespan(*gateways: Starlette) -> AsyncIterator[None]:
    """Use inside the host's lifespan; closes each gateway's upstream clients on shutdown."""
    try:
        yield
    finally:
        for gateway in gateways:
            await gateway.state.gateway.aclose()

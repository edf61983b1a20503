"""Providers on the emulator for the transport tests: one per transport and, for the lean one, HTTP client."""

from __future__ import annotations

from typing import Any

from bedrock_mw.config import ProviderConfig
from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, EMULATOR_API_KEY, EMULATOR_SECRET_ACCESS_KEY

# A transport, and for the lean one the HTTP client it sends through.
LEAN = ["lean/aiohttp", "lean/pyreqwest"]
TRANSPORTS = [*LEAN, "aiobotocore"]
BEARER: dict[str, Any] = {"mode": "api_key", "api_key": EMULATOR_API_KEY}
SIGV4: dict[str, Any] = {
    "mode": "access_keys",
    "access_key_id": EMULATOR_ACCESS_KEY_ID,
    "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
}


def emulator_provider(
    id_: str,
    auth: dict[str, Any],
    endpoint_url: str,
    transport: str,
    *,
    bare_client: str = "auto",
    **settings: Any,
) -> ProviderConfig:
    """A provider for ``transport`` (``lean/<http client>``, ``lean`` or ``aiobotocore``); a transport
    that names no client gets ``bare_client``."""
    kind, _, client = transport.partition("/")
    return ProviderConfig.model_validate(
        {
            "id": id_,
            "auth": auth,
            "region": "us-east-1",
            "endpoint_url": endpoint_url,
            "transport": kind,
            "http_client": client or bare_client,
            **settings,
        }
    )

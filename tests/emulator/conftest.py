"""Shared fixtures: the emulator (from the shipped plugin) and real aiobotocore clients for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import botocore.config
import httpx
import pytest
from aiobotocore.session import get_session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

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


def sigv4_post(
    emu: BedrockEmulator, path: str, body: bytes, when: datetime | None = None, region: str = "us-east-1"
) -> httpx.Response:
    """POST `body` as sent, signed by botocore's SigV4Auth (at `when`, default now), over a real socket.

    For bodies botocore's serializer cannot produce (wrong JSON types), and for chosen signing times.
    """
    url = emu.endpoint_url + path
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    auth = SigV4Auth(Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY), "bedrock", region)
    if when is None:
        auth.add_auth(request)
    else:
        # add_auth() stamps "now"; sign at a chosen time instead, step by step as add_auth does.
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        auth._modify_request_before_signing(request)
        canonical = auth.canonical_request(request)
        signature = auth.signature(auth.string_to_sign(request, canonical), request)
        headers = auth.signed_headers(auth.headers_to_sign(request))
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, SignedHeaders={headers}, "
            f"Signature={signature}"
        )
    prepared = request.prepare()
    return httpx.post(prepared.url, content=body, headers=dict(prepared.headers.items()), timeout=30)

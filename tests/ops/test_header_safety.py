"""Caller-chosen text that ends up in response headers can neither split a header nor crash encoding."""

from __future__ import annotations

import httpx
import pytest

import bedrock_mw
from bedrock_mw.http import safe_headers
from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("param", "header"),
    [
        ("x\r\nSet-Cookie: a=b", "x%0D%0ASet-Cookie: a=b"),
        ("prix€", "prix%E2%82%AC"),
        ("100%", "100%"),
        ("seed", "seed"),
    ],
)
async def test_a_dropped_parameter_name_is_encoded_in_the_header(
    bedrock_emulator: BedrockEmulator, param: str, header: str
) -> None:
    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["drop_unsupported_params"] = True
    app = bedrock_mw.create_gateway(cfg)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        r = await http.post(
            "/v1/chat/completions",
            headers={"authorization": "Bearer vk-test"},
            json={"model": "amazon.nova-lite-v1:0", "messages": [{"role": "user", "content": "x"}], param: 1},
        )
    assert r.status_code == 200
    assert r.headers["x-bedrock-mw-dropped-params"] == header
    assert "set-cookie" not in r.headers
    await app.state.gateway.aclose()


def test_safe_headers_leaves_plain_values_alone() -> None:
    assert safe_headers({"a": "plain value; with=signs"}) == {"a": "plain value; with=signs"}
    assert safe_headers(None) == {}

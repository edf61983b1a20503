"""Virtual-key extraction, authentication and the allowed-models check."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from typing import Any

import pytest

from bedrock_mw.auth import authenticate, check_model_allowed, key_digest, presented_key
from bedrock_mw.config import GatewayConfig, ProviderConfig, VirtualKeyConfig
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.model_ids import parse_model_id
from bedrock_mw.stores import StaticCredentialStore

SECRET = "sk-live-0123456789abcdef"

CONFIG = GatewayConfig.model_validate(
    {
        "providers": [{"id": "p1", "region": "us-east-1", "auth": {"mode": "default_chain"}}],
        "virtual_keys": [
            {"id": "live", "key": SECRET, "providers": ["p1"]},
            {"id": "off", "key": "sk-disabled", "providers": ["p1"], "disabled": True},
        ],
    }
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": f"Bearer {SECRET}"}, SECRET),
        ({"authorization": f"bearer   {SECRET} "}, SECRET),
        ({"authorization": f"BEARER {SECRET}"}, SECRET),
        ({"x-api-key": SECRET}, SECRET),
        ({"api-key": SECRET}, SECRET),
        ({"authorization": "Bearer first", "x-api-key": "second", "api-key": "third"}, "first"),
        ({"x-api-key": "second", "api-key": "third"}, "second"),
        ({"authorization": "Basic dXNlcjpwYXNz", "x-api-key": SECRET}, SECRET),
        ({"authorization": "Bearer ", "api-key": SECRET}, SECRET),
        ({"authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"x-api-key": "  "}, None),
        ({}, None),
    ],
)
def test_presented_key_header_forms(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected


def test_key_digest_is_sha256_hex() -> None:
    assert key_digest(SECRET) == hashlib.sha256(SECRET.encode()).hexdigest()


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["authorization", "x-api-key", "api-key"])
async def test_authenticate_accepts_each_header_form(header: str) -> None:
    value = f"Bearer {SECRET}" if header == "authorization" else SECRET
    key = await authenticate({header: value}, StaticCredentialStore(CONFIG))
    assert key.id == "live"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "no API key was presented"),
        ({"x-api-key": "sk-wrong-guess"}, "invalid API key"),
        ({"authorization": "Bearer sk-disabled"}, "disabled"),
    ],
)
async def test_authenticate_rejects_with_401_never_echoing_the_key(
    headers: dict[str, str], fragment: str
) -> None:
    with pytest.raises(GatewayError) as caught:
        await authenticate(headers, StaticCredentialStore(CONFIG))
    err = caught.value
    assert err.kind is ErrorKind.AUTHENTICATION
    assert err.http_status == 401
    assert fragment in err.message
    for value in headers.values():
        assert value.removeprefix("Bearer ") not in err.message


@pytest.mark.anyio
async def test_unknown_and_missing_key_errors_name_the_accepted_headers() -> None:
    for headers in ({}, {"x-api-key": "nope"}):
        with pytest.raises(GatewayError) as caught:
            await authenticate(headers, StaticCredentialStore(CONFIG))
        assert "Authorization: Bearer" in caught.value.message
        assert "x-api-key" in caught.value.message
        assert "api-key" in caught.value.message


class WrongRowStore:
    """A buggy store that returns a key whatever digest it is asked for."""

    async def get_virtual_key(self, digest: str) -> VirtualKeyConfig | None:
        return CONFIG.virtual_keys[0]

    async def get_provider(self, provider_id: str) -> ProviderConfig | None:
        return None


@pytest.mark.anyio
async def test_authenticate_rechecks_the_digest_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with pytest.raises(GatewayError) as caught:
        await authenticate({"x-api-key": "sk-someone-else"}, WrongRowStore())
    assert caught.value.kind is ErrorKind.AUTHENTICATION
    assert calls


def _key(allowed: list[str] | None) -> VirtualKeyConfig:
    return VirtualKeyConfig.model_validate(
        {"id": "k", "key": "sk", "providers": ["p1"], "allowed_models": allowed}
    )


@pytest.mark.parametrize(
    ("allowed", "allowed_ok"),
    [
        (None, True),
        (["claude-haiku-*"], True),  # the name asked for
        (["us.anthropic.*"], True),  # the resolved id
        (["anthropic.claude-haiku-4-5-*"], True),  # the base id
        (["anthropic.claude-sonnet-*", "meta.*"], False),
        ([], False),
    ],
)
def test_check_model_allowed_matches_the_name_resolved_or_base_id(
    allowed: list[str] | None, allowed_ok: bool
) -> None:
    ref = parse_model_id("us.anthropic.claude-haiku-4-5-20251001-v1:0")
    ref = replace(ref, requested="claude-haiku-4-5", name="claude-haiku-4-5")
    if allowed_ok:
        check_model_allowed(_key(allowed), ref)
        return
    with pytest.raises(GatewayError) as caught:
        check_model_allowed(_key(allowed), ref)
    assert caught.value.kind is ErrorKind.PERMISSION
    assert caught.value.http_status == 403
    assert "claude-haiku-4-5" in caught.value.message


def test_check_model_allowed_ignores_the_raw_string_of_an_id_form() -> None:
    ref = parse_model_id("bedrock/us-east-1/anthropic.claude-haiku-4-5-20251001-v1:0")
    with pytest.raises(GatewayError):
        check_model_allowed(_key(["bedrock/*"]), ref)
    check_model_allowed(_key(["anthropic.claude-haiku-*"]), ref)


@pytest.mark.parametrize("variant", ["", ":0", ":0:200k", ":0:mm", ":2:8k", ":0:512"])
def test_bedrock_ids_keep_their_version_and_variant(variant: str) -> None:
    assert parse_model_id(f"anthropic.claude-3-haiku-20240307-v1{variant}").base_model_id.endswith(variant)


def test_a_model_name_cannot_ride_in_an_id_segment() -> None:
    with pytest.raises(GatewayError) as caught:
        parse_model_id("anthropic.claude-opus-4-1-20250805-v1:0:claude-haiku-4-5")
    assert caught.value.kind is ErrorKind.NOT_FOUND

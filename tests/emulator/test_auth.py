"""SigV4 and Bedrock API keys, verified for real, with the real client over sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from bedrock_mw.testing import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_API_KEY,
    EMULATOR_SECRET_ACCESS_KEY,
    EMULATOR_SESSION_ACCESS_KEY_ID,
    EMULATOR_SESSION_SECRET_ACCESS_KEY,
    EMULATOR_SESSION_TOKEN,
    BedrockEmulator,
    Keyring,
    key_fingerprint,
)
from bedrock_mw.testing.errors import BedrockError
from bedrock_mw.testing.sigv4 import SignedRequest, canonical_uri, verify_sigv4

from .conftest import ClientFactory, user

MODEL = "amazon.nova-lite-v1:0"
ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"
pytestmark = pytest.mark.anyio


async def error_of(call: object) -> dict:
    with pytest.raises(ClientError) as info:
        await call  # type: ignore[misc]
    return info.value.response


async def test_signed_request_is_accepted_and_logged(
    make_client: ClientFactory, emu: BedrockEmulator
) -> None:
    async with make_client() as client:
        response = await client.converse(modelId=MODEL, messages=[user("hi")])
    assert response["output"]["message"]["content"] == [{"text": "Echo: hi"}]
    entry = emu.log[-1]
    assert (entry.auth_kind, entry.access_key_id, entry.region) == (
        "sigv4",
        EMULATOR_ACCESS_KEY_ID,
        "us-east-1",
    )
    assert entry.session_token_present is False


async def test_arn_model_id_with_encoded_colons_verifies(
    make_client: ClientFactory, emu: BedrockEmulator
) -> None:
    async with make_client() as client:
        response = await client.converse(modelId=ARN, messages=[user("arn")])
    assert response["stopReason"] == "end_turn"
    assert emu.log[-1].model_id == ARN


def test_canonical_uri_double_encodes_like_botocore() -> None:
    assert canonical_uri("/model/arn%3Aaws%3Abedrock/converse") == "/model/arn%253Aaws%253Abedrock/converse"


async def test_wrong_secret_is_invalid_signature(make_client: ClientFactory) -> None:
    async with make_client(secret="not-the-secret") as client:
        response = await error_of(client.converse(modelId=MODEL, messages=[user("hi")]))
    assert response["Error"]["Code"] == "InvalidSignatureException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["ResponseMetadata"]["RequestId"]


async def test_unknown_access_key_is_unrecognized_client(make_client: ClientFactory) -> None:
    async with make_client(key="AKIAUNKNOWN000000000") as client:
        response = await error_of(client.converse(modelId=MODEL, messages=[user("hi")]))
    assert response["Error"] == {
        "Code": "UnrecognizedClientException",
        "Message": "The security token included in the request is invalid.",
    }


async def test_unsigned_request_is_missing_authentication_token(emu: BedrockEmulator) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{emu.endpoint_url}/model/{MODEL}/converse", json={"messages": [user("x")]}
        )
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].split(":")[0] == "MissingAuthenticationTokenException"
    assert "x-amzn-requestid" in response.headers


async def test_session_token_pair_needs_its_token(make_client: ClientFactory, emu: BedrockEmulator) -> None:
    async with make_client(
        key=EMULATOR_SESSION_ACCESS_KEY_ID,
        secret=EMULATOR_SESSION_SECRET_ACCESS_KEY,
        token=EMULATOR_SESSION_TOKEN,
    ) as client:
        await client.converse(modelId=MODEL, messages=[user("hi")])
    assert emu.log[-1].session_token == EMULATOR_SESSION_TOKEN
    async with make_client(
        key=EMULATOR_SESSION_ACCESS_KEY_ID, secret=EMULATOR_SESSION_SECRET_ACCESS_KEY
    ) as client:
        missing = await error_of(client.converse(modelId=MODEL, messages=[user("hi")]))
    async with make_client(
        key=EMULATOR_SESSION_ACCESS_KEY_ID, secret=EMULATOR_SESSION_SECRET_ACCESS_KEY, token="wrong"
    ) as client:
        wrong = await error_of(client.converse(modelId=MODEL, messages=[user("hi")]))
    assert missing["Error"]["Code"] == wrong["Error"]["Code"] == "UnrecognizedClientException"


async def test_region_comes_from_the_credential_scope(
    make_client: ClientFactory, emu: BedrockEmulator
) -> None:
    async with make_client(region="eu-west-1") as client:
        await client.converse(modelId="eu.anthropic.claude-sonnet-4-20250514-v1:0", messages=[user("hi")])
    assert emu.log[-1].region == "eu-west-1"


async def test_bearer_key_via_botocore_env_var(
    make_client: ClientFactory, emu: BedrockEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", EMULATOR_API_KEY)
    async with make_client(fresh_session=True) as client:
        response = await client.converse(modelId=MODEL, messages=[user("bearer")])
    assert response["output"]["message"]["content"][0]["text"] == "Echo: bearer"
    entry = emu.log[-1]
    assert (entry.auth_kind, entry.bearer_key_id) == ("bearer", key_fingerprint(EMULATOR_API_KEY))
    assert EMULATOR_API_KEY not in repr(entry)


async def test_unknown_bearer_key_is_rejected(emu: BedrockEmulator) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{emu.endpoint_url}/model/{MODEL}/converse",
            json={"messages": [user("x")]},
            headers={"Authorization": "Bearer ABSKnope"},
        )
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].startswith("UnrecognizedClientException")
    assert response.json() == {"message": "The security token included in the request is invalid."}


def _signed(when: datetime) -> SignedRequest:
    request = AWSRequest(method="POST", url="http://127.0.0.1:1/model/x/converse", data=b"{}")
    request.headers["Host"] = "127.0.0.1:1"
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    auth = SigV4Auth(Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY), "bedrock", "us-east-1")
    # add_auth() stamps "now"; sign at a chosen time instead, step by step as add_auth does.
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    scope = auth.scope(request)
    headers = auth.signed_headers(auth.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={headers}, Signature={signature}"
    )
    return SignedRequest("POST", "/model/x/converse", "", list(request.headers.items()), b"{}")


def test_signature_older_than_five_minutes_is_expired() -> None:
    now = datetime.now(UTC)
    ring = Keyring.default()
    assert verify_sigv4(_signed(now - timedelta(minutes=4)), ring, now).region == "us-east-1"
    with pytest.raises(BedrockError) as info:
        verify_sigv4(_signed(now - timedelta(minutes=6)), ring, now)
    assert info.value.error_type == "InvalidSignatureException"
    assert "Signature expired" in info.value.message


def test_default_secret_constant_is_exported() -> None:
    assert EMULATOR_SECRET_ACCESS_KEY

"""The lean SigV4 signer gives botocore's signature byte for byte, and leaves odd shapes to botocore."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st

from bedrock_mw.dispatch import _sigv4
from bedrock_mw.dispatch._wire import sign_headers
from bedrock_mw.testing.sigv4 import SignedRequest, compute_signature, parse_authorization

STAMP = "20261205T181500Z"
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
CONVERSE = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
ARN = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Aapplication-inference-profile%2Fab~c/invoke"


def botocore_headers(
    creds: Any, region: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """What botocore's SigV4Auth sends for the same request at ``STAMP`` (through its public methods)."""
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    auth = SigV4Auth(creds, "bedrock", region)
    request.context["timestamp"] = STAMP
    request.headers["X-Amz-Date"] = STAMP
    if creds.token:
        request.headers["X-Amz-Security-Token"] = creds.token
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    signed = auth.signed_headers(auth.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, SignedHeaders={signed}, Signature={signature}"
    )
    return dict(request.headers.items())


CASES: dict[str, tuple[str, dict[str, str], str | None]] = {
    "converse over https": (
        "https://bedrock-runtime.us-west-2.amazonaws.com" + CONVERSE,
        {"Content-Type": "application/json", "Accept": "application/json"},
        None,
    ),
    "emulator on a loopback port, session token": (
        "http://127.0.0.1:4010" + CONVERSE,
        {"Content-Type": "application/json"},
        "session-token",
    ),
    "default port dropped from host": (
        "https://Bedrock-Runtime.eu-west-1.amazonaws.com:443" + CONVERSE,
        {"Content-Type": "application/json"},
        None,
    ),
    "arn model id, invoke headers with spaces to trim": (
        "https://bedrock-runtime.us-east-1.amazonaws.com" + ARN,
        {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Amzn-Bedrock-Trace": "  ENABLED ",
            "X-Amzn-Bedrock-GuardrailIdentifier": "gr 1   two",
            "User-Agent": "not signed",
        },
        None,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_lean_signature_is_botocores_byte_for_byte(case: str) -> None:
    url, headers, token = CASES[case]
    creds = Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token
    ).get_frozen_credentials()
    region = url.split(".")[1] if "amazonaws" in url else "us-east-1"
    ours = _sigv4.sign(creds, region, "bedrock", url, BODY, headers, timestamp=STAMP)
    assert ours == botocore_headers(creds, region, url, BODY, headers)


@given(value=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_any_printable_header_value_signs_as_botocore_signs_it(value: str) -> None:
    creds = Credentials("AKID", "secret").get_frozen_credentials()
    url = "http://127.0.0.1:4010" + CONVERSE
    headers = {"Content-Type": "application/json", "X-Amzn-Bedrock-Request-Metadata": value}
    ours = _sigv4.sign(creds, "us-east-1", "bedrock", url, BODY, headers, timestamp=STAMP)
    assert ours == botocore_headers(creds, "us-east-1", url, BODY, headers)


ODD_SHAPES: dict[str, tuple[str, dict[str, str]]] = {
    "query string": ("https://h.example/model/m/converse?x=1", {}),
    "dot segment": ("https://h.example/model/./m/converse", {}),
    "double slash": ("https://h.example/model//converse", {}),
    "ipv6 host": ("https://[::1]:8443/model/m/converse", {}),
    "userinfo": ("https://u:p@h.example/model/m/converse", {}),
    "date header": ("https://h.example/model/m/converse", {"Date": "Sat, 05 Dec 2026 18:15:00 GMT"}),
    "host header": ("https://h.example/model/m/converse", {"Host": "other.example"}),
    "name twice in two cases": ("https://h.example/model/m/converse", {"Accept": "a", "accept": "b"}),
    "unsigned payload header": ("https://h.example/model/m/converse", {"X-Amz-Content-SHA256": "UNSIGNED"}),
}


@pytest.mark.parametrize("case", ODD_SHAPES)
def test_odd_shapes_are_left_to_botocore_and_still_verify(case: str) -> None:
    url, headers = ODD_SHAPES[case]
    creds = Credentials("AKID", "secret").get_frozen_credentials()
    assert _sigv4.sign(creds, "us-east-1", "bedrock", url, BODY, headers) is None
    signed = sign_headers(creds, "us-east-1", url, BODY, {"Content-Type": "application/json", **headers})
    assert parse_authorization(signed["Authorization"]).service == "bedrock"


def test_signing_key_is_derived_once_per_day_region_and_service() -> None:
    _sigv4.signing_key.cache_clear()
    creds = Credentials("AKID", "secret").get_frozen_credentials()
    url = "http://127.0.0.1:4010" + CONVERSE
    for _ in range(3):
        _sigv4.sign(creds, "us-east-1", "bedrock", url, BODY, {}, timestamp=STAMP)
    _sigv4.sign(creds, "us-west-2", "bedrock", url, BODY, {}, timestamp=STAMP)
    info = _sigv4.signing_key.cache_info()
    assert (info.misses, info.hits) == (2, 2)


def test_lean_signature_passes_the_independent_verifier() -> None:
    creds = Credentials("AKID", "secret").get_frozen_credentials()
    url = "https://bedrock-runtime.us-east-1.amazonaws.com" + CONVERSE
    headers = _sigv4.sign(creds, "us-east-1", "bedrock", url, BODY, {"Content-Type": "application/json"})
    assert headers is not None
    sent = [("host", "bedrock-runtime.us-east-1.amazonaws.com"), *headers.items()]
    auth = parse_authorization(headers["Authorization"])
    expected = compute_signature(
        SignedRequest("POST", CONVERSE, "", sent, BODY), auth, "secret", headers["X-Amz-Date"]
    )
    assert auth.signature == expected

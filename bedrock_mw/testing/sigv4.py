"""Sans-IO verification of AWS Signature Version 4, recomputed exactly as botocore signs.

The canonical URI is the path *as sent* (already percent-encoded) encoded once more, minus dot
segments and empty segments: botocore does `quote(remove_dot_segments(path), safe='/~')`, so a
model id sent as `arn%3Aaws...` is signed as `arn%253Aaws...`. AWS specifies this double encoding
for every service except S3, so other SDKs agree.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from .credentials import AccessKey, Keyring
from .errors import BedrockError

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNING_SERVICE = "bedrock"
_STAMP = "%Y%m%dT%H%M%SZ"
# Bedrock allows 5 minutes either way; its reply is quoted in anthropics/anthropic-sdk-go#122:
# "Signature expired: 20250130T203827Z is now earlier than 20250130T204131Z (20250130T204631Z - 5 min.)"
MAX_SKEW = timedelta(minutes=5)
_INVALID_TOKEN = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that SigV4 covers."""

    method: str
    raw_path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class SigV4Identity:
    """Who signed, and for which region."""

    key: AccessKey
    region: str
    session_token: str | None


@dataclass(frozen=True)
class Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> Authorization:
    """Parse `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise BedrockError("IncompleteSignatureException", f"Unsupported authorization type: {algorithm}")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key] = val
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in parts]
    if missing:
        raise BedrockError(
            "IncompleteSignatureException",
            f"Authorization header requires '{missing[0]}' parameter. Authorization={value}",
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise BedrockError("IncompleteSignatureException", f"Invalid credential scope: {parts['Credential']}")
    return Authorization(
        access_key_id=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=parts["SignedHeaders"].split(";"),
        signature=parts["Signature"],
    )


def remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal plus empty-segment collapsing, as botocore does."""
    if not path:
        return "/"
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def canonical_uri(raw_path: str) -> str:
    return quote(remove_dot_segments(raw_path), safe="/~")


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = sorted(tuple(pair.partition("=")[::2]) for pair in query.split("&"))
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(request: SignedRequest, signed_headers: list[str]) -> str:
    """The canonical request string (the hashed part of the string to sign)."""
    lines = []
    for name in signed_headers:
        value = request.header(name)
        if value is None:
            raise BedrockError("InvalidSignatureException", f"Signed header {name!r} is missing.")
        lines.append(f"{name}:{' '.join(value.split())}")
    payload_hash = request.header("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest()
    return "\n".join(
        [
            request.method.upper(),
            canonical_uri(request.raw_path),
            canonical_query(request.query),
            "\n".join(lines) + "\n",
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def compute_signature(request: SignedRequest, auth: Authorization, secret: str, amz_date: str) -> str:
    """The hex signature a client holding `secret` would have sent."""
    creq = canonical_request(request, auth.signed_headers)
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(secret, auth.date, auth.region, auth.service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _check_date(amz_date: str, auth: Authorization, now: datetime | None) -> None:
    try:
        when = datetime.strptime(amz_date, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        raise BedrockError("IncompleteSignatureException", f"Invalid X-Amz-Date: {amz_date}") from None
    if not amz_date.startswith(auth.date):
        raise BedrockError("InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD.")
    if now is None or abs(now - when) <= MAX_SKEW:
        return
    stamp = now.strftime(_STAMP)
    if when < now:
        edge = (now - MAX_SKEW).strftime(_STAMP)
        message = f"Signature expired: {amz_date} is now earlier than {edge} ({stamp} - 5 min.)"
    else:
        edge = (now + MAX_SKEW).strftime(_STAMP)
        message = f"Signature not yet current: {amz_date} is still later than {edge} ({stamp} + 5 min.)"
    raise BedrockError("InvalidSignatureException", message)


def verify_sigv4(
    request: SignedRequest, keyring: Keyring, now: datetime | None, service: str = SIGNING_SERVICE
) -> SigV4Identity:
    """Check a SigV4-signed request (`now` None skips the clock-skew check); raise as AWS would."""
    auth = parse_authorization(request.header("authorization") or "")
    amz_date = request.header("x-amz-date")
    if amz_date is None:
        raise BedrockError(
            "IncompleteSignatureException", "Authorization header requires existence of X-Amz-Date header."
        )
    if "host" not in auth.signed_headers:
        raise BedrockError("InvalidSignatureException", "'Host' must be a signed header.")
    key = keyring.access_keys.get(auth.access_key_id)
    token = request.header("x-amz-security-token")
    if key is None or token != key.session_token:
        raise BedrockError("UnrecognizedClientException", _INVALID_TOKEN)
    if auth.service != service:
        raise BedrockError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    _check_date(amz_date, auth, now)
    expected = compute_signature(request, auth, key.secret_access_key, amz_date)
    if not hmac.compare_digest(expected, auth.signature):
        raise BedrockError("InvalidSignatureException", _MISMATCH)
    return SigV4Identity(key=key, region=auth.region, session_token=token)

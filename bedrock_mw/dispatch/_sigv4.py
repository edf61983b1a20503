"""SigV4 for the gateway's own Bedrock calls, without botocore's per-request overhead.

botocore's ``SigV4Auth.add_auth`` builds an ``AWSRequest`` (headers in an ``email.message``), splits
the URL half a dozen times and derives the signing key with four HMACs, on every call: most of the
gateway's signing cost, which the round-2 profile put at about a tenth of a request's CPU. Our calls
have one shape (a POST with no query string, headers we chose), so this module signs that shape
directly, with the signing key derived once per (secret, day, region, service). Anything outside
that shape (a query string, dot segments, a header botocore treats specially, a name given twice in
different case, an IPv6 or userinfo host) returns ``None`` and the caller signs with botocore.

The result is byte-for-byte botocore's (a test signs the same request both ways, and the emulator's
independent verifier checks every call the suite makes).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import SIGNED_HEADERS_BLACKLIST

# Headers botocore's signer adds, removes or reads itself: a request carrying one is left to it.
_SPECIAL = frozenset(
    {"authorization", "date", "host", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)
_UNSIGNED = frozenset(SIGNED_HEADERS_BLACKLIST)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=64)
def signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
    """SigV4's derived key: valid for one day, region and service, so computed once for each."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), day.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


@lru_cache(maxsize=256)
def _target(url: str) -> tuple[str, str] | None:
    """``(host, canonical URI)`` for a URL of the common shape, else None."""
    parts = urlsplit(url)
    path, netloc = parts.path, parts.netloc
    if (
        parts.query
        or parts.fragment
        or not path.startswith("/")
        or "//" in path
        or "/." in path
        or "@" in netloc
        or "[" in netloc
        or not parts.hostname
    ):
        return None
    host = parts.hostname
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host, quote(path, safe="/~")


def sign(
    credentials: Any,
    region: str,
    service: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timestamp: str | None = None,
) -> dict[str, str] | None:
    """``headers`` plus ``X-Amz-Date`` (and the session token) and ``Authorization``, or None.

    ``credentials`` are botocore's frozen credentials (``access_key``, ``secret_key``, ``token``);
    ``timestamp`` (``YYYYMMDDTHHMMSSZ``, default now) is there for tests.
    """
    target = _target(url)
    if target is None:
        return None
    signed: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in _SPECIAL or lower in signed:
            return None
        if lower not in _UNSIGNED:
            signed[lower] = " ".join(value.split())
    host, uri = target
    stamp = timestamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = dict(headers)
    signed["host"] = host
    signed["x-amz-date"] = out["X-Amz-Date"] = stamp
    token = credentials.token
    if token:
        signed["x-amz-security-token"] = out["X-Amz-Security-Token"] = token
    names = sorted(signed)
    signed_names = ";".join(names)
    canonical = "\n".join(
        (
            "POST",
            uri,
            "",
            "".join(f"{n}:{signed[n]}\n" for n in names),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        )
    )
    day = stamp[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = signing_key(credentials.secret_key, day, region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return out

"""Virtual-key authentication and model permission checks.

The presented secret is hashed at once and only its SHA-256 digest travels further; stores compare
digests in constant time. No error message ever contains the presented key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from .config import VirtualKeyConfig
from .errors import ErrorKind, GatewayError
from .routing.access import check_model_allowed
from .stores import CredentialStore

__all__ = ["authenticate", "check_model_allowed", "key_digest", "presented_key"]

_ACCEPTED = "send it as 'Authorization: Bearer <key>', 'x-api-key: <key>' or 'api-key: <key>'"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``authorization: Bearer``, ``x-api-key`` or ``api-key``, first found wins."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            return token
    for name in ("x-api-key", "api-key"):
        value = headers.get(name, "").strip()
        if value:
            return value
    return None


def key_digest(secret: str) -> str:
    """The SHA-256 hex digest a key is stored and looked up as."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def authenticate(headers: Mapping[str, str], store: CredentialStore) -> VirtualKeyConfig:
    """The virtual key the request presents; a 401 ``GatewayError`` when missing, unknown or disabled."""
    secret = presented_key(headers)
    if secret is None:
        raise GatewayError(ErrorKind.AUTHENTICATION, f"no API key was presented; {_ACCEPTED}")
    digest = key_digest(secret)
    key = await store.get_virtual_key(digest)
    # Re-checked here so a store that returns the wrong row cannot let a request through.
    if key is None or not hmac.compare_digest(key.digest.encode(), digest.encode()):
        raise GatewayError(ErrorKind.AUTHENTICATION, f"invalid API key; {_ACCEPTED}")
    if key.disabled:
        raise GatewayError(ErrorKind.AUTHENTICATION, "this API key is disabled")
    return key

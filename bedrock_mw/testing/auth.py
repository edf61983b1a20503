"""Who is calling: SigV4 or a Bedrock API key (bearer), and the region the call is for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .credentials import Keyring, key_fingerprint
from .errors import BedrockError
from .sigv4 import SignedRequest, verify_sigv4

AuthKind = Literal["sigv4", "bearer"]
# Bearer calls carry no region; a real endpoint implies one, so honour a regional host name.
_REGIONAL_HOST = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.")


@dataclass(frozen=True)
class Caller:
    """An authenticated caller."""

    kind: AuthKind
    region: str
    account_id: str
    access_key_id: str | None = None
    session_token: str | None = None
    bearer_fingerprint: str | None = None

    @property
    def principal(self) -> str:
        """A stable id of the credential, used to scope the prompt cache."""
        return self.access_key_id or self.bearer_fingerprint or "anonymous"


def _bearer_region(request: SignedRequest, default_region: str) -> str:
    match = _REGIONAL_HOST.search(request.header("host") or "")
    return match.group(1) if match else default_region


def authenticate(
    request: SignedRequest, keyring: Keyring, now: datetime | None, default_region: str
) -> Caller:
    """Verify the request's credentials; raise the 403 Bedrock would answer with."""
    authorization = request.header("authorization")
    if not authorization:
        raise BedrockError("MissingAuthenticationTokenException", "Missing Authentication Token")
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        api_key = keyring.api_keys.get(credential.strip())
        if api_key is None:
            raise BedrockError(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        return Caller(
            kind="bearer",
            region=_bearer_region(request, default_region),
            account_id=api_key.account_id,
            bearer_fingerprint=key_fingerprint(api_key.key),
        )
    identity = verify_sigv4(request, keyring, now)
    return Caller(
        kind="sigv4",
        region=identity.region,
        account_id=identity.key.account_id,
        access_key_id=identity.key.access_key_id,
        session_token=identity.session_token,
    )

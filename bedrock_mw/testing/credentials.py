"""Credentials the emulator knows, and the built-in test pairs it knows by default."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

EMULATOR_ACCOUNT_ID = "123456789012"
EMULATOR_ACCESS_KEY_ID = "AKIAEMULATOR000000001"
EMULATOR_SECRET_ACCESS_KEY = "emulator/secret/key/0000000000000000000001"
# A temporary pair: requests signed with it must carry its session token.
EMULATOR_SESSION_ACCESS_KEY_ID = "ASIAEMULATOR000000002"
EMULATOR_SESSION_SECRET_ACCESS_KEY = "emulator/secret/key/0000000000000000000002"
EMULATOR_SESSION_TOKEN = "IQoJb3JpZ2luX2VjEMULATORSESSIONTOKEN0000000000000000000000002"
# Shaped like a real Bedrock API key ("ABSK" + base64 of "BedrockAPIKey-...").
EMULATOR_API_KEY = "ABSKQmVkcm9ja0FQSUtleS1lbXVsYXRvcjplbXVsYXRvci1zZWNyZXQtMDAwMDE="


@dataclass(frozen=True)
class AccessKey:
    """An IAM access key pair, optionally temporary (with a session token)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    account_id: str = EMULATOR_ACCOUNT_ID


@dataclass(frozen=True)
class ApiKey:
    """A Bedrock API key used as `Authorization: Bearer <key>`."""

    key: str
    account_id: str = EMULATOR_ACCOUNT_ID

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key)


def key_fingerprint(secret: str) -> str:
    """A short, stable, non-reversible id for a secret so logs never hold the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def default_access_keys() -> list[AccessKey]:
    """The built-in test pairs."""
    return [
        AccessKey(EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY),
        AccessKey(EMULATOR_SESSION_ACCESS_KEY_ID, EMULATOR_SESSION_SECRET_ACCESS_KEY, EMULATOR_SESSION_TOKEN),
    ]


@dataclass
class Keyring:
    """The access keys and API keys the emulator accepts; mutable so tests can add their own."""

    access_keys: dict[str, AccessKey] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Keyring:
        ring = cls()
        for pair in default_access_keys():
            ring.add_access_key(pair)
        ring.add_api_key(ApiKey(EMULATOR_API_KEY))
        return ring

    def add_access_key(self, key: AccessKey) -> None:
        self.access_keys[key.access_key_id] = key

    def add_api_key(self, key: ApiKey) -> None:
        self.api_keys[key.key] = key

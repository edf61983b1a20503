"""Sealed reasoning: Claude's thinking and its signature carried by the client, unreadable and unforgeable.

A Responses ``reasoning`` item with ``encrypted_content`` lets a stateless client (Codex with
``store: false``) hand the model's thinking back on the next turn. The gateway seals the Converse
reasoning blocks with AES-GCM under a key from the config, so a client can neither read the thinking
(beyond the summary it was shown) nor forge a block Bedrock would then trust.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ...errors import invalid

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockOutputTypeDef,
        ContentBlockTypeDef,
        ReasoningTextBlockTypeDef,
    )

_PREFIX = "bmw1."
_AAD = b"bedrock-mw/responses/reasoning/v1"
_NONCE_BYTES = 12


class _Portable(TypedDict, total=False):
    """One reasoning block as sealed: thinking text and signature, or redacted bytes in base64."""

    text: str
    signature: str | None
    redacted: str


class ReasoningSeal:
    """Seals Converse ``reasoningContent`` blocks into a string and opens strings it sealed."""

    def __init__(self, secret: str | bytes | None = None) -> None:
        if secret is None:
            # No configured secret: a per-process key (sealed items do not survive a restart).
            key = os.urandom(32)
        else:
            raw = secret.encode() if isinstance(secret, str) else secret
            key = hashlib.sha256(b"bedrock-mw reasoning seal\0" + raw).digest()
        self._aead = AESGCM(key)

    def seal(self, blocks: Sequence[ContentBlockOutputTypeDef]) -> str:
        """The sealed form of ``reasoningContent`` blocks (bytes of redacted ones included)."""
        plain = orjson.dumps([_portable(b) for b in blocks])
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plain, _AAD)
        return _PREFIX + base64.urlsafe_b64encode(sealed).decode()

    def open(self, token: object, param: str) -> list[ContentBlockTypeDef]:
        """The blocks a sealed string holds, or a 400 when this gateway did not seal it."""
        if not isinstance(token, str) or not token.startswith(_PREFIX):
            raise invalid(f"{param} was not issued by this gateway", param=param)
        try:
            sealed = base64.urlsafe_b64decode(token[len(_PREFIX) :])
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _AAD)
        except (binascii.Error, ValueError, InvalidTag):
            raise invalid(
                f"{param} was not issued by this gateway (or by one with a different reasoning key)",
                param=param,
            ) from None
        return [_restored(b) for b in orjson.loads(plain)]


def _portable(block: ContentBlockOutputTypeDef) -> _Portable:
    reasoning = block["reasoningContent"]
    if "redactedContent" in reasoning:
        return {"redacted": base64.b64encode(reasoning["redactedContent"]).decode()}
    text = reasoning.get("reasoningText")
    if not text:
        return {"text": "", "signature": None}
    return {"text": text.get("text", ""), "signature": text.get("signature")}


def _restored(item: _Portable) -> ContentBlockTypeDef:
    if "redacted" in item:
        return {"reasoningContent": {"redactedContent": base64.b64decode(item["redacted"])}}
    text: ReasoningTextBlockTypeDef = {"text": item["text"]}
    if signature := item.get("signature"):
        text["signature"] = signature
    return {"reasoningContent": {"reasoningText": text}}

"""STS ``AssumeRole`` on the emulator's root path, so ``assume_role`` providers run on the real wire.

botocore speaks STS's query protocol: a SigV4-signed (service ``sts``) form POST to ``/`` with
``Action=AssumeRole``, answered in XML. The emulator issues a fresh temporary key pair for the
role, adds it to its keyring (so Bedrock calls signed with it are accepted) and records who
assumed what.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from .credentials import AccessKey, Keyring
from .errors import BedrockError
from .sigv4 import SignedRequest, verify_sigv4

_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass(frozen=True)
class AssumedRole:
    """One AssumeRole call as the emulator saw it (no secrets)."""

    role_arn: str
    session_name: str
    external_id: str | None
    caller_access_key_id: str
    issued_access_key_id: str


def is_sts_request(method: str, path: str, headers: list[tuple[str, str]]) -> bool:
    """A query-protocol call to STS: a form POST to the root path."""
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    return method == "POST" and path == "/" and content_type.startswith("application/x-www-form-urlencoded")


def _error(code: str, message: str, status: int = 400) -> bytes:
    return (
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{secrets.token_hex(8)}</RequestId>"
        "</ErrorResponse>"
    ).encode()


def assume_role(
    request: SignedRequest, keyring: Keyring, now: datetime | None
) -> tuple[int, bytes, AssumedRole | None]:
    """Answer an STS call: (status, XML body, the assumed role when it succeeded)."""
    try:
        identity = verify_sigv4(request, keyring, now, service="sts")
    except BedrockError as err:
        code = (
            "InvalidClientTokenId"
            if err.error_type == "UnrecognizedClientException"
            else "SignatureDoesNotMatch"
        )
        return 403, _error(code, err.message, 403), None
    form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8")).items()}
    if form.get("Action") != "AssumeRole":
        return 400, _error("InvalidAction", f"Could not find operation {form.get('Action')}"), None
    role_arn, session_name = form.get("RoleArn", ""), form.get("RoleSessionName", "")
    if not role_arn.startswith("arn:aws:iam::") or ":role/" not in role_arn or not session_name:
        return 400, _error("ValidationError", "RoleArn and RoleSessionName are required"), None
    duration = int(form.get("DurationSeconds", "3600"))
    issued = AccessKey(
        access_key_id="ASIAEMU" + secrets.token_hex(7).upper(),
        secret_access_key=secrets.token_urlsafe(30),
        session_token=secrets.token_urlsafe(48),
        account_id=role_arn.split(":")[4],
    )
    keyring.add_access_key(issued)
    expires = (datetime.now(UTC) + timedelta(seconds=duration)).strftime("%Y-%m-%dT%H:%M:%SZ")
    role_name = role_arn.rsplit("/", 1)[-1]
    body = (
        f'<AssumeRoleResponse xmlns="{_NS}"><AssumeRoleResult>'
        f"<Credentials><AccessKeyId>{issued.access_key_id}</AccessKeyId>"
        f"<SecretAccessKey>{escape(issued.secret_access_key)}</SecretAccessKey>"
        f"<SessionToken>{escape(issued.session_token or '')}</SessionToken>"
        f"<Expiration>{expires}</Expiration></Credentials>"
        f"<AssumedRoleUser><AssumedRoleId>AROAEMULATOR:{escape(session_name)}</AssumedRoleId>"
        f"<Arn>arn:aws:sts::{issued.account_id}:assumed-role/{escape(role_name)}/{escape(session_name)}</Arn>"
        f"</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>{secrets.token_hex(8)}</RequestId>"
        "</ResponseMetadata></AssumeRoleResponse>"
    ).encode()
    assumed = AssumedRole(
        role_arn, session_name, form.get("ExternalId"), identity.key.access_key_id, issued.access_key_id
    )
    return 200, body, assumed

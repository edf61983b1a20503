"""Who may call Bedrock's API through the gateway: a virtual key used as a Bedrock API key.

AWS SDKs send a Bedrock API key as ``Authorization: Bearer <key>`` (boto3 reads it from
``AWS_BEARER_TOKEN_BEDROCK``); ``x-api-key`` works too. A request signed with SigV4 carries AWS
credentials the gateway has no use for, so it is refused with a message saying what to send instead.
"""

from __future__ import annotations

from ..config import VirtualKeyConfig
from ..errors import ErrorKind, GatewayError
from ..gateway import Gateway, RequestContext

USE_A_KEY = (
    "This gateway takes a gateway virtual key as a Bedrock API key, not AWS credentials: set "
    "AWS_BEARER_TOKEN_BEDROCK=<your gateway key> (boto3, the AWS SDKs, Claude Code) or send "
    "'Authorization: Bearer <key>' or 'x-api-key: <key>'."
)


def is_sigv4(authorization: str | None, query: bytes) -> bool:
    """Whether the request is signed with AWS Signature Version 4 (header or presigned query)."""
    if authorization is not None and authorization.lstrip().upper().startswith("AWS4-"):
        return True
    return b"-signature=" in query.lower()


async def authenticate_bedrock_caller(gw: Gateway, ctx: RequestContext) -> VirtualKeyConfig:
    """The caller's virtual key; Bedrock's own 403 (with what to do) for SigV4 or a bad key."""
    request = ctx.request
    if is_sigv4(request.headers.get("authorization"), request.scope.get("query_string", b"")):
        raise GatewayError(ErrorKind.AUTHENTICATION, f"The request is signed with AWS SigV4. {USE_A_KEY}")
    try:
        return await gw.authenticate(ctx)
    except GatewayError as err:
        if err.kind is ErrorKind.AUTHENTICATION:
            err.message = f"{err.message}. {USE_A_KEY}"
        raise

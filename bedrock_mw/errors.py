"""One error type for the whole gateway, rendered in each client dialect in exactly one place.

Every failure a caller can see is a :class:`GatewayError`. Layers raise it with a neutral
:class:`ErrorKind`; only this module knows how Anthropic and OpenAI spell each kind, which status
goes with it, and how an error looks inside a stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import orjson

Dialect = Literal["anthropic", "openai", "bedrock"]


class ErrorKind(StrEnum):
    """What went wrong, independent of the caller's dialect."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT = "rate_limit"
    API_ERROR = "api_error"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    BAD_GATEWAY = "bad_gateway"


# kind -> (status, anthropic error type, openai error type, openai code)
_TABLE: dict[ErrorKind, tuple[int, str, str, str | None]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error", "invalid_request_error", None),
    ErrorKind.AUTHENTICATION: (401, "authentication_error", "invalid_request_error", "invalid_api_key"),
    ErrorKind.PERMISSION: (403, "permission_error", "permission_error", "permission_denied"),
    ErrorKind.NOT_FOUND: (404, "not_found_error", "invalid_request_error", "model_not_found"),
    ErrorKind.REQUEST_TOO_LARGE: (413, "request_too_large", "invalid_request_error", "request_too_large"),
    ErrorKind.RATE_LIMIT: (429, "rate_limit_error", "rate_limit_error", "rate_limit_exceeded"),
    ErrorKind.API_ERROR: (500, "api_error", "server_error", None),
    ErrorKind.OVERLOADED: (529, "overloaded_error", "server_error", "overloaded"),
    ErrorKind.TIMEOUT: (504, "timeout_error", "timeout_error", "timeout"),
    ErrorKind.BAD_GATEWAY: (502, "api_error", "server_error", "bad_gateway"),
}


# kind -> Bedrock Runtime's own error type for it (its status is in _BEDROCK_STATUS): what a Bedrock
# SDK raises as ``ClientError`` when the gateway itself refuses a pass-through call.
_BEDROCK_TYPES: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "ValidationException",
    ErrorKind.AUTHENTICATION: "UnrecognizedClientException",
    ErrorKind.PERMISSION: "AccessDeniedException",
    ErrorKind.NOT_FOUND: "ResourceNotFoundException",
    ErrorKind.REQUEST_TOO_LARGE: "ValidationException",
    ErrorKind.RATE_LIMIT: "ThrottlingException",
    ErrorKind.API_ERROR: "InternalServerException",
    ErrorKind.OVERLOADED: "ServiceUnavailableException",
    ErrorKind.TIMEOUT: "ModelTimeoutException",
    ErrorKind.BAD_GATEWAY: "InternalServerException",
}

# Bedrock Runtime's error types and their HTTP statuses (botocore's ``bedrock-runtime`` model), plus
# the common AWS authentication error. An upstream error of one of these types keeps it.
_BEDROCK_STATUS: dict[str, int] = {
    "AccessDeniedException": 403,
    "ConflictException": 400,
    "InternalServerException": 500,
    "ModelErrorException": 424,
    "ModelNotReadyException": 429,
    "ModelStreamErrorException": 424,
    "ModelTimeoutException": 408,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 400,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
    "UnknownOperationException": 404,
    "UnrecognizedClientException": 403,
    "ValidationException": 400,
}


def bedrock_status(error_type: str) -> int:
    """The HTTP status Bedrock gives an error of this type (500 for one its model does not define)."""
    return _BEDROCK_STATUS.get(error_type, 500)


@dataclass(eq=False)
class GatewayError(Exception):
    """A failure to report to the caller. ``message`` must never contain a secret."""

    kind: ErrorKind
    message: str
    param: str | None = None
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"

    @property
    def http_status(self) -> int:
        """The HTTP status to answer with."""
        return self.status if self.status is not None else _TABLE[self.kind][0]

    def status_for(self, dialect: Dialect) -> int:
        """The status in ``dialect``: Anthropic's overloaded is 529, OpenAI's clients expect 503."""
        if dialect == "bedrock":
            if self.kind is ErrorKind.REQUEST_TOO_LARGE:
                return 413
            return _BEDROCK_STATUS[self.bedrock_type]
        if self.status is None and self.kind is ErrorKind.OVERLOADED and dialect == "openai":
            return 503
        return self.http_status

    @property
    def bedrock_type(self) -> str:
        """The Bedrock error type: Bedrock's own when it raised one, else the nearest for the kind."""
        # A provider's own credentials refused upstream are the operator's problem, not the caller's key.
        if self.code in _BEDROCK_STATUS and self.code != "UnrecognizedClientException":
            return self.code
        return _BEDROCK_TYPES[self.kind]

    def response_headers(self) -> dict[str, str]:
        """Extra headers for the error response (``retry-after`` and any set by the raiser)."""
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["retry-after"] = str(max(1, round(self.retry_after)))
        return headers


def invalid(message: str, param: str | None = None) -> GatewayError:
    """Shorthand for a 400 naming the offending field."""
    return GatewayError(ErrorKind.INVALID_REQUEST, message, param=param)


def anthropic_error_body(err: GatewayError) -> dict[str, object]:
    """The error as Anthropic's API spells it."""
    return {"type": "error", "error": {"type": _TABLE[err.kind][1], "message": err.message}}


def openai_error_body(err: GatewayError) -> dict[str, object]:
    """The error as OpenAI's API spells it."""
    _, _, etype, code = _TABLE[err.kind]
    return {
        "error": {
            "message": err.message,
            "type": etype,
            "param": err.param,
            "code": err.code if err.code is not None else code,
        }
    }


def error_body(err: GatewayError, dialect: Dialect) -> bytes:
    """The JSON body of an error response in ``dialect``."""
    if dialect == "bedrock":
        return orjson.dumps({"message": err.message})
    if dialect == "anthropic":
        return orjson.dumps(anthropic_error_body(err))
    return orjson.dumps(openai_error_body(err))


def anthropic_error_event(err: GatewayError) -> bytes:
    """An Anthropic SSE ``error`` event: how a stream that already started ends in failure."""
    return b"event: error\ndata: " + orjson.dumps(anthropic_error_body(err)) + b"\n\n"


def openai_error_event(err: GatewayError) -> bytes:
    """An OpenAI SSE error frame: a ``data:`` line holding ``{"error": ...}`` (never a silent [DONE])."""
    return b"data: " + orjson.dumps(openai_error_body(err)) + b"\n\n"

"""Bedrock-shaped errors: one exception type, rendered on the wire in exactly one place."""

from __future__ import annotations

import orjson

# The suffix real Bedrock appends to x-amzn-ErrorType; botocore keeps only the part before ':'.
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

ERROR_STATUS: dict[str, int] = {
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "ModelTimeoutException": 408,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
    "ValidationException": 400,
    "ModelNotReadyException": 429,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
    "ServiceQuotaExceededException": 400,
    "MissingAuthenticationTokenException": 403,
    # AWS's common-errors table: IncompleteSignature is a 400 (a malformed header, not a refusal).
    "IncompleteSignatureException": 400,
    "InvalidSignatureException": 403,
    "UnrecognizedClientException": 403,
    "SerializationException": 400,
    "UnknownOperationException": 404,
}

DEFAULT_MESSAGES: dict[str, str] = {
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "ModelTimeoutException": "Model has timed out in processing the request. Try your request again.",
    "InternalServerException": "The system encountered an unexpected error during processing. "
    "Try your request again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "ValidationException": "The request failed validation.",
    "ModelNotReadyException": "Model is not ready to serve inference requests. "
    "The AWS SDK will automatically retry the operation.",
    "ModelErrorException": "The model returned an error.",
    "ModelStreamErrorException": "The model stream returned an error.",
    "ServiceQuotaExceededException": "Your request exceeds the service quota for your account.",
}

_STATUS_TYPES: dict[int, str] = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}

INVALID_MODEL_MESSAGE = "The provided model identifier is invalid."


def error_type_for_status(status: int) -> str:
    """The Bedrock error type that a bare HTTP status most plausibly means."""
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "InternalServerException" if status >= 500 else "ValidationException"


class BedrockError(Exception):
    """An error the emulator answers with, exactly as Bedrock shapes it."""

    def __init__(
        self,
        error_type: str,
        message: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.error_type = error_type
        self.message = message if message is not None else DEFAULT_MESSAGES.get(error_type, error_type)
        self.status = status if status is not None else ERROR_STATUS.get(error_type, 400)
        self.headers = headers or {}
        super().__init__(f"{self.status} {error_type}: {self.message}")

    def render(self, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, raw headers and body of the HTTP error response."""
        body = orjson.dumps({"message": self.message})
        headers = [
            (b"content-type", b"application/json"),
            (b"x-amzn-requestid", request_id.encode()),
            (b"x-amzn-errortype", (self.error_type + ERROR_TYPE_SUFFIX).encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        headers.extend((k.lower().encode(), v.encode()) for k, v in self.headers.items())
        return self.status, headers, body


def validation_error(message: str) -> BedrockError:
    """A 400 ValidationException with Bedrock's wording."""
    return BedrockError("ValidationException", message)


def stream_exception_name(error_type: str) -> str:
    """The lowerCamel member name an error type has inside an event-stream union."""
    return error_type[:1].lower() + error_type[1:]

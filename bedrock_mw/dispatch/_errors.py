"""Upstream failures: the one place where botocore's and the HTTP clients' exceptions become UpstreamError."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    TokenRetrievalError,
)

from ..config import ProviderConfig
from ._http import CLIENT_ERRORS, CONNECT_TIMEOUTS, describe


@dataclass(eq=False)
class UpstreamError(Exception):
    """A failed Bedrock call, described without secrets.

    ``code`` is Bedrock's error type (``ThrottlingException``...) or one of the gateway's own for
    failures that never reached Bedrock: ``ConnectionError``, ``Timeout``, ``CredentialsError``.
    """

    code: str
    message: str
    status: int
    operation: str = ""
    provider_id: str = ""
    region: str = ""
    model_id: str = ""
    request_id: str | None = None
    retry_after: float | None = None
    mid_stream: bool = False

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")


class Target(Protocol):
    """Where one attempt goes: a provider, the region to call and the model id to send.

    ``routing.Attempt`` is one; the dispatcher needs nothing else from the routing plan.
    """

    @property
    def provider(self) -> ProviderConfig: ...
    @property
    def region(self) -> str: ...
    @property
    def model_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Destination:
    """A concrete :class:`Target`, for calls made outside a routing plan (warm-up, CountTokens)."""

    provider: ProviderConfig
    region: str
    model_id: str = ""


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


@contextlib.contextmanager
def _upstream_errors(operation: str, target: Target, *, mid_stream: bool = False) -> Iterator[None]:
    """Map botocore's (and timeout) exceptions to :class:`UpstreamError`; the one place that does."""
    where = {
        "operation": operation,
        "provider_id": target.provider.id,
        "region": target.region,
        "model_id": target.model_id,
        "mid_stream": mid_stream,
    }
    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        headers = {k.lower(): v for k, v in (meta.get("HTTPHeaders") or {}).items()}
        status = int(meta.get("HTTPStatusCode") or _STREAM_STATUS.get(str(err.get("Code")), 500))
        code = str(err.get("Code") or "UnknownError")
        raise UpstreamError(
            # Exception events inside a stream are camelCase; name them as Bedrock does elsewhere.
            code=code[:1].upper() + code[1:],
            message=str(err.get("Message") or exc),
            status=status,
            request_id=meta.get("RequestId") or headers.get("x-amzn-requestid"),
            retry_after=_retry_after(headers),
            **where,  # type: ignore[arg-type]
        ) from None
    except (
        NoCredentialsError,
        PartialCredentialsError,
        CredentialRetrievalError,
        TokenRetrievalError,
    ) as exc:
        raise UpstreamError("CredentialsError", _safe(exc), 401, **where) from None  # type: ignore[arg-type]
    except (ConnectTimeoutError, EndpointConnectionError) as exc:
        raise UpstreamError("ConnectionError", _safe(exc), 502, **where) from None  # type: ignore[arg-type]
    except CONNECT_TIMEOUTS as exc:
        # (The HTTP clients' connect timeouts are TimeoutErrors too: a connection failure, not a slow answer.)
        raise UpstreamError("ConnectionError", describe(exc), 502, **where) from None  # type: ignore[arg-type]
    except (ReadTimeoutError, TimeoutError) as exc:
        raise UpstreamError("Timeout", _safe(exc) or "no answer in time", 504, **where) from None  # type: ignore[arg-type]
    except BotoCoreError as exc:
        raise UpstreamError("ConnectionError", _safe(exc), 502, **where) from None  # type: ignore[arg-type]
    except _CONNECTION_FAILURES as exc:
        # The HTTP clients' connection errors (OSErrors, or their own for a refused or dropped
        # connection) carry the URL, host and port, never credentials (headers are not in them).
        raise UpstreamError("ConnectionError", describe(exc), 502, **where) from None  # type: ignore[arg-type]


_CONNECTION_FAILURES: tuple[type[BaseException], ...] = (OSError, *CLIENT_ERRORS)

# Exception events inside a stream carry no HTTP status of their own: use the one Bedrock gives the
# same error outside a stream.
_STREAM_STATUS = {
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "validationException": 400,
    "modelTimeoutException": 408,
}


def _safe(exc: BaseException) -> str:
    # botocore's messages name endpoints and providers, never key material; keep them short anyway.
    return str(exc)[:500]

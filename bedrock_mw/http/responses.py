"""JSON and error responses, with every header value made safe to send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from ..errors import Dialect, GatewayError, error_body

# Header values can carry caller-chosen text (names of dropped parameters and betas): anything but
# printable ASCII is percent-encoded, so no value can split a header or fail latin-1 encoding.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F))


def safe_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers with every value made safe to send (see ``_HEADER_SAFE``)."""
    if not headers:
        return {}
    return {
        name: value if value.isascii() and value.isprintable() else quote(value, safe=_HEADER_SAFE)
        for name, value in headers.items()
    }


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(payload), status, safe_headers(headers), media_type="application/json")


def error_response(err: GatewayError, dialect: Dialect, headers: Mapping[str, str] | None = None) -> Response:
    """An error in the caller's dialect, with its status and headers (``retry-after``, request ids)."""
    merged = dict(headers or {})
    merged.update(err.response_headers())
    if dialect == "bedrock":  # the header botocore reads the error type from
        merged["x-amzn-errortype"] = err.bedrock_type
    return Response(
        error_body(err, dialect), err.status_for(dialect), safe_headers(merged), media_type="application/json"
    )

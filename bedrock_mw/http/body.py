"""The request body: read with a size limit, parsed as a JSON object (one parse) or kept as bytes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from ..errors import ErrorKind, GatewayError


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body parsed as JSON; 413 past ``max_bytes`` (checked before and while reading)."""
    raw = await read_bytes(request, max_bytes)
    if not raw.strip():
        raise GatewayError(ErrorKind.INVALID_REQUEST, "request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(ErrorKind.INVALID_REQUEST, f"request body is not valid JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.INVALID_REQUEST, "request body must be a JSON object")
    return body


async def read_bytes(request: Request, max_bytes: int) -> bytes:
    """The request body as bytes, unparsed; 413 past ``max_bytes`` (checked before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise GatewayError(
            ErrorKind.REQUEST_TOO_LARGE, f"request body exceeds the limit of {max_bytes} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise GatewayError(
                ErrorKind.REQUEST_TOO_LARGE, f"request body exceeds the limit of {max_bytes} bytes"
            )
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)

"""The request body: read with a size limit, parsed as a JSON object (one parse) or kept as bytes."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from ..errors import ErrorKind, GatewayError

DEFAULT_MAX_DEPTH = 128


async def read_json(
    request: Request,
    max_bytes: int,
    *,
    idle_timeout_s: float = 5.0,
    total_timeout_s: float = 30.0,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """The request body parsed as JSON; 413 past ``max_bytes``, 408 past a deadline (see read_bytes),
    400 when arrays and objects nest deeper than ``max_depth`` (see check_depth)."""
    raw = await read_bytes(request, max_bytes, idle_timeout_s=idle_timeout_s, total_timeout_s=total_timeout_s)
    if not raw.strip():
        raise GatewayError(ErrorKind.INVALID_REQUEST, "request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(ErrorKind.INVALID_REQUEST, f"request body is not valid JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.INVALID_REQUEST, "request body must be a JSON object")
    check_depth(raw, body, max_depth)
    return body


def check_depth(raw: bytes, body: Any, max_depth: int) -> None:
    """Refuse (400) a parsed body whose arrays and objects nest deeper than ``max_depth`` levels.

    orjson parses up to 1,024 levels but dumps only 254, so a deep body that parsed would otherwise
    fail later, when it is dumped for Bedrock. A body cannot nest deeper than it has ``[`` and ``{``
    bytes, so most bodies are let through by two byte counts; only the rest are walked (iteratively:
    no recursion limit to hit).
    """
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise GatewayError(
                ErrorKind.INVALID_REQUEST,
                f"request body nests JSON arrays and objects deeper than the limit of {max_depth} levels",
            )
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


async def read_bytes(
    request: Request, max_bytes: int, *, idle_timeout_s: float = 5.0, total_timeout_s: float = 30.0
) -> bytes:
    """The request body as bytes, unparsed; 413 past ``max_bytes``, 408 past a deadline.

    The size is checked before reading (``content-length``) and while reading. A body that stalls
    for ``idle_timeout_s`` or takes longer than ``total_timeout_s`` in all is refused, so one slow
    client cannot hold a connection (or anything else) open indefinitely.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise GatewayError(
            ErrorKind.REQUEST_TOO_LARGE, f"request body exceeds the limit of {max_bytes} bytes"
        )
    # The ASGI messages are read directly rather than through ``Request.stream()``, under one timer
    # moved on after each chunk: a body that arrives in one message (nearly every request) costs
    # one receive and one timer, where the stream generator took three of each.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_timeout_s
    try:
        async with asyncio.timeout_at(min(loop.time() + idle_timeout_s, deadline)) as timer:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                chunk: bytes = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > max_bytes:
                        raise GatewayError(
                            ErrorKind.REQUEST_TOO_LARGE,
                            f"request body exceeds the limit of {max_bytes} bytes",
                        )
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
                timer.reschedule(min(loop.time() + idle_timeout_s, deadline))
    except TimeoutError:
        raise GatewayError(
            ErrorKind.TIMEOUT,
            f"the request body did not arrive in time (limits: {idle_timeout_s:g}s without "
            f"data, {total_timeout_s:g}s in all)",
            status=408,
        ) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)

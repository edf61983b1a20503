"""The unsigned JSON control API under `/_emulator/`, for scripting from other processes.

GET health | GET/DELETE log | GET/POST/DELETE faults (DELETE faults/{id}) | GET state | DELETE cache |
GET/POST/DELETE guardrails (POST a guardrail or a list; POST guardrails/require {"require": bool})
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from .faults import Fault
from .guardrails import EmulatedGuardrail
from .state import EmulatorState


async def _read(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _reply(send: Send, status: int, payload: Any) -> None:
    body = b"" if payload is None else orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def state_snapshot(state: EmulatorState) -> dict[str, Any]:
    """open_streams, open_stream_bytes, counters and sizes, as GET /_emulator/state returns them."""
    return {
        "open_streams": state.open_streams,
        "open_stream_bytes": state.open_stream_bytes,
        "counters": dict(state.counters),
        "faults": len(state.faults),
        "log_entries": len(state.log),
    }


def _add_faults(state: EmulatorState, raw: bytes) -> tuple[int, Any]:
    try:
        data = orjson.loads(raw or b"{}")
        items = data if isinstance(data, list) else [data]
        faults = [Fault.from_json(item) for item in items]
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as error:
        return 400, {"message": f"invalid fault: {error}"}
    return 201, {"faults": [state.faults.add(f).to_json() for f in faults]}


def _add_guardrails(state: EmulatorState, raw: bytes) -> tuple[int, Any]:
    try:
        data = orjson.loads(raw or b"{}")
        items = data if isinstance(data, list) else [data]
        added = [state.guardrails.add(EmulatedGuardrail.from_json(item)) for item in items]
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as error:
        return 400, {"message": f"invalid guardrail: {error}"}
    return 201, {"guardrails": [g.to_json() for g in added]}


def _require_guardrail(state: EmulatorState, raw: bytes) -> tuple[int, Any]:
    try:
        data = orjson.loads(raw or b"{}")
        require = data["require"]
    except (orjson.JSONDecodeError, TypeError, KeyError) as error:
        return 400, {"message": f'expected {{"require": true|false}}: {error}'}
    state.guardrails.require_guardrail = bool(require)
    return 200, state.guardrails.to_json()


async def handle_control(state: EmulatorState, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one control request."""
    method = scope["method"]
    path = scope["path"].removeprefix("/_emulator/").rstrip("/")
    body = await _read(receive)
    if (method, path) == ("GET", "health"):
        await _reply(send, 200, {"status": "ok"})
    elif (method, path) == ("GET", "log"):
        await _reply(send, 200, {"entries": [e.to_json() for e in state.log]})
    elif (method, path) == ("DELETE", "log"):
        state.log.clear()
        await _reply(send, 204, None)
    elif (method, path) == ("GET", "faults"):
        await _reply(send, 200, {"faults": [f.to_json() for f in state.faults]})
    elif (method, path) == ("POST", "faults"):
        await _reply(send, *_add_faults(state, body))
    elif (method, path) == ("DELETE", "faults"):
        state.faults.clear()
        await _reply(send, 204, None)
    elif method == "DELETE" and path.startswith("faults/") and path[7:].isdigit():
        state.faults.remove(int(path[7:]))
        await _reply(send, 204, None)
    elif (method, path) == ("GET", "state"):
        await _reply(send, 200, state_snapshot(state))
    elif (method, path) == ("GET", "guardrails"):
        await _reply(send, 200, state.guardrails.to_json())
    elif (method, path) == ("POST", "guardrails"):
        await _reply(send, *_add_guardrails(state, body))
    elif (method, path) == ("POST", "guardrails/require"):
        await _reply(send, *_require_guardrail(state, body))
    elif (method, path) == ("DELETE", "guardrails"):
        state.guardrails.clear()
        await _reply(send, 204, None)
    elif (method, path) == ("DELETE", "cache"):
        state.cache.clear()
        await _reply(send, 204, None)
    else:
        await _reply(send, 404, {"message": f"no control route {method} /_emulator/{path}"})

"""The emulator's ASGI app: each request walks route → authenticate → log → fault → resolve → answer.

Raw ASGI (no framework) because it is the upstream in benchmarks; bodies go through orjson only.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import anyio
import orjson
from starlette.types import Receive, Scope, Send

from . import control_plane
from .auth import authenticate
from .control import handle_control
from .errors import BedrockError, stream_exception_name, validation_error
from .eventstream import CONTENT_TYPE, encode_exception
from .faults import Fault
from .guardrails import apply_guardrail, guardrail_of_call, model_body
from .models import resolve_model
from .operations import HANDLERS, Call, JsonReply, Reply, StreamReply
from .request_log import LogEntry
from .shapes import check_request_shape
from .sigv4 import SignedRequest
from .state import EmulatorState
from .sts import assume_role, is_sts_request

logger = logging.getLogger("bedrock_mw.testing")
CONTROL_PREFIX = "/_emulator/"
_JSON = [(b"content-type", b"application/json")]
_YIELD_EVERY = 16
_LOGGED_HEADERS = frozenset({"content-type", "accept", "user-agent", "x-amzn-bedrock-accept",
                             "x-amzn-bedrock-trace", "x-amzn-bedrock-performanceconfig-latency",
                             "x-amzn-bedrock-service-tier", "x-amz-date",
                             "x-amzn-bedrock-guardrailidentifier",
                             "x-amzn-bedrock-guardrailversion"})  # fmt: skip


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def parse_route(raw_path: str, method: str) -> tuple[str, str]:
    """(operation, model id) from `/model/{url-encoded id}/{operation}`."""
    if method == "POST" and raw_path.startswith("/model/"):
        encoded, _, operation = raw_path[len("/model/") :].rpartition("/")
        if encoded and operation in HANDLERS:
            return operation, unquote(encoded)
    if method == "POST" and raw_path.startswith("/guardrail/"):
        return "apply-guardrail", ""
    raise BedrockError("UnknownOperationException", "Unknown operation", status=404)


class EmulatorApp:
    """ASGI callable serving Bedrock Runtime plus the `/_emulator/` control API."""

    def __init__(self, state: EmulatorState | None = None) -> None:
        self.state = state or EmulatorState()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"].startswith(CONTROL_PREFIX):
            await handle_control(self.state, scope, receive, send)
            return
        if control_plane.serves(scope):
            await control_plane.handle_control_plane(self.state, scope, receive, send)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        if is_sts_request(scope["method"], scope["path"], headers):
            await self._sts(scope, receive, send, headers)
            return
        await self._serve(scope, receive, send)

    async def _sts(self, scope: Scope, receive: Receive, send: Send, headers: list[tuple[str, str]]) -> None:
        body = await read_body(receive)
        signed = SignedRequest(
            scope["method"], _raw_path(scope), scope["query_string"].decode("latin-1"), headers, body
        )
        now = datetime.now(UTC) if self.state.settings.check_clock_skew else None
        status, xml, assumed = assume_role(signed, self.state.keyring, now)
        if assumed is not None:
            self.state.assumed_roles.append(assumed)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/xml")]}
        )
        await send({"type": "http.response.body", "body": xml})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        body = await read_body(receive)
        raw_path = _raw_path(scope)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        entry = LogEntry(time=time.time(), request_id=request_id, operation="", model_id="")
        entry.headers = {k: v for k, v in headers if k.lower() in _LOGGED_HEADERS}
        self.state.counters["requests"] += 1
        try:
            entry.operation, entry.model_id = parse_route(raw_path, scope["method"])
            entry.body = _parse_body(body)
            self.state.log.append(entry)
            reply = await self._answer(scope, receive, entry, body, headers, request_id, started)
        except BedrockError as error:
            await self._fail(send, entry, error, request_id)
            return
        except Exception:  # an emulator bug: still answer in Bedrock's shape, never a bare 500
            logger.exception("emulator failed on %s %s", entry.operation, entry.model_id)
            await self._fail(send, entry, BedrockError("InternalServerException"), request_id)
            return
        if reply is None:  # the client gave up on a hanging request
            return
        entry.status = 200
        if isinstance(reply, JsonReply):
            await _send_json(send, reply, request_id)
        else:
            await self._stream(send, receive, reply, request_id, entry)

    async def _fail(self, send: Send, entry: LogEntry, error: BedrockError, request_id: str) -> None:
        entry.status, entry.error = error.status, error.error_type
        self.state.counters["errors"] += 1
        await _send_error(send, error, request_id)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        entry: LogEntry,
        body: bytes,
        headers: list[tuple[str, str]],
        request_id: str,
        started: float,
    ) -> Reply | None:
        state = self.state
        query = scope["query_string"].decode("latin-1")
        signed = SignedRequest(scope["method"], _raw_path(scope), query, headers, body)
        now = datetime.now(UTC) if state.settings.check_clock_skew else None
        caller = authenticate(signed, state.keyring, now, state.settings.default_region)
        entry.region, entry.auth_kind = caller.region, caller.kind
        entry.access_key_id, entry.bearer_key_id = caller.access_key_id, caller.bearer_fingerprint
        entry.session_token_present, entry.session_token = (
            caller.session_token is not None,
            caller.session_token,
        )
        fault = state.faults.take(caller.region, (entry.model_id,), entry.operation, caller.kind)
        if fault is not None:
            entry.fault_id = fault.id
            if not await self._apply_timing(fault, caller.region, entry.model_id, receive):
                return None
            error = fault.to_error()
            if error is not None:
                raise error
        check_body(entry.operation, entry.body, body)
        if entry.operation == "apply-guardrail":
            return JsonReply(apply_guardrail(state.guardrails, _raw_path(scope), entry.body), _JSON)
        model = resolve_model(
            entry.model_id, caller.region, require_profile_rule=entry.operation != "count-tokens"
        )
        guardrail = guardrail_of_call(
            state.guardrails, entry.operation, entry.body, headers, caller.region, entry.model_id
        )
        body = model_body(entry.operation, entry.body)
        call = Call(entry.operation, caller, model, body, request_id, started, guardrail)
        reply = HANDLERS[entry.operation](call, state.cache)
        if isinstance(reply, StreamReply) and fault is not None:
            return StreamReply(reply.frames, reply.headers, fault)
        return reply

    async def _apply_timing(self, fault: Fault, region: str, model_id: str, receive: Receive) -> bool:
        """Delays, cold start, hang. False when the client disconnected while we hung."""
        if fault.cold_start_s and (region, model_id) not in self.state.warm:
            self.state.warm.add((region, model_id))
            await anyio.sleep(fault.cold_start_s)
        if fault.delay_s:
            await anyio.sleep(fault.delay_s)
        if fault.hang:
            await self._hang(receive)
            if not self.state.closing.is_set():
                return False
            raise BedrockError("ServiceUnavailableException", "The emulator is shutting down.")
        return True

    async def _hang(self, receive: Receive) -> None:
        async with anyio.create_task_group() as group:

            async def until_closing() -> None:
                # `closing` is a threading.Event set by the runner's thread; polling bridges the two.
                while not self.state.closing.is_set():  # noqa: ASYNC110
                    await anyio.sleep(0.05)
                group.cancel_scope.cancel()

            group.start_soon(until_closing)
            await wait_for_disconnect(receive)
            group.cancel_scope.cancel()

    async def _stream(
        self, send: Send, receive: Receive, reply: StreamReply, request_id: str, entry: LogEntry
    ) -> None:
        state = self.state
        fault = reply.fault
        delay = (
            fault.event_delay_s if fault and fault.event_delay_s is not None else state.settings.event_delay_s
        )
        error_after = fault.stream_error_after if fault else None
        headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"x-amzn-requestid", request_id.encode()),
            *reply.headers,
        ]
        state.open_streams += 1
        state.counters["streams_started"] += 1
        completed = False
        sent = 0
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    await wait_for_disconnect(receive)
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                for index, frame in enumerate(reply.frames):
                    if error_after is not None and index >= error_after:
                        break
                    state.open_stream_bytes += len(frame)
                    sent += len(frame)
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                    if delay:
                        await anyio.sleep(delay)
                    elif index % _YIELD_EVERY == _YIELD_EVERY - 1:
                        await anyio.lowlevel.checkpoint()
                if error_after is not None and fault is not None:
                    error_type = stream_exception_name(fault.error or "ModelStreamErrorException")
                    message = (
                        fault.message or BedrockError(fault.error or "ModelStreamErrorException").message
                    )
                    await send(
                        {
                            "type": "http.response.body",
                            "body": encode_exception(error_type, message),
                            "more_body": True,
                        }
                    )
                    entry.error = error_type
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                completed = True
                group.cancel_scope.cancel()
        finally:
            state.open_streams -= 1
            state.open_stream_bytes -= sent
            state.counters["streams_completed" if completed else "streams_aborted"] += 1


def _raw_path(scope: Scope) -> str:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return raw.decode("latin-1").partition("?")[0]


def check_body(operation: str, parsed: Any, raw: bytes) -> None:
    """Refuse a body that is not JSON, or not the operation's shape, as Bedrock's front end does."""
    if isinstance(parsed, str) or (not raw and operation.startswith("invoke")):
        if operation.startswith("invoke"):
            # InvokeModel's body is an opaque blob handed to the model, so bad JSON is the model's
            # complaint (ValidationException), not the front end's (SerializationException).
            raise validation_error(
                "Malformed input request: the body is not valid JSON, "
                "please reformat your input and try again."
            )
        raise BedrockError("SerializationException", "The request body is not valid JSON.")
    check_request_shape(operation, parsed)


def _parse_body(body: bytes) -> Any:
    if not body:
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # Kept as text so the log stays JSON-serialisable; the request is rejected later.
        return body.decode("utf-8", "replace")


async def _send_json(send: Send, reply: JsonReply, request_id: str) -> None:
    headers = [
        *reply.headers,
        (b"x-amzn-requestid", request_id.encode()),
        (b"content-length", str(len(reply.body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _send_error(send: Send, error: BedrockError, request_id: str) -> None:
    status, headers, body = error.render(request_id)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

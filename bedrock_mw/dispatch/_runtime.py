"""The lean Bedrock Runtime client: the I/O around ``_wire``, for every operation the gateway makes.

botocore's general client does, per call, what is fixed for the one service and five operations we
make: parameter validation, model-driven serialisation and parsing, endpoint resolution, event-hook
dispatch, a user agent built anew. This client takes the endpoint botocore resolved once, the
operations as botocore's service model defines them (``_wire.Wire``), credentials from the
aiobotocore session (refreshable and assumed-role ones refresh through ``get_frozen_credentials``),
and sends through one HTTP client (``_http``: aiohttp's, or pyreqwest's with the ``fast`` extra) with
a bounded, kept-alive connection pool.

Two layers: the raw one (:meth:`LeanTransport.send`, :meth:`LeanTransport.open`) sends a body as
given and hands back the answer's status, headers and bytes or event-stream frames untouched, for
byte-for-byte relays; the :class:`~._transport.BedrockTransport` operations on top of it serialise
params and parse answers as botocore does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import botocore
from botocore.utils import percent_encode

from . import _wire
from ._http import BodyEndedEarly, CaBundle, HttpAnswer, HttpClientName, HttpSettings, http_client
from ._transport import InvokeOptions, InvokeResponse

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseResponseTypeDef,
        ConverseStreamOutputTypeDef,
        CountTokensInputTypeDef,
        ResponseStreamTypeDef,
    )

    from ..translate.types import ConverseParams

Event = TypeVar("Event")

# How long closing the pool waits for the streams it handed out to be closed by their owners.
_DRAIN_S = 1.0
_USER_AGENT = f"bedrock-mw Botocore/{botocore.__version__}"
_JSON = "application/json"


@dataclass(slots=True)
class RawResponse:
    """A whole answer as Bedrock sent it: status, headers (lower-cased names) and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-amzn-requestid")


class RawStream:
    """An open answer whose body is read as it arrives: whole event-stream frames, or plain bytes.

    ``status`` and ``headers`` are known on return from :meth:`LeanTransport.open`; a failed call's
    body (Bedrock's JSON error) is :meth:`read`. Iterating yields each event-stream frame exactly as
    Bedrock framed it. ``close()`` drops the connection at once; always call it.
    """

    def __init__(self, answer: HttpAnswer, on_close: Callable[[], None] | None = None) -> None:
        self._answer = answer
        self._on_close = on_close
        self.status = answer.status
        self.headers: Mapping[str, str] = answer.headers
        self.request_id = self.headers.get("x-amzn-requestid")

    async def read(self) -> bytes:
        """The whole body (for an error answer)."""
        return await self._answer.read()

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in whatever pieces the socket gives."""
        return self._answer.chunks()

    def __aiter__(self) -> _Frames:
        return _Frames(self._answer.chunks())

    def close(self) -> None:
        self._answer.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


class _Frames:
    """A raw stream's event-stream frames, one by one or a read's worth at a time (:meth:`next_batch`)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._splitter = _wire.FrameSplitter()
        self._pending: collections.deque[bytes] = collections.deque()

    def __aiter__(self) -> _Frames:
        return self

    async def __anext__(self) -> bytes:
        if not self._pending:
            self._pending.extend(await self.next_batch())
        return self._pending.popleft()

    async def next_batch(self) -> list[bytes]:
        """The next frames: all that one read completed (never empty); StopAsyncIteration at the end."""
        if self._pending:
            batch = list(self._pending)
            self._pending.clear()
            return batch
        frames: list[bytes] = []
        while not frames:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                if self._splitter.pending:
                    raise BodyEndedEarly("the event stream ended inside a frame") from None
                raise
            frames = self._splitter.feed(chunk)
        return frames


class LeanTransport:
    """Bedrock Runtime for one provider and region, on one HTTP client's connection pool."""

    def __init__(
        self,
        wire: _wire.Wire,
        endpoint_url: str,
        region: str,
        *,
        credentials: Any = None,
        token: str | None = None,
        max_connections: int,
        connect_timeout_s: float,
        http_client_name: HttpClientName = "aiohttp",
        ca_bundle: CaBundle | None = None,
    ) -> None:
        self._wire = wire
        self._converse = wire["Converse"]
        self._converse_stream = wire["ConverseStream"]
        self._invoke = wire["InvokeModel"]
        self._invoke_stream = wire["InvokeModelWithResponseStream"]
        self._count_tokens = wire["CountTokens"]
        self._endpoint = endpoint_url.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._bearer = f"Bearer {token}" if token is not None else None
        settings = HttpSettings(max_connections, connect_timeout_s, ca_bundle)
        self._http = http_client(http_client_name, settings)
        self._open_streams = 0
        self._no_open_streams = asyncio.Event()
        self._no_open_streams.set()

    @property
    def http_client(self) -> str:
        """The HTTP client this transport sends through: ``aiohttp`` or ``pyreqwest``."""
        return self._http.name

    # -- the one request path: a complete header set in, the answer out ------------------------------
    async def _complete(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The URL and the whole header set (auth, user agent) for a POST of ``body`` to ``path``."""
        # ``headers`` is the caller's own dict, completed here.
        url = self._endpoint + path
        if self._bearer is not None:
            headers["Authorization"] = self._bearer
        else:
            frozen = await self._credentials.get_frozen_credentials()
            headers = _wire.sign_headers(frozen, self._region, url, body, headers)
        headers["User-Agent"] = _USER_AGENT
        return url, headers

    async def _open(self, path: str, body: bytes, headers: dict[str, str]) -> RawStream:
        url, headers = await self._complete(path, body, headers)
        stream = RawStream(await self._http.open(url, body, headers), self._stream_closed)
        self._open_streams += 1
        self._no_open_streams.clear()
        return stream

    def _stream_closed(self) -> None:
        self._open_streams -= 1
        if self._open_streams == 0:
            self._no_open_streams.set()

    async def _fetch(self, path: str, body: bytes, headers: dict[str, str]) -> RawResponse:
        url, headers = await self._complete(path, body, headers)
        return RawResponse(*await self._http.fetch(url, body, headers))

    async def _exchange(
        self, op: _wire.Operation, model_id: str, body: bytes, headers: dict[str, str]
    ) -> RawResponse:
        return await self._fetch(op.path(model_id), body, headers)

    # -- raw: bytes in, status + headers + bytes or frames out ---------------------------------------
    async def send(
        self, operation: str, model_id: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        """POST ``body`` as given to ``operation`` for ``model_id``; the whole answer, whatever its status.

        ``headers`` are sent (and signed) as given; ``Content-Type`` defaults to JSON.
        """
        return await self._exchange(self._wire[operation], model_id, body, _raw_headers(headers))

    async def open(
        self, operation: str, model_id: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> RawStream:
        """Like :meth:`send`, returning once the status and headers arrived; the caller closes it."""
        return await self._open(self._wire[operation].path(model_id), body, _raw_headers(headers))

    async def apply_guardrail(self, identifier: str, version: str, body: bytes) -> RawResponse:
        """ApplyGuardrail (no model runs): the whole answer, whatever its status.

        Its URI names a guardrail, not a model (``/guardrail/{id}/version/{version}/apply``), so it is
        built here, each part percent-encoded as botocore encodes URI labels.
        """
        path = f"/guardrail/{percent_encode(identifier)}/version/{percent_encode(version)}/apply"
        return await self._fetch(path, body, _raw_headers(None))

    # -- BedrockTransport ---------------------------------------------------------------------------
    async def _call(
        self, op: _wire.Operation, model_id: str, body: bytes, headers: dict[str, str]
    ) -> RawResponse:
        answer = await self._exchange(op, model_id, body, headers)
        if answer.status >= 300:
            raise _wire.client_error(op.name, answer.status, answer.headers, answer.body)
        return answer

    async def _stream(
        self, op: _wire.Operation, model_id: str, body: bytes, headers: dict[str, str]
    ) -> DecodedEventStream[Any]:
        raw = await self._open(op.path(model_id), body, headers)
        try:
            if raw.status >= 300:
                raise _wire.client_error(op.name, raw.status, raw.headers, await raw.read())
        except BaseException:
            raw.close()
            raise
        return DecodedEventStream(raw, op)

    @staticmethod
    def _invoke_headers(op: _wire.Operation, options: InvokeOptions | None) -> dict[str, str]:
        names = op.request_headers
        headers = {names["contentType"]: _JSON, names["accept"]: _JSON}
        if options:
            for member, value in options.items():
                headers[names[member]] = str(value)
        return headers

    async def converse(self, model_id: str, params: ConverseParams) -> ConverseResponseTypeDef:
        """Converse: botocore's parsed answer (blobs as bytes, ``ResponseMetadata``)."""
        op = self._converse
        headers = {"Content-Type": _JSON, "Accept": _JSON}
        answer = await self._call(op, model_id, _wire.serialise_body(params), headers)
        parsed = _wire.parse_json_answer(op, answer.body, answer.status, answer.headers)
        return cast("ConverseResponseTypeDef", parsed)

    async def converse_stream(
        self, model_id: str, params: ConverseParams
    ) -> DecodedEventStream[ConverseStreamOutputTypeDef]:
        """ConverseStream, once Bedrock accepted it; the caller must close the stream."""
        headers = {"Content-Type": _JSON, "Accept": _wire.EVENT_STREAM}
        return await self._stream(self._converse_stream, model_id, _wire.serialise_body(params), headers)

    async def invoke(
        self, model_id: str, body: bytes, options: InvokeOptions | None = None
    ) -> InvokeResponse:
        """InvokeModel: the body sent as given, the answer's body as Bedrock sent it."""
        op = self._invoke
        answer = await self._call(op, model_id, body, self._invoke_headers(op, options))
        return InvokeResponse(answer.body, answer.headers, answer.request_id)

    async def invoke_stream(
        self, model_id: str, body: bytes, options: InvokeOptions | None = None
    ) -> DecodedEventStream[ResponseStreamTypeDef]:
        """InvokeModelWithResponseStream, once Bedrock accepted it; the caller must close the stream."""
        op = self._invoke_stream
        headers = self._invoke_headers(op, options)
        headers["Accept"] = _wire.EVENT_STREAM
        return await self._stream(op, model_id, body, headers)

    async def count_tokens(self, model_id: str, input_: CountTokensInputTypeDef) -> int:
        """CountTokens: the input token count."""
        op = self._count_tokens
        headers = {"Content-Type": _JSON, "Accept": _JSON}
        answer = await self._call(op, model_id, _wire.serialise_body({"input": input_}), headers)
        parsed = _wire.parse_json_answer(op, answer.body, answer.status, answer.headers)
        try:
            return int(parsed["inputTokens"])
        except (KeyError, TypeError, ValueError):
            raise _wire.ResponseParserError(error="CountTokens answered without inputTokens") from None

    async def aclose(self) -> None:
        """Close every pooled connection, once the streams handed out were closed (at most ``_DRAIN_S``).

        At shutdown the requests that hold streams are cancelled at the same time as the app closes
        its clients: their owners close them (and settle the requests) in the next turns of the loop.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_S):
                await self._no_open_streams.wait()
        await self._http.aclose()


def _raw_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """A raw caller's headers as sent: its own, with a JSON ``Content-Type`` if it named none."""
    sent = dict(headers) if headers else {}
    if not any(name.lower() == "content-type" for name in sent):
        sent["Content-Type"] = _JSON
    return sent


class DecodedEventStream(Generic[Event]):
    """An accepted event stream decoded into botocore's event dicts (blobs as ``bytes``).

    Iterate it event by event, or take the events a batch at a time (:meth:`next_batch`: what one
    read of the socket completed), which is how a relay takes them; both read from one place.
    """

    def __init__(self, raw: RawStream, operation: _wire.Operation) -> None:
        self._raw = raw
        self._chunks = raw.chunks().__aiter__()
        self._decoder = _wire.EventStreamDecoder(operation)
        self._pending: collections.deque[Any] = collections.deque()
        self._error: Exception | None = None  # raised once the events decoded before it are taken
        self.headers = raw.headers
        self.request_id = raw.request_id

    def __aiter__(self) -> DecodedEventStream[Event]:
        return self

    async def __anext__(self) -> Event:
        if not self._pending:
            self._pending.extend(await self.next_batch())
        event: Event = self._pending.popleft()
        return event

    async def next_batch(self) -> list[Event]:
        """The next events: all that one read completed (never empty); StopAsyncIteration at the end."""
        if self._pending:
            batch = list(self._pending)
            self._pending.clear()
            return batch
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        feed = self._decoder.feed
        events: list[Any] = []
        while not events:
            chunk = await self._chunks.__anext__()
            try:
                events.extend(feed(chunk))
            except Exception as exc:
                if not events:
                    raise
                self._error = exc  # the events before a bad frame are relayed first, as one by one
        return events

    def close(self) -> None:
        self._raw.close()

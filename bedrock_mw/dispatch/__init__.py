"""The dispatcher: the one way the gateway calls Bedrock.

Every call goes through one :class:`BedrockTransport` per (provider, region) (:class:`ClientPool`):
the lean client (``_runtime``, ``_wire``) by default, or aiobotocore's general client where a
provider says ``transport: aiobotocore``. The dispatcher applies every deadline (asyncio's
``timeout``, and the stream's idle watchdog) and turns every botocore and HTTP client failure into an
:class:`UpstreamError` in exactly one place (:func:`_upstream_errors`), so no foreign exception type
reaches the app. The raw path (:meth:`Dispatcher.send_raw`, :meth:`Dispatcher.open_raw`) sends a
body as given and returns Bedrock's bytes or event-stream frames untouched, for pass-through routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, cast

import orjson

from ..config import GuardrailConfig
from ._control import AccountListing, get_inference_profile, list_account_models
from ._errors import Destination, Target, UpstreamError, _upstream_errors
from ._pool import ClientPool
from ._runtime import LeanTransport, RawResponse, RawStream
from ._stream import BedrockStream, UpstreamStream
from ._transport import BedrockTransport, EventStream, InvokeOptions, InvokeResponse
from ._wire import client_error

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import GuardrailActionType, GuardrailContentSourceType
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseResponseTypeDef,
        ConverseStreamOutputTypeDef,
        CountTokensInputTypeDef,
        GuardrailAssessmentTypeDef,
        GuardrailCoverageTypeDef,
        GuardrailOutputContentTypeDef,
        GuardrailUsageTypeDef,
        ResponseStreamTypeDef,
    )

    from ..translate.types import ConverseParams, JSONObject

__all__ = [
    "AccountListing",
    "BedrockStream",
    "BedrockTransport",
    "ClientPool",
    "Destination",
    "Dispatcher",
    "EventStream",
    "GuardrailAnswer",
    "InvokeOptions",
    "InvokeResponse",
    "InvokeResult",
    "LeanTransport",
    "RawResponse",
    "RawStream",
    "Target",
    "UpstreamError",
    "UpstreamStream",
    "get_inference_profile",
    "list_account_models",
    "request_id_of",
]


class GuardrailAnswer(TypedDict, total=False):
    """ApplyGuardrail's answer body as decoded (botocore's ApplyGuardrailResponse less ResponseMetadata)."""

    usage: GuardrailUsageTypeDef
    action: GuardrailActionType
    actionReason: str
    outputs: list[GuardrailOutputContentTypeDef]
    assessments: list[GuardrailAssessmentTypeDef]
    guardrailCoverage: GuardrailCoverageTypeDef


@dataclass(slots=True)
class InvokeResult:
    """An InvokeModel answer: the decoded JSON body and the token counts Bedrock put in headers.

    The body's shape is the model family's: its translator reads it (translate/native_shapes.py).
    """

    body: JSONObject
    input_tokens: int | None
    output_tokens: int | None
    request_id: str | None


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def request_id_of(result: object) -> str | None:
    """The AWS request id of a successful call's result, whatever the operation returned."""
    if isinstance(result, dict):
        rid = (result.get("ResponseMetadata") or {}).get("RequestId")
        return str(rid) if rid else None
    rid = getattr(result, "request_id", None)
    return str(rid) if rid else None


class Dispatcher:
    """Makes Bedrock Runtime calls for one target at a time; the routing plan loops over targets."""

    def __init__(self, pool: ClientPool | None = None) -> None:
        self.pool = pool if pool is not None else ClientPool()

    async def converse(self, target: Target, params: ConverseParams) -> ConverseResponseTypeDef:
        """Converse; returns botocore's parsed response."""
        with _upstream_errors("Converse", target):
            transport = await self.pool.transport(target.provider, target.region)
            async with asyncio.timeout(target.provider.timeouts.total_s):
                return await transport.converse(target.model_id, params)

    async def converse_stream(
        self, target: Target, params: ConverseParams
    ) -> BedrockStream[ConverseStreamOutputTypeDef]:
        """ConverseStream; returns the open stream once Bedrock accepted the call."""
        t = target.provider.timeouts
        with _upstream_errors("ConverseStream", target):
            transport = await self.pool.transport(target.provider, target.region)
            # Deadlines bound Bedrock, not the pool building its first client (botocore's loads).
            deadline = asyncio.get_running_loop().time() + t.total_s
            async with asyncio.timeout(t.first_byte_s):
                events = await transport.converse_stream(target.model_id, params)
        return BedrockStream(events, target, "ConverseStream", t.idle_s, deadline)

    async def invoke_model(
        self, target: Target, body: Mapping[str, object] | bytes, options: InvokeOptions | None = None
    ) -> InvokeResult:
        """InvokeModel with a native JSON body (a family's TypedDict, or bytes sent as given)."""
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        with _upstream_errors("InvokeModel", target):
            transport = await self.pool.transport(target.provider, target.region)
            async with asyncio.timeout(target.provider.timeouts.total_s):
                answer = await transport.invoke(target.model_id, payload, options)
        try:
            decoded = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                "InvalidResponse",
                "Bedrock returned a body that is not JSON",
                502,
                "InvokeModel",
                target.provider.id,
                target.region,
                target.model_id,
                answer.request_id,
            ) from None
        headers = answer.headers
        return InvokeResult(
            body=decoded if isinstance(decoded, dict) else {"value": decoded},
            input_tokens=_header_int(headers, "x-amzn-bedrock-input-token-count"),
            output_tokens=_header_int(headers, "x-amzn-bedrock-output-token-count"),
            request_id=answer.request_id,
        )

    async def invoke_model_stream(
        self, target: Target, body: Mapping[str, object] | bytes, options: InvokeOptions | None = None
    ) -> BedrockStream[ResponseStreamTypeDef]:
        """InvokeModelWithResponseStream; events are ``{"chunk": {"bytes": b"..."}}``."""
        t = target.provider.timeouts
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        with _upstream_errors("InvokeModelWithResponseStream", target):
            transport = await self.pool.transport(target.provider, target.region)
            # Deadlines bound Bedrock, not the pool building its first client (botocore's loads).
            deadline = asyncio.get_running_loop().time() + t.total_s
            async with asyncio.timeout(t.first_byte_s):
                events = await transport.invoke_stream(target.model_id, payload, options)
        return BedrockStream(events, target, "InvokeModelWithResponseStream", t.idle_s, deadline)

    async def apply_guardrail(
        self,
        target: Target,
        guardrail: GuardrailConfig,
        texts: list[str],
        *,
        source: GuardrailContentSourceType = "INPUT",
    ) -> GuardrailAnswer:
        """ApplyGuardrail on ``texts`` (no model runs); returns Bedrock's decoded answer."""
        assert guardrail.identifier is not None and guardrail.version is not None
        body = orjson.dumps({"source": source, "content": [{"text": {"text": text}} for text in texts]})
        with _upstream_errors("ApplyGuardrail", target):
            lean = await self.pool.lean(target.provider, target.region)
            async with asyncio.timeout(target.provider.timeouts.total_s):
                answer = await lean.apply_guardrail(guardrail.identifier, guardrail.version, body)
            if answer.status >= 300:
                raise client_error("ApplyGuardrail", answer.status, dict(answer.headers), answer.body)
        try:
            decoded = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            decoded = None
        if not isinstance(decoded, dict):
            raise UpstreamError(
                "InvalidResponse",
                "Bedrock's ApplyGuardrail answer is not a JSON object",
                502,
                "ApplyGuardrail",
                target.provider.id,
                target.region,
                target.model_id,
                answer.request_id,
            )
        return cast("GuardrailAnswer", decoded)  # Bedrock's JSON, in the service model's shape

    async def count_tokens(self, target: Target, input_: CountTokensInputTypeDef) -> int:
        """CountTokens; ``target.model_id`` must be a base model id."""
        with _upstream_errors("CountTokens", target):
            transport = await self.pool.transport(target.provider, target.region)
            async with asyncio.timeout(target.provider.timeouts.total_s):
                return await transport.count_tokens(target.model_id, input_)

    # -- the raw path: bytes in, Bedrock's bytes or frames out ---------------------------------------
    async def send_raw(
        self, target: Target, operation: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        """POST ``body`` as given to ``operation`` (``"InvokeModel"``...); Bedrock's answer untouched.

        A refusal (status >= 300) raises :class:`UpstreamError` (so the routing plan can fall over);
        ``headers`` (``Content-Type``, ``Accept``, ``X-Amzn-Bedrock-*``) are sent and signed as given.
        """
        with _upstream_errors(operation, target):
            lean = await self.pool.lean(target.provider, target.region)
            async with asyncio.timeout(target.provider.timeouts.total_s):
                answer = await lean.send(operation, target.model_id, body, headers)
            if answer.status >= 300:
                raise client_error(operation, answer.status, answer.headers, answer.body)
        return answer

    async def open_raw(
        self, target: Target, operation: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> UpstreamStream[bytes]:
        """Open a streamed operation; iterate the answer's event-stream frames exactly as sent.

        Refusals raise :class:`UpstreamError`; the stream's ``headers`` are Bedrock's; close it.
        """
        t = target.provider.timeouts
        with _upstream_errors(operation, target):
            lean = await self.pool.lean(target.provider, target.region)
            # Deadlines bound Bedrock, not the pool building its first client (botocore's loads).
            deadline = asyncio.get_running_loop().time() + t.total_s
            async with asyncio.timeout(t.first_byte_s):
                raw = await lean.open(operation, target.model_id, body, headers)
                try:
                    if raw.status >= 300:
                        raise client_error(operation, raw.status, raw.headers, await raw.read())
                except BaseException:
                    raw.close()
                    raise
        return UpstreamStream(raw, target, operation, t.idle_s, deadline, raw.headers)

    async def aclose(self) -> None:
        """Close every pooled transport."""
        await self.pool.aclose()

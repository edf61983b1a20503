"""The :class:`~._transport.BedrockTransport` over aiobotocore's general Bedrock Runtime client.

Selected per provider with ``transport: aiobotocore``, and the reference the tests hold the lean
client to: every parameter goes through botocore's own validation-free serialiser, every answer
through its model-driven parser.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._transport import InvokeOptions, InvokeResponse

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseResponseTypeDef,
        ConverseStreamOutputTypeDef,
        ConverseStreamResponseTypeDef,
        CountTokensInputTypeDef,
        InvokeModelWithResponseStreamResponseTypeDef,
        ResponseStreamTypeDef,
    )

    from ..translate.types import ConverseParams

Event = TypeVar("Event")

_JSON = "application/json"


class BotocoreEventStream(Generic[Event]):
    """aiobotocore's event stream with the request id beside it."""

    def __init__(
        self,
        stream: Any,  # aiobotocore's EventStream: no stubs
        response: ConverseStreamResponseTypeDef | InvokeModelWithResponseStreamResponseTypeDef,
    ) -> None:
        self._stream = stream
        self.request_id: str | None = response.get("ResponseMetadata", {}).get("RequestId")

    def __aiter__(self) -> AsyncIterator[Event]:
        events: AsyncIterator[Event] = self._stream.__aiter__()
        return events

    def close(self) -> None:
        self._stream.close()


class AiobotocoreTransport:
    """Bedrock Runtime for one provider and region, through an entered aiobotocore client."""

    def __init__(self, client: Any, stack: contextlib.AsyncExitStack) -> None:
        self._client = client
        self._stack = stack

    async def converse(self, model_id: str, params: ConverseParams) -> ConverseResponseTypeDef:
        """Converse: botocore's parsed answer."""
        response: ConverseResponseTypeDef = await self._client.converse(modelId=model_id, **params)
        return response

    async def converse_stream(
        self, model_id: str, params: ConverseParams
    ) -> BotocoreEventStream[ConverseStreamOutputTypeDef]:
        """ConverseStream, once Bedrock accepted it; the caller must close the stream."""
        response = await self._client.converse_stream(modelId=model_id, **params)
        return BotocoreEventStream(response["stream"], response)

    async def invoke(
        self, model_id: str, body: bytes, options: InvokeOptions | None = None
    ) -> InvokeResponse:
        """InvokeModel: the answer's body as Bedrock sent it."""
        kwargs: InvokeOptions = {"contentType": _JSON, "accept": _JSON, **(options or {})}
        response = await self._client.invoke_model(modelId=model_id, body=body, **kwargs)
        async with response["body"] as payload:
            raw: bytes = await payload.read()
        meta = response.get("ResponseMetadata", {})
        headers = {k.lower(): v for k, v in (meta.get("HTTPHeaders") or {}).items()}
        return InvokeResponse(raw, headers, meta.get("RequestId"))

    async def invoke_stream(
        self, model_id: str, body: bytes, options: InvokeOptions | None = None
    ) -> BotocoreEventStream[ResponseStreamTypeDef]:
        """InvokeModelWithResponseStream, once Bedrock accepted it; the caller must close the stream."""
        kwargs: InvokeOptions = {"contentType": _JSON, "accept": _JSON, **(options or {})}
        response = await self._client.invoke_model_with_response_stream(modelId=model_id, body=body, **kwargs)
        return BotocoreEventStream(response["body"], response)

    async def count_tokens(self, model_id: str, input_: CountTokensInputTypeDef) -> int:
        """CountTokens: the input token count."""
        response = await self._client.count_tokens(modelId=model_id, input=input_)
        return int(response["inputTokens"])

    async def aclose(self) -> None:
        """Close the client and its connections."""
        await self._stack.aclose()

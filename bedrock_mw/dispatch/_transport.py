"""The one seam between the dispatcher and Bedrock: the :class:`BedrockTransport` Protocol.

Two implementations: the lean client (``_runtime.LeanTransport``, the default, on botocore's wire
pieces and one connection pool of an ``_http`` client, aiohttp's or pyreqwest's) and an adapter over
aiobotocore's general client (``_botocore.AiobotocoreTransport``, selectable per provider, and the
reference the tests hold the lean one to). Parameters and answers are botocore's own shapes (the
``mypy-boto3-bedrock-runtime`` TypedDicts, imported for type checking only), so either transport is a
drop-in for the other.

Transports raise botocore's exceptions (``ClientError`` for an answer Bedrock refused, the connection
and credential errors) and their HTTP client's; the dispatcher maps them to ``UpstreamError`` in one place and
applies every deadline: a transport has no timeout of its own beyond connecting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypedDict, TypeVar

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import PerformanceConfigLatencyType, TraceType
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseResponseTypeDef,
        ConverseStreamOutputTypeDef,
        CountTokensInputTypeDef,
        ResponseStreamTypeDef,
    )

    from ..translate.types import ConverseParams


class InvokeOptions(TypedDict, total=False):
    """InvokeModel's optional members, under botocore's names (each travels as a header).

    ``accept`` of the streamed call is sent as ``X-Amzn-Bedrock-Accept``: the service model says so.
    """

    contentType: str
    accept: str
    trace: TraceType
    guardrailIdentifier: str
    guardrailVersion: str
    performanceConfigLatency: PerformanceConfigLatencyType
    serviceTier: str
    requestMetadata: str


@dataclass(frozen=True, slots=True)
class InvokeResponse:
    """An InvokeModel answer: the body exactly as Bedrock sent it, and its headers (lower-cased)."""

    body: bytes
    headers: Mapping[str, str]
    request_id: str | None


Event_co = TypeVar("Event_co", covariant=True)


class EventStream(Protocol[Event_co]):
    """An open upstream event stream: iterate it once; ``close()`` drops the connection at once."""

    request_id: str | None

    def __aiter__(self) -> AsyncIterator[Event_co]: ...
    def close(self) -> None: ...


class BedrockTransport(Protocol):
    """Bedrock Runtime's five model operations, for one provider and region."""

    async def converse(self, model_id: str, params: ConverseParams) -> ConverseResponseTypeDef:
        """Converse: botocore's parsed answer (blobs as bytes, ``ResponseMetadata``)."""
        ...

    async def converse_stream(
        self, model_id: str, params: ConverseParams
    ) -> EventStream[ConverseStreamOutputTypeDef]:
        """ConverseStream, once Bedrock accepted the call."""
        ...

    async def invoke(
        self, model_id: str, body: bytes, options: InvokeOptions | None = None
    ) -> InvokeResponse:
        """InvokeModel with a body sent as given."""
        ...

    async def invoke_stream(
        self, model_id: str, body: bytes, options: InvokeOptions | None = None
    ) -> EventStream[ResponseStreamTypeDef]:
        """InvokeModelWithResponseStream, once Bedrock accepted the call; chunks' ``bytes`` decoded."""
        ...

    async def count_tokens(self, model_id: str, input_: CountTokensInputTypeDef) -> int:
        """CountTokens: the input token count."""
        ...

    async def aclose(self) -> None:
        """Close every pooled connection."""
        ...

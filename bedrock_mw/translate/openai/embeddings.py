"""OpenAI ``/v1/embeddings`` ⇄ native InvokeModel bodies of Titan Embeddings v1/v2 and Cohere Embed v3.

Titan embeds one text per call, so a list of inputs becomes one request per input; Cohere takes up to
96 texts per call. The plan lists the native bodies in input order; the app runs them and hands the
responses back, in the same order, to :func:`embeddings_response`.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from ...errors import invalid
from ...routing.families import ModelFamily, NativeBody
from .params import DROPPED_PARAMS_HEADER

if TYPE_CHECKING:
    from ..native_shapes import (
        CohereEmbedRequest,
        CohereEmbedResponse,
        EmbedRequest,
        TitanEmbedRequest,
        TitanEmbedResponse,
    )
    from ..types import JSONObject
    from .shapes import Embedding, EmbeddingList

COHERE_BATCH = 96
TITAN_V2_DIMENSIONS = frozenset({256, 512, 1024})
COHERE_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})
COHERE_TRUNCATE = frozenset({"NONE", "START", "END"})
DEFAULT_COHERE_INPUT_TYPE = "search_document"
KNOWN_FIELDS = frozenset(
    {"input", "model", "dimensions", "encoding_format", "user", "input_type", "truncate"}
)

EncodingFormat = Literal["float", "base64"]


@dataclass(frozen=True, slots=True)
class EmbeddingPlan:
    """The native calls that answer one embeddings request, and how to shape the answer."""

    requests: tuple[EmbedRequest, ...]
    inputs_per_request: tuple[int, ...]
    encoding_format: EncodingFormat
    native_body: NativeBody
    notes: dict[str, str] = field(default_factory=dict)


def _titan_v2(model: str) -> bool:
    return "titan-embed-text-v2" in model.lower()


def plan_embeddings(
    body: Any, family: ModelFamily, *, model: str, drop_unsupported_params: bool = False
) -> EmbeddingPlan:
    """Validate an OpenAI embeddings body and plan the native InvokeModel calls that answer it."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    if not family.embeddings or family.native_body not in (NativeBody.TITAN_EMBED, NativeBody.COHERE_EMBED):
        raise invalid(f"model {model!r} is not an embedding model", param="model")
    titan = family.native_body == NativeBody.TITAN_EMBED
    dropped = [
        name for name in body if name not in KNOWN_FIELDS or (titan and name in ("input_type", "truncate"))
    ]

    inputs = _inputs(body.get("input"))
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise invalid("encoding_format must be float or base64", param="encoding_format")
    encoding: EncodingFormat = "base64" if body.get("encoding_format") == "base64" else "float"

    dimensions = body.get("dimensions")
    if dimensions is not None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int):
            raise invalid("dimensions must be an integer", param="dimensions")
        if titan and _titan_v2(model):
            if dimensions not in TITAN_V2_DIMENSIONS:
                raise invalid(
                    "dimensions must be 256, 512 or 1024 for Titan Text Embeddings v2", "dimensions"
                )
        else:
            dropped.append("dimensions")
    if dropped and not drop_unsupported_params:
        raise invalid(f"unsupported parameter(s) for model {model!r}: {', '.join(dropped)}", param=dropped[0])
    notes = {DROPPED_PARAMS_HEADER: ",".join(dropped)} if dropped else {}

    requests: tuple[EmbedRequest, ...]
    if titan:
        requests = tuple(_titan_body(text, model, dimensions) for text in inputs)
        sizes = tuple(1 for _ in inputs)
    else:
        input_type = body.get("input_type", DEFAULT_COHERE_INPUT_TYPE)
        if not isinstance(input_type, str) or input_type not in COHERE_INPUT_TYPES:
            raise invalid(f"input_type must be one of {', '.join(sorted(COHERE_INPUT_TYPES))}", "input_type")
        truncate = body.get("truncate")
        if truncate is not None and (not isinstance(truncate, str) or truncate not in COHERE_TRUNCATE):
            raise invalid("truncate must be NONE, START or END", param="truncate")
        batches = [inputs[i : i + COHERE_BATCH] for i in range(0, len(inputs), COHERE_BATCH)]
        requests = tuple(_cohere_body(batch, input_type, truncate) for batch in batches)
        sizes = tuple(len(batch) for batch in batches)
    return EmbeddingPlan(requests, sizes, encoding, family.native_body, notes)


def input_texts(body: JSONObject) -> list[str]:
    """The texts a request asks to embed (what a guardrail checks), validated as the plan does."""
    return _inputs(body.get("input"))


def _inputs(value: object) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise invalid("input must be a non-empty string or a non-empty array of strings", param="input")
    for i, item in enumerate(value):
        if isinstance(item, int | list):
            raise invalid("token arrays are not supported on Bedrock; send text", param=f"input[{i}]")
        if not isinstance(item, str) or not item:
            raise invalid("every input must be a non-empty string", param=f"input[{i}]")
    return value


def _titan_body(text: str, model: str, dimensions: int | None) -> TitanEmbedRequest:
    if not _titan_v2(model):
        return {"inputText": text}
    native: TitanEmbedRequest = {"inputText": text, "normalize": True}
    if dimensions is not None:
        native["dimensions"] = dimensions
    return native


def _cohere_body(texts: list[str], input_type: str, truncate: str | None) -> CohereEmbedRequest:
    native: CohereEmbedRequest = {"texts": texts, "input_type": input_type, "embedding_types": ["float"]}
    if truncate is not None:
        native["truncate"] = truncate
    return native


def encode_base64(vector: Sequence[float]) -> str:
    """Base64 of the little-endian float32 array, as the OpenAI SDK decodes ``encoding_format=base64``."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _vectors(plan: EmbeddingPlan, response: JSONObject) -> list[list[float]]:
    # The decoded answer takes the shape of the family the plan was made for.
    if plan.native_body == NativeBody.TITAN_EMBED:
        return [cast("TitanEmbedResponse", response)["embedding"]]
    embeddings = cast("CohereEmbedResponse", response)["embeddings"]
    return list(embeddings["float"] if isinstance(embeddings, dict) else embeddings)


def embeddings_response(
    plan: EmbeddingPlan,
    responses: Sequence[JSONObject],
    *,
    model: str,
    token_counts: Sequence[int | None] = (),
) -> EmbeddingList:
    """The OpenAI ``list`` of embeddings for the plan's native responses (decoded, in plan order)."""
    data: list[Embedding] = []
    for response in responses:
        for vector in _vectors(plan, response):
            embedding: list[float] | str = (
                encode_base64(vector) if plan.encoding_format == "base64" else vector
            )
            data.append({"object": "embedding", "index": len(data), "embedding": embedding})
    # Titan reports its count in the body; Cohere only in the X-Amzn-Bedrock-Input-Token-Count header.
    tokens = 0
    for i, response in enumerate(responses):
        count = response.get("inputTextTokenCount")
        if count is None and i < len(token_counts):
            count = token_counts[i]
        tokens += int(count or 0)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }

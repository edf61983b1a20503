"""Deterministic embeddings for Titan Text Embeddings v1/v2 and Cohere Embed v3.

A vector is derived from SHA-256 of (model family, text): successive digests give 32-bit words
mapped to [-1, 1); vectors are L2-normalised when the model (or `normalize`) asks for it.
Token count = words of the input text(s).
"""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Any

from .native_schema import BOOLEAN, STRINGS, check_native, integer, malformed, obj, string
from .tokens import words

TITAN_V1_SCHEMA = obj({"inputText": string()}, required=("inputText",), closed=True)
TITAN_V2_SCHEMA = obj(
    {"inputText": string(), "dimensions": integer(), "normalize": BOOLEAN, "embeddingTypes": STRINGS},
    required=("inputText",),
    closed=True,
)
COHERE_SCHEMA = obj(
    {"texts": STRINGS, "images": STRINGS, "input_type": string(), "truncate": string(),
     "embedding_types": STRINGS},
    required=("input_type",),
    closed=True,
)  # fmt: skip
TITAN_V1_DIMENSIONS = 1536
TITAN_V2_DIMENSIONS = (256, 512, 1024)
COHERE_DIMENSIONS = 1024
COHERE_MAX_TEXTS = 96
COHERE_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})
COHERE_TYPES = frozenset({"float", "int8", "uint8", "binary", "ubinary"})
Json = dict[str, Any]
_WORDS = struct.Struct(">8I")


def vector(seed: str, text: str, dimensions: int, normalize: bool) -> list[float]:
    """The deterministic embedding of `text`."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{seed}\0{counter}\0{text}".encode()).digest()
        values.extend(w / 2147483648.0 - 1.0 for w in _WORDS.unpack(digest))
        counter += 1
    values = values[:dimensions]
    if normalize:
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        values = [v / norm for v in values]
    return values


def _packed_bits(values: list[float], signed: bool) -> list[int]:
    out = []
    for i in range(0, len(values), 8):
        byte = sum(1 << (7 - j) for j, v in enumerate(values[i : i + 8]) if v > 0)
        out.append(byte - 128 if signed else byte)
    return out


def _typed(values: list[float], kind: str) -> list[float] | list[int]:
    if kind == "int8":
        return [max(-128, min(127, round(v * 127))) for v in values]
    if kind == "uint8":
        return [max(0, min(255, round((v + 1) * 127.5))) for v in values]
    if kind in ("binary", "ubinary"):
        return _packed_bits(values, signed=kind == "binary")
    return values


def titan_embedding(raw: Any, v2: bool) -> tuple[Json, int]:
    """Titan response body and its input token count."""
    body = check_native(raw, TITAN_V2_SCHEMA if v2 else TITAN_V1_SCHEMA)
    text = str(body["inputText"])
    if not v2:
        return {
            "embedding": vector("titan-v1", text, TITAN_V1_DIMENSIONS, False),
            "inputTextTokenCount": words(text),
        }, words(text)
    dimensions = body.get("dimensions", 1024)
    if dimensions not in TITAN_V2_DIMENSIONS:
        raise malformed(f"#/dimensions: {dimensions} is not a valid enum value")
    values = vector("titan-v2", text, dimensions, bool(body.get("normalize", True)))
    response: Json = {"embedding": values, "inputTextTokenCount": words(text)}
    types = body.get("embeddingTypes") or ["float"]
    response["embeddingsByType"] = {
        t: (values if t == "float" else _packed_bits(values, False)) for t in types
    }
    return response, words(text)


def cohere_embedding(raw: Any, request_id: str) -> tuple[Json, int]:
    """Cohere response body (list or by-type dict, per `embedding_types`) and its token count."""
    body = check_native(raw, COHERE_SCHEMA)
    texts = body.get("texts") or []
    if not texts or len(texts) > COHERE_MAX_TEXTS:
        raise malformed(f"#/texts: expected between 1 and {COHERE_MAX_TEXTS} items but found {len(texts)}")
    if body["input_type"] not in COHERE_INPUT_TYPES:
        raise malformed(f"#/input_type: {body['input_type']} is not a valid enum value")
    vectors = [vector("cohere-v3", str(t), COHERE_DIMENSIONS, True) for t in texts]
    kinds = body.get("embedding_types")
    response: Json = {"id": request_id, "texts": list(texts)}
    if kinds:
        bad = [k for k in kinds if k not in COHERE_TYPES]
        if bad:
            raise malformed(f"#/embedding_types/0: {bad[0]} is not a valid enum value")
        response["embeddings"] = {k: [_typed(v, k) for v in vectors] for k in kinds}
        response["response_type"] = "embeddings_by_type"
    else:
        response["embeddings"] = vectors
        response["response_type"] = "embeddings_floats"
    return response, sum(words(str(t)) for t in texts)

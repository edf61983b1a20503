"""OpenAI embeddings ⇄ Titan v1/v2 and Cohere v3 native bodies (docs/openai.md, "Embeddings")."""

from __future__ import annotations

import base64
from array import array
from typing import Any

import pytest

from bedrock_mw.errors import GatewayError
from bedrock_mw.routing.families import family_of
from bedrock_mw.translate.openai.embeddings import embeddings_response, encode_base64, plan_embeddings

TITAN_V1_ID = "amazon.titan-embed-text-v1"
TITAN_V2_ID = "amazon.titan-embed-text-v2:0"
COHERE_ID = "cohere.embed-english-v3"
TITAN = family_of(TITAN_V2_ID)
COHERE = family_of(COHERE_ID)


def plan(body: dict[str, Any], model: str = TITAN_V2_ID, **kw: Any) -> Any:
    return plan_embeddings({"model": model, **body}, family_of(model), model=model, **kw)


def test_titan_v1_one_request_per_input() -> None:
    p = plan({"input": ["a", "b"]}, TITAN_V1_ID)
    assert p.requests == ({"inputText": "a"}, {"inputText": "b"})
    assert p.inputs_per_request == (1, 1)
    assert p.encoding_format == "float"


def test_titan_v2_dimensions_and_normalize() -> None:
    p = plan({"input": "a", "dimensions": 256})
    assert p.requests == ({"inputText": "a", "normalize": True, "dimensions": 256},)
    assert plan({"input": "a"}).requests == ({"inputText": "a", "normalize": True},)


def test_cohere_batches_of_96_with_default_input_type() -> None:
    p = plan({"input": [f"t{i}" for i in range(200)]}, COHERE_ID)
    assert p.inputs_per_request == (96, 96, 8)
    assert p.requests[0]["input_type"] == "search_document"
    assert p.requests[0]["embedding_types"] == ["float"]
    assert p.requests[2]["texts"] == [f"t{i}" for i in range(192, 200)]
    assert "truncate" not in p.requests[0]


def test_cohere_input_type_and_truncate_extensions() -> None:
    p = plan({"input": "q", "input_type": "search_query", "truncate": "END"}, COHERE_ID)
    assert p.requests == (
        {"texts": ["q"], "input_type": "search_query", "embedding_types": ["float"], "truncate": "END"},
    )


REFUSED = [
    ("token array", {"input": [1, 2, 3]}, TITAN_V2_ID, "input[0]"),
    ("array of token arrays", {"input": [[1, 2]]}, TITAN_V2_ID, "input[0]"),
    ("empty string", {"input": ""}, TITAN_V2_ID, "input[0]"),
    ("empty list", {"input": []}, TITAN_V2_ID, "input"),
    ("missing input", {}, TITAN_V2_ID, "input"),
    ("bad encoding", {"input": "a", "encoding_format": "int8"}, TITAN_V2_ID, "encoding_format"),
    ("bad titan v2 dimensions", {"input": "a", "dimensions": 300}, TITAN_V2_ID, "dimensions"),
    ("dimensions on titan v1", {"input": "a", "dimensions": 256}, TITAN_V1_ID, "dimensions"),
    ("dimensions on cohere", {"input": "a", "dimensions": 256}, COHERE_ID, "dimensions"),
    ("bad cohere input_type", {"input": "a", "input_type": "x"}, COHERE_ID, "input_type"),
    ("input_type on titan", {"input": "a", "input_type": "search_query"}, TITAN_V2_ID, "input_type"),
    ("unknown field", {"input": "a", "foo": 1}, TITAN_V2_ID, "foo"),
    ("chat model", {"input": "a"}, "anthropic.claude-3-haiku-20240307-v1:0", "model"),
]


@pytest.mark.parametrize(("name", "body", "model", "param"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refusals(name: str, body: dict[str, Any], model: str, param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        plan(body, model)
    assert caught.value.http_status == 400
    assert caught.value.param == param


def test_unsupported_dimensions_dropped_on_opt_in() -> None:
    p = plan({"input": "a", "dimensions": 256}, COHERE_ID, drop_unsupported_params=True)
    assert "dimensions" not in p.requests[0]
    assert p.notes == {"x-bedrock-mw-dropped-params": "dimensions"}


def test_titan_response_with_token_counts() -> None:
    p = plan({"input": ["a", "b"]})
    out = embeddings_response(
        p,
        [
            {"embedding": [0.5, 1.0], "inputTextTokenCount": 2},
            {"embedding": [0.25, 0.0], "inputTextTokenCount": 3},
        ],
        model="titan",
    )
    assert out == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, 1.0]},
            {"object": "embedding", "index": 1, "embedding": [0.25, 0.0]},
        ],
        "model": "titan",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }


def test_cohere_response_in_both_shapes_and_header_counts() -> None:
    p = plan({"input": ["a", "b", "c"]}, COHERE_ID)
    by_type = {"embeddings": {"float": [[1.0], [2.0]]}, "response_type": "embeddings_by_type"}
    plain = {"embeddings": [[3.0]], "response_type": "embeddings_floats"}
    out = embeddings_response(p, [by_type, plain], model="cohere", token_counts=[4, None])
    assert [d["embedding"] for d in out["data"]] == [[1.0], [2.0], [3.0]]
    assert [d["index"] for d in out["data"]] == [0, 1, 2]
    assert out["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


def test_base64_is_little_endian_float32_the_sdk_decodes() -> None:
    vector = [0.5, -1.25, 3.0]
    p = plan({"input": "a", "encoding_format": "base64"})
    out = embeddings_response(p, [{"embedding": vector, "inputTextTokenCount": 1}], model="m")
    encoded = out["data"][0]["embedding"]
    assert encoded == encode_base64(vector)
    decoded = array("f")
    decoded.frombytes(base64.b64decode(encoded))  # what the openai SDK does without numpy
    assert decoded.tolist() == vector
    assert base64.b64decode(encoded)[:4] == b"\x00\x00\x00\x3f"  # 0.5 little-endian

"""InvokeModel with Amazon Nova's native body (`schemaVersion: "messages-v1"`).

AWS's Nova user guide ("Request and response schema", "Using the Invoke API") says the Invoke body is
the Converse body with binary data as base64 strings, and `inferenceConfig` spelled either
`max_new_tokens`/`top_p`/`top_k` (Nova 1) or `maxTokens`/`topP`/`topK` (Nova 2). So the body is mapped
onto Converse shapes, checked by the Converse shape rules (reported as a native "Malformed input
request"), and answered by the shared responder.

Responses: `{"output": {"message": …}, "stopReason", "usage": {"inputTokens", "outputTokens",
"totalTokens", "cacheReadInputTokenCount", "cacheWriteInputTokenCount"}}`. Stream chunks are the
ConverseStream events as one-key objects (`{"contentBlockDelta": {...}}`), the last (`metadata`)
carrying `amazon-bedrock-invocationMetrics`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .converse_stream import converse_stream_events
from .errors import BedrockError
from .native_schema import STRINGS, arr, check_native, integer, malformed, number, obj, string
from .responder import Answer
from .shapes import check_request_shape

SCHEMA_VERSION = "messages-v1"
NOVA_SCHEMA = obj(
    {
        "schemaVersion": string(SCHEMA_VERSION),
        "system": arr(obj()),
        "messages": arr(
            obj({"role": string("user", "assistant"), "content": arr(obj())}, required=("role", "content"))
        ),
        "toolConfig": obj(),
        "inferenceConfig": obj(
            {
                "max_new_tokens": integer(minimum=1),
                "maxTokens": integer(minimum=1),
                "temperature": number(0, 1),
                "top_p": number(0, 1),
                "topP": number(0, 1),
                "top_k": integer(minimum=0),
                "topK": integer(minimum=0),
                "stopSequences": STRINGS,
                "reasoningConfig": obj(),
            },
        ),
    },
    required=("messages",),
    closed=True,
)
Json = dict[str, Any]


def nova_to_converse(raw: Any) -> Json:
    """A Converse-shaped request equivalent to a Nova native body."""
    body = check_native(raw, NOVA_SCHEMA)
    request: Json = {"messages": body["messages"]}
    for key in ("system", "toolConfig"):
        if key in body:
            request[key] = body[key]
    config = body.get("inferenceConfig") or {}
    inference: Json = {}
    for converse_key, names in (
        ("maxTokens", ("maxTokens", "max_new_tokens")),
        ("temperature", ("temperature",)),
        ("topP", ("topP", "top_p")),
        ("stopSequences", ("stopSequences",)),
    ):
        value = next((config[n] for n in names if n in config), None)
        if value is not None:
            inference[converse_key] = value
    if inference:
        request["inferenceConfig"] = inference
    try:
        check_request_shape("converse", request)
    except BedrockError as error:
        raise malformed(error.message.rstrip(".")) from None
    return request


def nova_response(answer: Answer) -> Json:
    """The non-streaming Nova body."""
    return {
        "output": {"message": {"role": "assistant", "content": answer.content}},
        "stopReason": answer.stop_reason,
        "usage": {
            "inputTokens": answer.usage["inputTokens"],
            "outputTokens": answer.usage["outputTokens"],
            "totalTokens": answer.usage["totalTokens"],
            # An input a guardrail blocked never reached the model or its cache: no cache counts.
            "cacheReadInputTokenCount": answer.usage.get("cacheReadInputTokens", 0),
            "cacheWriteInputTokenCount": answer.usage.get("cacheWriteInputTokens", 0),
        },
    }


def nova_stream(answer: Answer, metrics: Json) -> Iterator[Json]:
    """Nova's native stream chunks; the last carries Bedrock's invocation metrics."""
    events = list(converse_stream_events(answer, metrics["invocationLatency"]))
    for index, (name, payload) in enumerate(events):
        chunk: Json = {name: payload}
        if name == "metadata":
            chunk = {name: {"usage": payload["usage"], "metrics": {}, "trace": {}}}
        if index == len(events) - 1:
            chunk["amazon-bedrock-invocationMetrics"] = metrics
        yield chunk

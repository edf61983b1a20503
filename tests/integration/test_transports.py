"""The dispatcher over both Bedrock transports, against the emulator over real sockets.

Every behaviour runs on the lean client over each of its HTTP clients (aiohttp, pyreqwest) and on
the aiobotocore adapter; the equivalence tests hold the lean client's answers to aiobotocore's, the
reference.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer
from emulator_providers import BEARER, SIGV4, TRANSPORTS, emulator_provider

from bedrock_mw.config import ProviderConfig
from bedrock_mw.dispatch import Destination, Dispatcher, LeanTransport, UpstreamError
from bedrock_mw.testing import BedrockEmulator, Fault

pytestmark = pytest.mark.anyio

NOVA = "amazon.nova-lite-v1:0"
SONNET4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
TITAN = "amazon.titan-text-express-v1"
EMBED = "amazon.titan-embed-text-v2:0"
PROFILE_ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
)
ANTHROPIC_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hey you"}],
}


def provider_config(
    emu: BedrockEmulator, transport: str, *, bearer: bool = False, **settings: Any
) -> ProviderConfig:
    """A provider on the emulator; ``transport`` is ``lean/<http client>``, ``lean`` or ``aiobotocore``."""
    auth = BEARER if bearer else SIGV4
    return emulator_provider(f"emulator-{transport}", auth, emu.endpoint_url, transport, **settings)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(bedrock_emulator: BedrockEmulator, transport: str) -> Any:
    provider = provider_config(bedrock_emulator, transport)
    return lambda model_id: Destination(provider, "us-east-1", model_id)


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"text": text}]}]}


async def drain(stream: Any) -> list[Any]:
    try:
        return [event async for event in stream]
    finally:
        stream.close()


# -- the five operations -------------------------------------------------------------------------------
async def test_converse_answers_with_botocores_shape(dispatcher: Dispatcher, target: Any) -> None:
    answer = await dispatcher.converse(target(NOVA), user("hello there"))
    assert answer["output"]["message"]["content"] == [{"text": "Echo: hello there"}]
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"]["outputTokens"] == 3
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["ResponseMetadata"]["RequestId"]


async def test_converse_sends_blobs_that_bedrock_accepts(
    dispatcher: Dispatcher, target: Any, bedrock_emulator: BedrockEmulator
) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    request = {
        "messages": [
            {
                "role": "user",
                "content": [{"image": {"format": "png", "source": {"bytes": png}}}, {"text": "hi"}],
            }
        ]
    }
    answer = await dispatcher.converse(target(NOVA), request)
    assert answer["stopReason"] == "end_turn"
    sent = bedrock_emulator.log.entries[-1].body
    assert base64.b64decode(sent["messages"][0]["content"][0]["image"]["source"]["bytes"]) == png


async def test_converse_stream_yields_each_event(dispatcher: Dispatcher, target: Any) -> None:
    stream = await dispatcher.converse_stream(target(SONNET4), user("emit 5 events"))
    assert stream.request_id
    events = await drain(stream)
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-1] == "metadata"
    assert kinds.count("contentBlockDelta") == 5


async def test_invoke_model_returns_the_native_body_and_token_headers(
    dispatcher: Dispatcher, target: Any
) -> None:
    body = {"inputText": "User: what is up\nBot:", "textGenerationConfig": {"maxTokenCount": 100}}
    result = await dispatcher.invoke_model(target(TITAN), body)
    assert result.body["results"][0]["outputText"] == "Echo: what is up"
    assert (result.input_tokens, result.output_tokens) == (5, 4)
    assert result.request_id


async def test_invoke_model_serves_embeddings(dispatcher: Dispatcher, target: Any) -> None:
    result = await dispatcher.invoke_model(target(EMBED), {"inputText": "vector", "dimensions": 256})
    assert len(result.body["embedding"]) == 256
    assert result.input_tokens == result.body["inputTextTokenCount"]


async def test_invoke_model_sends_a_bytes_body_as_given(
    dispatcher: Dispatcher, target: Any, bedrock_emulator: BedrockEmulator
) -> None:
    raw = b'{"inputText":  "spaced  out"}'
    result = await dispatcher.invoke_model(target(EMBED), raw)
    assert len(result.body["embedding"]) == 1024
    assert bedrock_emulator.log.entries[-1].body == {"inputText": "spaced  out"}


async def test_invoke_model_stream_decodes_chunk_bytes(dispatcher: Dispatcher, target: Any) -> None:
    stream = await dispatcher.invoke_model_stream(target(SONNET4), ANTHROPIC_BODY)
    events = await drain(stream)
    assert all(isinstance(e["chunk"]["bytes"], bytes) for e in events)
    chunks = [orjson.loads(e["chunk"]["bytes"]) for e in events]
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert text == "Echo: hey you"


async def test_count_tokens_counts_a_converse_input(dispatcher: Dispatcher, target: Any) -> None:
    counted = await dispatcher.count_tokens(
        target("anthropic.claude-sonnet-4-20250514-v1:0"), {"converse": user("count these words please")}
    )
    assert counted > 0


async def test_invoke_options_travel_as_the_models_headers(
    dispatcher: Dispatcher, target: Any, bedrock_emulator: BedrockEmulator
) -> None:
    await dispatcher.invoke_model(target(SONNET4), ANTHROPIC_BODY, {"trace": "ENABLED"})
    assert bedrock_emulator.log.entries[-1].headers.get("x-amzn-bedrock-trace") == "ENABLED"
    stream = await dispatcher.invoke_model_stream(target(SONNET4), ANTHROPIC_BODY, {"trace": "ENABLED"})
    await drain(stream)
    headers = bedrock_emulator.log.entries[-1].headers
    assert headers.get("x-amzn-bedrock-trace") == "ENABLED"
    # The streamed call's ``accept`` member is X-Amzn-Bedrock-Accept: Accept is the event stream.
    assert headers.get("x-amzn-bedrock-accept") == "application/json"


async def test_an_arn_model_id_reaches_bedrock_intact(
    dispatcher: Dispatcher, target: Any, bedrock_emulator: BedrockEmulator
) -> None:
    await dispatcher.converse(target(PROFILE_ARN), user("arn"))
    assert bedrock_emulator.log.entries[-1].model_id == PROFILE_ARN


async def test_bearer_keys_authenticate_either_transport(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator, transport: str
) -> None:
    provider = provider_config(bedrock_emulator, transport, bearer=True)
    answer = await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("bearer"))
    assert answer["stopReason"] == "end_turn"
    assert bedrock_emulator.log.entries[-1].auth_kind == "bearer"


# -- failures ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["converse", "converse_stream", "invoke_model", "invoke_model_stream"])
async def test_a_refusal_is_an_upstream_error_with_status_and_retry_after(
    dispatcher: Dispatcher, target: Any, bedrock_emulator: BedrockEmulator, operation: str
) -> None:
    bedrock_emulator.faults.add(Fault(error="ThrottlingException", status=429, retry_after="7"))
    call = {
        "converse": lambda: dispatcher.converse(target(NOVA), user("x")),
        "converse_stream": lambda: dispatcher.converse_stream(target(NOVA), user("x")),
        "invoke_model": lambda: dispatcher.invoke_model(target(SONNET4), ANTHROPIC_BODY),
        "invoke_model_stream": lambda: dispatcher.invoke_model_stream(target(SONNET4), ANTHROPIC_BODY),
    }[operation]
    with pytest.raises(UpstreamError) as caught:
        await call()
    err = caught.value
    assert (err.code, err.status, err.retry_after, err.mid_stream) == ("ThrottlingException", 429, 7.0, False)
    assert err.request_id


async def test_an_exception_event_mid_stream_is_a_mid_stream_upstream_error(
    dispatcher: Dispatcher, target: Any, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.faults.add(Fault.stream_error(after=2))
    stream = await dispatcher.converse_stream(target(SONNET4), user("emit 5 events"))
    with pytest.raises(UpstreamError) as caught:
        await drain(stream)
    assert (caught.value.code, caught.value.status, caught.value.mid_stream) == (
        "ModelStreamErrorException",
        424,
        True,
    )


async def test_an_unreachable_endpoint_is_a_connection_error(dispatcher: Dispatcher, transport: str) -> None:
    provider = emulator_provider("closed", BEARER, "http://127.0.0.1:9", transport)
    with pytest.raises(UpstreamError) as caught:
        await dispatcher.converse(Destination(provider, "us-east-1", NOVA), user("x"))
    assert (caught.value.code, caught.value.status) == ("ConnectionError", 502)


# -- one pool per (provider, region) --------------------------------------------------------------------
async def test_one_transport_per_provider_and_region(dispatcher: Dispatcher, target: Any) -> None:
    await dispatcher.converse(target(NOVA), user("a"))
    await dispatcher.invoke_model(target(EMBED), {"inputText": "b"})
    await drain(await dispatcher.converse_stream(target(NOVA), user("c")))
    assert len(dispatcher.pool) == 1
    other_region = Destination(target(NOVA).provider, "us-west-2", NOVA)
    await dispatcher.converse(other_region, user("d"))
    assert len(dispatcher.pool) == 2


async def test_the_lean_transport_is_the_raw_paths_client(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator
) -> None:
    provider = provider_config(bedrock_emulator, "lean")
    transport = await dispatcher.pool.transport(provider, "us-east-1")
    assert isinstance(transport, LeanTransport)
    assert await dispatcher.pool.lean(provider, "us-east-1") is transport


# -- the lean client matches aiobotocore, the reference ----------------------------------------------
def _without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("ResponseMetadata", "metrics")}


async def test_lean_and_aiobotocore_answers_are_equal(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator
) -> None:
    lean = provider_config(bedrock_emulator, "lean")
    boto = provider_config(bedrock_emulator, "aiobotocore")

    async def both(call: Any) -> tuple[Any, Any]:
        return await call(Destination(lean, "us-east-1", SONNET4)), await call(
            Destination(boto, "us-east-1", SONNET4)
        )

    plain = await both(lambda t: dispatcher.converse(t, user("emit 7 words")))
    assert _without_metadata(plain[0]) == _without_metadata(plain[1])
    streamed = await both(lambda t: _streamed(dispatcher.converse_stream(t, user("emit 7 words"))))
    assert _no_latency(streamed[0]) == _no_latency(streamed[1])
    native = await both(lambda t: _streamed(dispatcher.invoke_model_stream(t, ANTHROPIC_BODY)))
    assert _no_latency(native[0]) == _no_latency(native[1])
    invoked = await both(lambda t: dispatcher.invoke_model(t, ANTHROPIC_BODY))
    assert invoked[0].body | {"id": ""} == invoked[1].body | {"id": ""}
    assert invoked[0].input_tokens == invoked[1].input_tokens


async def _streamed(opening: Any) -> list[Any]:
    return await drain(await opening)


def _no_latency(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without what differs between two calls (latencies) or between parsers (padding)."""
    comparable = []
    for event in events:
        ((kind, payload),) = event.items()
        if kind == "metadata":
            continue
        # Bedrock pads stream events with a "p" member its model does not define: botocore's
        # model-driven parser drops it, the lean client leaves it (the transcoders read named members).
        payload = {k: v for k, v in payload.items() if k != "p"}
        if kind == "chunk":
            chunk = orjson.loads(payload["bytes"])
            chunk.pop("amazon-bedrock-invocationMetrics", None)
            payload["bytes"] = chunk
        comparable.append({kind: payload})
    return comparable


# -- the raw path: bytes in, Bedrock's bytes and frames out -----------------------------------------------
async def test_send_raw_returns_the_answer_bytes_untouched(
    dispatcher: Dispatcher, target: Any, bedrock_emulator: BedrockEmulator
) -> None:
    body = orjson.dumps({"inputText": "vector", "dimensions": 256})
    headers = {
        "accept": "application/json",
        "content-type": "application/json",
        "x-amzn-bedrock-trace": "ENABLED",
    }
    answer = await dispatcher.send_raw(target(EMBED), "InvokeModel", body, headers)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.request_id
    assert len(orjson.loads(answer.body)["embedding"]) == 256
    entry = bedrock_emulator.log.entries[-1]
    assert entry.body == {"inputText": "vector", "dimensions": 256}
    assert (entry.headers["content-type"], entry.headers["x-amzn-bedrock-trace"]) == (
        "application/json",
        "ENABLED",
    )


async def test_open_raw_relays_whole_event_stream_frames(dispatcher: Dispatcher, target: Any) -> None:
    body = orjson.dumps(user("emit 5 events"))
    stream = await dispatcher.open_raw(target(SONNET4), "ConverseStream", body)
    assert stream.headers["content-type"] == "application/vnd.amazon.eventstream"
    frames = await drain(stream)
    decoded = []
    for frame in frames:  # each item is exactly one frame: botocore decodes it alone
        buffer = EventStreamBuffer()
        buffer.add_data(frame)
        (message,) = list(buffer)
        decoded.append(message.headers[":event-type"])
    assert decoded.count("contentBlockDelta") == 5 and decoded[-1] == "metadata"


async def test_a_raw_refusal_is_an_upstream_error(
    dispatcher: Dispatcher, target: Any, bedrock_emulator: BedrockEmulator
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await dispatcher.send_raw(target(TITAN), "InvokeModel", b'{"inputText": "x", "bogus": 1}')
    assert (caught.value.code, caught.value.status) == ("ValidationException", 400)
    bedrock_emulator.faults.add(Fault.throttling())
    with pytest.raises(UpstreamError) as streamed:
        await dispatcher.open_raw(
            target(SONNET4), "InvokeModelWithResponseStream", orjson.dumps(ANTHROPIC_BODY)
        )
    assert (streamed.value.code, streamed.value.status) == ("ThrottlingException", 429)


async def test_the_lean_clients_send_hands_back_a_refusal_as_is(
    dispatcher: Dispatcher, bedrock_emulator: BedrockEmulator
) -> None:
    lean = await dispatcher.pool.lean(provider_config(bedrock_emulator, "aiobotocore"), "us-east-1")
    answer = await lean.send("InvokeModel", TITAN, b'{"inputText": "x", "bogus": 1}')
    assert answer.status == 400
    assert answer.headers["x-amzn-errortype"].startswith("ValidationException")
    assert "extraneous key [bogus]" in orjson.loads(answer.body)["message"]

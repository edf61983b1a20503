"""ConverseStream and InvokeModelWithResponseStream, decoded by botocore itself."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest
from botocore.exceptions import EventStreamError

from bedrock_mw.testing import BedrockEmulator, Fault

from .conftest import ClientFactory, user

SONNET4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"
TOOL = {
    "toolSpec": {
        "name": "lookup",
        "inputSchema": {
            "json": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
        },
    }
}
pytestmark = pytest.mark.anyio


async def stream_events(make_client: ClientFactory, **kwargs: Any) -> list[dict[str, Any]]:
    async with make_client() as client:
        response = await client.converse_stream(**kwargs)
        return [event async for event in response["stream"]]


async def test_converse_stream_event_order_and_text(make_client: ClientFactory) -> None:
    events = await stream_events(make_client, modelId=SONNET4, messages=[user("one two three four five")])
    names = [next(iter(e)) for e in events]
    assert names[0] == "messageStart" and names[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "Echo: one two three four five"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 6


async def test_emit_n_events_gives_exactly_n_text_deltas(make_client: ClientFactory) -> None:
    events = await stream_events(make_client, modelId=SONNET4, messages=[user("emit 40 events")])
    assert sum(1 for e in events if "contentBlockDelta" in e) == 40


async def test_tool_use_and_reasoning_stream(make_client: ClientFactory) -> None:
    events = await stream_events(
        make_client,
        modelId=SONNET4,
        messages=[user("use lookup")],
        toolConfig={"tools": [TOOL], "toolChoice": {"tool": {"name": "lookup"}}},
        additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 2000}},
    )
    deltas = [e["contentBlockDelta"] for e in events if "contentBlockDelta" in e]
    assert "text" in deltas[0]["delta"]["reasoningContent"]
    assert any("signature" in d["delta"].get("reasoningContent", {}) for d in deltas)
    starts = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
    assert starts == [
        {
            "contentBlockIndex": 1,
            "start": {"toolUse": {"toolUseId": starts[0]["start"]["toolUse"]["toolUseId"], "name": "lookup"}},
        }
    ]
    tool_json = "".join(d["delta"]["toolUse"]["input"] for d in deltas if "toolUse" in d["delta"])
    assert json.loads(tool_json) == {"q": "example"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


STREAM_ERRORS = [
    "ThrottlingException",
    "ModelStreamErrorException",
    "InternalServerException",
    "ServiceUnavailableException",
    "ValidationException",
]


@pytest.mark.parametrize("error", STREAM_ERRORS)
async def test_exception_frame_mid_stream_raises_event_stream_error(
    make_client: ClientFactory, emu: BedrockEmulator, error: str
) -> None:
    emu.faults.add(Fault.stream_error(after=3, error=error, message="boom", times=1))
    received: list[dict[str, Any]] = []
    with pytest.raises(EventStreamError) as info:
        async with make_client() as client:
            response = await client.converse_stream(modelId=SONNET4, messages=[user("emit 20 words")])
            async for event in response["stream"]:
                received.append(event)
    assert len(received) == 3
    assert info.value.response["Error"] == {"Code": error[0].lower() + error[1:], "Message": "boom"}


async def test_open_streams_drop_to_zero_when_client_closes_early(
    make_client: ClientFactory, emu: BedrockEmulator
) -> None:
    emu.faults.add(Fault(event_delay_s=0.05, operation="converse-stream"))
    async with make_client() as client:
        response = await client.converse_stream(modelId=SONNET4, messages=[user("emit 500 events")])
        stream = response["stream"]
        async for _event in stream:
            break
        assert emu.open_streams == 1
        stream.close()  # releases the connection mid-stream, as a client giving up does
    deadline = time.monotonic() + 5
    # open_streams lives on the emulator's thread; poll it rather than wait on an event.
    while emu.open_streams and time.monotonic() < deadline:  # noqa: ASYNC110
        await anyio.sleep(0.02)
    assert emu.open_streams == 0
    assert emu.state.counters["streams_aborted"] == 1


async def test_invoke_stream_anthropic_native_events(make_client: ClientFactory) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hey you"}],
    }
    async with make_client() as client:
        response = await client.invoke_model_with_response_stream(modelId=SONNET4, body=json.dumps(body))
        chunks = [json.loads(e["chunk"]["bytes"]) async for e in response["body"]]
    types = [c["type"] for c in chunks]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert text == "Echo: hey you"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 3


async def test_invoke_stream_titan_and_llama_chunks(make_client: ClientFactory) -> None:
    async with make_client() as client:
        titan = await client.invoke_model_with_response_stream(
            modelId="amazon.titan-text-express-v1", body=json.dumps({"inputText": "User: tell me\nBot:"})
        )
        titan_chunks = [json.loads(e["chunk"]["bytes"]) async for e in titan["body"]]
        llama = await client.invoke_model_with_response_stream(
            modelId="meta.llama3-8b-instruct-v1:0", body=json.dumps({"prompt": "say this", "max_gen_len": 2})
        )
        llama_chunks = [json.loads(e["chunk"]["bytes"]) async for e in llama["body"]]
    assert "".join(c["outputText"] for c in titan_chunks) == "Echo: tell me"
    assert titan_chunks[-1]["completionReason"] == "FINISH"
    assert "amazon-bedrock-invocationMetrics" in titan_chunks[-1]
    assert "".join(c["generation"] for c in llama_chunks) == "Echo: say"
    assert llama_chunks[-1]["stop_reason"] == "length"

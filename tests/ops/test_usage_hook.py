"""The usage hook gets the token counts the client saw, cache tokens included, streamed or not."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_mw.testing import BedrockEmulator
from bedrock_mw.translate.types import TokenUsage
from bedrock_mw.usage import UsageRecord

from .conftest import MODEL, MODEL_ID, ServedGateway, ServeGateway
from .sdk import SDKClients

pytestmark = pytest.mark.anyio

# Long enough to be worth caching; the emulator has no minimum prefix length.
SYSTEM = "You are a careful assistant. " * 20


def anthropic_request(text: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 200,
        "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": text}],
    }


def openai_request(text: str) -> dict[str, Any]:
    system = {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
    return {
        "model": MODEL,
        "messages": [{"role": "system", "content": [system]}, {"role": "user", "content": text}],
    }


def assert_record(record: UsageRecord, *, stream: bool, endpoint: str) -> None:
    assert record.status == 200 and record.error_type is None
    assert (record.stream, record.endpoint, record.key_id) == (stream, endpoint, "test")
    assert (record.model, record.provider_id, record.region, record.model_id) == (
        MODEL,
        "emulator",
        "us-east-1",
        MODEL_ID,
    )
    assert record.attempts == 1
    assert record.latency_s > 0
    if stream:
        assert record.time_to_first_token_s is not None
        assert 0 < record.time_to_first_token_s <= record.latency_s
    else:
        assert record.time_to_first_token_s is None


async def test_anthropic_usage_matches_the_hook_plain_and_streamed_with_cache_tokens(
    serve: ServeGateway, sdk: SDKClients, bedrock_emulator: BedrockEmulator
) -> None:
    gw: ServedGateway = serve()
    client = sdk.anthropic(gw)

    written = await client.messages.create(**anthropic_request("first question"))
    async with client.messages.stream(**anthropic_request("emit 30 words")) as stream:
        read = await stream.get_final_message()
    records = await gw.usage.wait_for(2)

    # The first call wrote the cached prefix; the streamed second one read it.
    assert written.usage.cache_creation_input_tokens and not written.usage.cache_read_input_tokens
    assert read.usage.cache_read_input_tokens == written.usage.cache_creation_input_tokens
    assert read.usage.output_tokens == 30
    for message, record, stream_ in ((written, records[0], False), (read, records[1], True)):
        assert_record(record, stream=stream_, endpoint="messages")
        assert record.usage == TokenUsage(
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            cache_read_input_tokens=message.usage.cache_read_input_tokens or 0,
            cache_write_input_tokens=message.usage.cache_creation_input_tokens or 0,
        )
    # Claude's default API: native InvokeModel, whose stream says the input counts up front.
    assert [e.operation for e in bedrock_emulator.log.entries] == ["invoke", "invoke-with-response-stream"]


async def test_openai_usage_matches_the_hook_plain_and_streamed_with_cache_tokens(
    serve: ServeGateway, sdk: SDKClients
) -> None:
    gw = serve()
    client = sdk.openai(gw)

    written = await client.chat.completions.create(**openai_request("first question"))
    chunks = [
        chunk
        async for chunk in await client.chat.completions.create(
            **openai_request("emit 30 words"), stream=True, stream_options={"include_usage": True}
        )
    ]
    read = chunks[-1].usage
    records = await gw.usage.wait_for(2)

    assert written.usage is not None and read is not None
    assert written.usage.prompt_tokens_details is not None and read.prompt_tokens_details is not None
    assert written.usage.prompt_tokens_details.cached_tokens == 0
    assert read.prompt_tokens_details.cached_tokens > 0
    assert read.completion_tokens == 30
    for usage, record, stream_ in ((written.usage, records[0], False), (read, records[1], True)):
        assert_record(record, stream=stream_, endpoint="chat_completions")
        u = record.usage
        # OpenAI counts cached tokens inside prompt_tokens; the record keeps Bedrock's split.
        assert usage.prompt_tokens == u.input_tokens + u.cache_read_input_tokens + u.cache_write_input_tokens
        assert usage.completion_tokens == u.output_tokens
        assert usage.total_tokens == usage.prompt_tokens + u.output_tokens
        assert usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == u.cache_read_input_tokens
        assert (usage.model_extra or {}).get("cache_creation_input_tokens") == u.cache_write_input_tokens
    assert records[0].usage.cache_write_input_tokens == records[1].usage.cache_read_input_tokens > 0


async def test_an_embeddings_call_records_its_input_tokens(serve: ServeGateway, sdk: SDKClients) -> None:
    gw = serve()
    result = await sdk.openai(gw).embeddings.create(
        model="amazon.titan-embed-text-v2:0", input=["one two three", "four five"]
    )
    (record,) = await gw.usage.wait_for(1)
    assert record.endpoint == "embeddings"
    assert record.usage == TokenUsage(input_tokens=result.usage.prompt_tokens)
    assert record.usage.input_tokens == 5
    assert record.attempts == 2  # one InvokeModel per input


async def test_claude_codes_session_and_user_reach_the_usage_record(
    serve: ServeGateway, sdk: SDKClients
) -> None:
    gw = serve()
    client = sdk.anthropic(gw)
    user_id = '{"device_id":"d1","account_uuid":"a1","session_id":"s-from-metadata"}'
    request = dict(anthropic_request("hello"), metadata={"user_id": user_id})
    await client.messages.create(**request, extra_headers={"X-Claude-Code-Session-Id": "s-from-header"})
    await client.messages.create(**request)  # no header: the session named inside user_id
    await client.messages.create(**anthropic_request("hello"))
    with_header, from_metadata, anonymous = await gw.usage.wait_for(3)
    assert (with_header.session_id, with_header.end_user) == ("s-from-header", user_id)
    assert (from_metadata.session_id, from_metadata.end_user) == ("s-from-metadata", user_id)
    assert (anonymous.session_id, anonymous.end_user) == (None, None)


async def test_openais_user_field_is_the_end_user(serve: ServeGateway, sdk: SDKClients) -> None:
    gw = serve()
    await sdk.openai(gw).chat.completions.create(**openai_request("hello"), user="alice@example.com")
    (record,) = await gw.usage.wait_for(1)
    assert record.end_user == "alice@example.com"

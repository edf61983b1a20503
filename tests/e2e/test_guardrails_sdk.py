"""Bedrock Guardrails through the gateway: the official SDKs, real sockets, the emulator's guardrails."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

from bedrock_mw.testing import BedrockEmulator, EmulatedGuardrail
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config
from bedrock_mw.usage import UsageRecord

from .conftest import GatewayFactory, SDKClients, ServedApp

pytestmark = pytest.mark.anyio

MODEL = "claude-haiku-4-5"
BLOCKED = "Sorry, the model cannot answer this question."


def _config(emulator: BedrockEmulator, **key: Any) -> dict[str, Any]:
    """The emulator config with ``key`` settings; /v1/messages on Converse unless a test says otherwise."""
    cfg = emulator_gateway_config(emulator)
    cfg["virtual_keys"][0].update({"messages_api": "converse", **key})
    return cfg


@pytest.fixture
def words_guardrail(bedrock_emulator: BedrockEmulator) -> EmulatedGuardrail:
    return bedrock_emulator.guardrails.add(
        EmulatedGuardrail("k7qz2m9x4abc", blocked_words=("forbidden",), mask_regexes={"EMAIL": r"\S+@\S+"})
    )


@pytest.fixture
def guarded(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator, words_guardrail: EmulatedGuardrail
) -> tuple[ServedApp, list[UsageRecord]]:
    records: list[UsageRecord] = []

    async def hook(record: UsageRecord) -> None:
        records.append(record)

    cfg = _config(
        bedrock_emulator, guardrail={"identifier": "k7qz2m9x4abc", "version": "1", "trace": "enabled"}
    )
    return serve_gateway(cfg, usage_hook=hook), records


async def test_an_input_intervention_is_an_anthropic_refusal(
    sdk: SDKClients, guarded: tuple[ServedApp, list[UsageRecord]], bedrock_emulator: BedrockEmulator
) -> None:
    gateway, records = guarded
    message = await sdk.anthropic(gateway).messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "tell me the forbidden thing"}]
    )
    parsed = await message.parse()
    assert parsed.stop_reason == "refusal"
    assert parsed.content[0].text == BLOCKED  # type: ignore[union-attr]
    assert message.headers["x-bedrock-mw-guardrail"] == "k7qz2m9x4abc:1"
    assert message.headers["x-bedrock-mw-guardrail-action"] == "INTERVENED"
    sent = bedrock_emulator.log.for_operation("converse")[-1].body["guardrailConfig"]
    assert sent == {"guardrailIdentifier": "k7qz2m9x4abc", "guardrailVersion": "1", "trace": "enabled"}
    trace = (parsed.model_extra or {})["amazon-bedrock-trace"]["guardrail"]
    assert trace["inputAssessment"]["k7qz2m9x4abc"]["wordPolicy"]["customWords"][0]["match"] == "forbidden"
    assert records[-1].guardrail == "k7qz2m9x4abc:1"
    assert records[-1].guardrail_action == "INTERVENED"
    assert records[-1].guardrail_trace == trace


async def test_a_streamed_intervention_is_an_anthropic_refusal(
    sdk: SDKClients, guarded: tuple[ServedApp, list[UsageRecord]], bedrock_emulator: BedrockEmulator
) -> None:
    gateway, records = guarded
    async with sdk.anthropic(gateway).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "tell me the forbidden thing"}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "refusal"
    assert final.content[0].text == BLOCKED  # type: ignore[union-attr]
    sent = bedrock_emulator.log.for_operation("converse-stream")[-1].body["guardrailConfig"]
    assert sent["guardrailIdentifier"] == "k7qz2m9x4abc"
    assert records[-1].stream and records[-1].guardrail_action == "INTERVENED"
    assert records[-1].guardrail_trace["actionReason"] == "Guardrail blocked."


@pytest.mark.parametrize("stream", [False, True])
async def test_an_intervention_is_an_openai_content_filter(
    sdk: SDKClients, guarded: tuple[ServedApp, list[UsageRecord]], stream: bool
) -> None:
    gateway, records = guarded
    client = sdk.openai(gateway)
    messages: Any = [{"role": "user", "content": "tell me the forbidden thing"}]
    if stream:
        chunks = [
            c async for c in await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        ]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        traced = [c for c in chunks if not c.choices and (c.model_extra or {}).get("amazon-bedrock-trace")]
        assert traced, "the trace travels in a chunk with no choices"
    else:
        completion = await client.chat.completions.create(model=MODEL, messages=messages)
        text = completion.choices[0].message.content or ""
        reasons = [completion.choices[0].finish_reason]
        assert (completion.model_extra or {})["amazon-bedrock-trace"]["guardrail"]["actionReason"]
    assert text == BLOCKED
    assert reasons == ["content_filter"]
    assert records[-1].guardrail_action == "INTERVENED"


async def test_an_output_intervention_blocks_what_the_model_said(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
) -> None:
    bedrock_emulator.guardrails.add(
        EmulatedGuardrail(
            "outonly1", blocked_words=("secret",), check_input=False, blocked_output_message="Nope."
        )
    )
    gateway = serve_gateway(
        _config(bedrock_emulator, guardrail={"identifier": "outonly1", "version": "DRAFT"})
    )
    message = await sdk.anthropic(gateway).messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "say secret"}]
    )
    assert message.stop_reason == "refusal"
    assert message.content[0].text == "Nope."  # type: ignore[union-attr]
    assert "amazon-bedrock-trace" not in (message.model_extra or {})  # trace off by default


@pytest.mark.parametrize("stream", [False, True])
async def test_pii_in_the_output_is_masked(
    sdk: SDKClients, guarded: tuple[ServedApp, list[UsageRecord]], stream: bool
) -> None:
    gateway, _ = guarded
    client = sdk.openai(gateway)
    messages: Any = [{"role": "user", "content": "my address is ann@example.com"}]
    if stream:
        chunks = [
            c async for c in await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        ]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        completion = await client.chat.completions.create(model=MODEL, messages=messages)
        text = completion.choices[0].message.content or ""
    assert text == "Echo: my address is {EMAIL}"


async def test_a_key_requiring_a_guardrail_is_refused_without_one_before_bedrock(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    gateway = serve_gateway(
        _config(bedrock_emulator, guardrail={"required": True}, allow_request_guardrail=True)
    )
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await sdk.anthropic(gateway).messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello"}]
        )
    assert "requires a Bedrock guardrail" in str(refused.value)
    with pytest.raises(openai.PermissionDeniedError) as refused_openai:
        await sdk.openai(gateway).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}]
        )
    assert refused_openai.value.code == "guardrail_required"
    assert len(bedrock_emulator.log) == 0  # refused before Bedrock


async def test_a_request_header_supplies_the_guardrail_a_key_requires(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    words_guardrail: EmulatedGuardrail,
) -> None:
    gateway = serve_gateway(
        _config(bedrock_emulator, guardrail={"required": True}, allow_request_guardrail=True)
    )
    client = sdk.anthropic(gateway, default_headers={"x-bedrock-mw-guardrail": "k7qz2m9x4abc:1"})
    message = await client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )
    assert message.stop_reason == "end_turn"
    sent = bedrock_emulator.log.for_operation("converse")[-1].body["guardrailConfig"]
    assert sent["guardrailIdentifier"] == "k7qz2m9x4abc" and sent["guardrailVersion"] == "1"


async def test_the_request_header_is_refused_on_a_key_that_does_not_allow_it(
    sdk: SDKClients, gateway: ServedApp, bedrock_emulator: BedrockEmulator
) -> None:
    client = sdk.openai(gateway, default_headers={"x-bedrock-mw-guardrail": "k7qz2m9x4abc:1"})
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.code == "guardrail_not_allowed"
    assert len(bedrock_emulator.log) == 0


async def test_an_alias_switches_the_guardrail_off_or_swaps_it(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    words_guardrail: EmulatedGuardrail,
) -> None:
    bedrock_emulator.guardrails.add(EmulatedGuardrail("p3r8t1w6yq0d"))
    target = "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    cfg = _config(
        bedrock_emulator,
        guardrail={"identifier": "k7qz2m9x4abc", "version": "1"},
        model_aliases={
            "haiku": target,
            "haiku-strict": {"model": target, "guardrail": {"identifier": "p3r8t1w6yq0d", "version": "2"}},
            "haiku-open": {"model": target, "guardrail": None},
        },
    )
    client = sdk.anthropic(serve_gateway(cfg))
    for alias in ("haiku", "haiku-strict", "haiku-open"):
        await client.messages.create(model=alias, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    sent = [e.body.get("guardrailConfig") for e in bedrock_emulator.log.for_operation("converse")]
    assert [s and (s["guardrailIdentifier"], s["guardrailVersion"]) for s in sent] == [
        ("k7qz2m9x4abc", "1"),
        ("p3r8t1w6yq0d", "2"),
        None,
    ]


async def test_bedrocks_access_denied_for_a_missing_guardrail_is_explained(
    serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.guardrails.require_guardrail = True
    gateway = serve_gateway()
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        response = await client.post(
            "/v1/messages",
            headers={"x-api-key": "vk-test", "anthropic-version": "2023-06-01"},
            json={"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 403
    assert "guardrail" in response.json()["error"]["message"]


EMBED = "amazon.titan-embed-text-v2:0"


async def test_a_blocked_embedding_input_is_a_content_filter_400_and_nothing_is_embedded(
    sdk: SDKClients, guarded: tuple[ServedApp, list[UsageRecord]], bedrock_emulator: BedrockEmulator
) -> None:
    gateway, records = guarded
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.openai(gateway).embeddings.create(model=EMBED, input=["fine", "the forbidden word"])
    assert refused.value.status_code == 400
    assert refused.value.code == "content_filter"
    assert [e.operation for e in bedrock_emulator.log] == ["apply-guardrail"]
    assert records[-1].guardrail_action == "INTERVENED"


async def test_a_masked_embedding_input_is_embedded_masked(
    sdk: SDKClients, guarded: tuple[ServedApp, list[UsageRecord]], bedrock_emulator: BedrockEmulator
) -> None:
    gateway, _ = guarded
    result = await sdk.openai(gateway).embeddings.create(model=EMBED, input="write to ann@example.com")
    assert len(result.data) == 1
    embedded = bedrock_emulator.log.for_operation("invoke")[-1]
    assert embedded.body["inputText"] == "write to {EMAIL}"


async def test_a_native_invoke_model_intervention_is_answered_as_a_refusal(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    words_guardrail: EmulatedGuardrail,
) -> None:
    records: list[UsageRecord] = []

    async def hook(record: UsageRecord) -> None:
        records.append(record)

    cfg = _config(
        bedrock_emulator,
        messages_api="invoke",
        guardrail={"identifier": "k7qz2m9x4abc", "version": "1", "trace": "enabled"},
    )
    gateway = serve_gateway(cfg, usage_hook=hook)
    message = await sdk.anthropic(gateway).messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "write to ann@example.com"}]
    )
    entry = bedrock_emulator.log.for_operation("invoke")[-1]
    assert entry.headers["x-amzn-bedrock-guardrailidentifier"] == "k7qz2m9x4abc"
    # Bedrock kept the model's end_turn and said INTERVENED in the body; the caller sees a refusal.
    assert message.stop_reason == "refusal"
    assert message.content[0].text == "Echo: write to {EMAIL}"  # type: ignore[union-attr]
    assert records[-1].guardrail_action == "INTERVENED" and records[-1].guardrail_trace


async def test_native_bodies_carry_the_guardrail_in_invoke_models_headers(
    sdk: SDKClients, guarded: tuple[ServedApp, list[UsageRecord]], bedrock_emulator: BedrockEmulator
) -> None:
    gateway, records = guarded
    await sdk.openai(gateway).chat.completions.create(
        model="bedrock/amazon.titan-text-express-v1", messages=[{"role": "user", "content": "hi"}]
    )
    sent = bedrock_emulator.log.for_operation("invoke")[-1].headers
    assert sent["x-amzn-bedrock-guardrailidentifier"] == "k7qz2m9x4abc"
    assert sent["x-amzn-bedrock-guardrailversion"] == "1"
    assert sent["x-amzn-bedrock-trace"] == "ENABLED"
    assert records[-1].guardrail == "k7qz2m9x4abc:1" and records[-1].guardrail_action == "NONE"


@pytest.mark.parametrize("stream", [False, True])
async def test_an_intervention_is_an_incomplete_responses_answer(
    sdk: SDKClients,
    guarded: tuple[ServedApp, list[UsageRecord]],
    bedrock_emulator: BedrockEmulator,
    stream: bool,
) -> None:
    gateway, records = guarded
    client = sdk.openai(gateway)
    if stream:
        events = [
            e
            async for e in await client.responses.create(
                model=MODEL, input="the forbidden thing", stream=True
            )
        ]
        response = next(e.response for e in events if e.type in ("response.incomplete", "response.completed"))
    else:
        response = await client.responses.create(model=MODEL, input="the forbidden thing")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "content_filter"
    assert (
        bedrock_emulator.log.for_operation("converse-stream" if stream else "converse")[-1].body[
            "guardrailConfig"
        ]["guardrailIdentifier"]
        == "k7qz2m9x4abc"
    )
    assert records[-1].guardrail_action == "INTERVENED"


# -- /v1/messages on Claude's native InvokeModel(WithResponseStream) ------------------------------
def _native_guarded(
    serve_gateway: GatewayFactory, emulator: BedrockEmulator, **guardrail: Any
) -> tuple[ServedApp, list[UsageRecord]]:
    records: list[UsageRecord] = []

    async def hook(record: UsageRecord) -> None:
        records.append(record)

    spec = {"identifier": "k7qz2m9x4abc", "version": "1", "trace": "enabled", **guardrail}
    return serve_gateway(_config(emulator, messages_api="invoke", guardrail=spec), usage_hook=hook), records


def _sent_headers(emulator: BedrockEmulator, operation: str) -> dict[str, str]:
    return {k.lower(): v for k, v in emulator.log.for_operation(operation)[-1].headers.items()}


async def test_a_native_input_intervention_is_an_anthropic_refusal_with_the_trace(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    words_guardrail: EmulatedGuardrail,
) -> None:
    gateway, records = _native_guarded(serve_gateway, bedrock_emulator)
    raw = await sdk.anthropic(gateway).messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "tell me the forbidden thing"}]
    )
    message = await raw.parse()
    assert message.stop_reason == "refusal"  # Bedrock said end_turn and guardrailAction INTERVENED
    assert message.content[0].text == BLOCKED  # type: ignore[union-attr]
    assert raw.headers["x-bedrock-mw-messages-api"] == "invoke"
    assert raw.headers["x-bedrock-mw-guardrail-action"] == "INTERVENED"
    assert _sent_headers(bedrock_emulator, "invoke")["x-amzn-bedrock-guardrailidentifier"] == "k7qz2m9x4abc"
    trace = (message.model_extra or {})["amazon-bedrock-trace"]["guardrail"]
    assert trace["inputAssessment"]["k7qz2m9x4abc"]["wordPolicy"]["customWords"][0]["match"] == "forbidden"
    assert (records[-1].guardrail_action, records[-1].guardrail_trace) == ("INTERVENED", trace)


@pytest.mark.parametrize(
    ("text", "said"),
    [("tell me the forbidden thing", BLOCKED), ("mail ann@example.com", "Echo: mail {EMAIL}")],
    ids=["blocked-input", "masked-output"],
)
async def test_a_native_streamed_intervention_is_an_anthropic_refusal_with_the_trace(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    words_guardrail: EmulatedGuardrail,
    text: str,
    said: str,
) -> None:
    gateway, records = _native_guarded(serve_gateway, bedrock_emulator)
    deltas: list[Any] = []
    async with sdk.anthropic(gateway).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": text}]
    ) as stream:
        async for event in stream:
            if event.type == "message_delta":
                deltas.append(event)
        final = await stream.get_final_message()
    assert final.stop_reason == "refusal"
    assert final.content[0].text == said  # type: ignore[union-attr]
    sent = _sent_headers(bedrock_emulator, "invoke-with-response-stream")
    assert (sent["x-amzn-bedrock-guardrailidentifier"], sent["x-amzn-bedrock-trace"]) == (
        "k7qz2m9x4abc",
        "ENABLED",
    )
    trace = (deltas[0].model_extra or {})["amazon-bedrock-trace"]["guardrail"]
    assert trace["actionReason"]
    assert records[-1].stream and records[-1].guardrail_action == "INTERVENED"
    assert records[-1].guardrail_trace == trace


async def test_a_native_stream_the_guardrail_let_through_ends_as_the_model_ended(
    sdk: SDKClients,
    serve_gateway: GatewayFactory,
    bedrock_emulator: BedrockEmulator,
    words_guardrail: EmulatedGuardrail,
) -> None:
    gateway, records = _native_guarded(serve_gateway, bedrock_emulator, trace="disabled")
    async with sdk.anthropic(gateway).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert records[-1].guardrail_action == "NONE" and records[-1].guardrail_trace is None


async def test_the_async_stream_mode_goes_in_the_native_body_and_a_late_block_is_still_a_refusal(
    sdk: SDKClients, serve_gateway: GatewayFactory, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.guardrails.add(
        EmulatedGuardrail("outonly1", blocked_words=("secret",), check_input=False)
    )
    gateway, _ = _native_guarded(serve_gateway, bedrock_emulator, identifier="outonly1", stream_mode="async")
    async with sdk.anthropic(gateway).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "say secret"}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "Echo: say secret"  # type: ignore[union-attr]  # sent before the verdict
    assert final.stop_reason == "refusal"
    body = bedrock_emulator.log.for_operation("invoke-with-response-stream")[-1].body
    assert body["amazon-bedrock-guardrailConfig"] == {"streamProcessingMode": "ASYNCHRONOUS"}


# -- /v1/chat/completions on InvokeModel families (Titan Text) ------------------------------------
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("text", "said"),
    [("tell me the forbidden thing", BLOCKED), ("write to ann@example.com", "Echo: write to {EMAIL}")],
    ids=["blocked-input", "masked-output"],
)
async def test_a_native_chat_intervention_is_an_openai_content_filter(
    sdk: SDKClients, guarded: tuple[ServedApp, list[UsageRecord]], stream: bool, text: str, said: str
) -> None:
    gateway, records = guarded
    client = sdk.openai(gateway)
    model, messages = "bedrock/amazon.titan-text-express-v1", [{"role": "user", "content": text}]
    if stream:
        chunks = [
            c
            async for c in await client.chat.completions.create(
                model=model, messages=messages, stream=True, stream_options={"include_usage": True}
            )
        ]
        got = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        traces = [(c.model_extra or {}).get("amazon-bedrock-trace") for c in chunks if not c.choices]
        trace = next(t for t in traces if t)["guardrail"]
    else:
        completion = await client.chat.completions.create(model=model, messages=messages)
        got = completion.choices[0].message.content or ""
        reasons = [completion.choices[0].finish_reason]
        trace = (completion.model_extra or {})["amazon-bedrock-trace"]["guardrail"]
    assert got == said
    assert reasons == ["content_filter"]  # Bedrock kept Titan's FINISH and said INTERVENED
    assert (records[-1].guardrail_action, records[-1].guardrail_trace) == ("INTERVENED", trace)

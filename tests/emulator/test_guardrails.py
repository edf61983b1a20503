"""Emulated guardrails through the real aiobotocore client: Converse, streams, InvokeModel, ApplyGuardrail."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from bedrock_mw.testing import BedrockEmulator, EmulatedGuardrail

from .conftest import ClientFactory, user

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
pytestmark = pytest.mark.anyio


@pytest.fixture
def guardrail(emu: BedrockEmulator) -> EmulatedGuardrail:
    return emu.guardrails.add(
        EmulatedGuardrail("gr1", blocked_words=("forbidden fruit",), mask_regexes={"EMAIL": r"\S+@\S+"})
    )


def _config(trace: str = "enabled", **extra: str) -> dict[str, str]:
    return {"guardrailIdentifier": "gr1", "guardrailVersion": "1", "trace": trace, **extra}


async def test_a_blocked_word_in_the_input_stops_the_call_with_the_blocked_message(
    make_client: ClientFactory, guardrail: EmulatedGuardrail
) -> None:
    async with make_client() as client:
        answer = await client.converse(
            modelId=HAIKU, messages=[user("about the Forbidden Fruit")], guardrailConfig=_config()
        )
    assert answer["stopReason"] == "guardrail_intervened"
    assert answer["output"]["message"]["content"] == [
        {"text": "Sorry, the model cannot answer this question."}
    ]
    assert answer["usage"]["outputTokens"] == 0
    words = answer["trace"]["guardrail"]["inputAssessment"]["gr1"]["wordPolicy"]["customWords"]
    assert words == [{"match": "Forbidden Fruit", "action": "BLOCKED", "detected": True}]


async def test_output_pii_is_masked_and_the_trace_keeps_the_raw_output(
    make_client: ClientFactory, guardrail: EmulatedGuardrail
) -> None:
    async with make_client() as client:
        answer = await client.converse(
            modelId=HAIKU, messages=[user("mail bob@example.com")], guardrailConfig=_config()
        )
    assert answer["output"]["message"]["content"][0]["text"] == "Echo: mail {EMAIL}"
    assert answer["stopReason"] == "guardrail_intervened"
    trace = answer["trace"]["guardrail"]
    assert trace["modelOutput"] == ["Echo: mail bob@example.com"]
    regexes = trace["outputAssessments"]["gr1"][0]["sensitiveInformationPolicy"]["regexes"]
    assert regexes[0]["action"] == "ANONYMIZED" and regexes[0]["match"] == "bob@example.com"


async def test_no_trace_unless_asked_and_a_clean_answer_is_untouched(
    make_client: ClientFactory, guardrail: EmulatedGuardrail
) -> None:
    async with make_client() as client:
        answer = await client.converse(
            modelId=HAIKU, messages=[user("hello")], guardrailConfig=_config("disabled")
        )
    assert answer["stopReason"] == "end_turn"
    assert "trace" not in answer


@pytest.mark.parametrize(
    ("mode", "text"), [("sync", "Echo: mail {EMAIL}"), ("async", "Echo: mail bob@example.com")]
)
async def test_a_stream_is_masked_in_sync_mode_only(
    make_client: ClientFactory, guardrail: EmulatedGuardrail, mode: str, text: str
) -> None:
    async with make_client() as client:
        response = await client.converse_stream(
            modelId=HAIKU,
            messages=[user("mail bob@example.com")],
            guardrailConfig=_config(streamProcessingMode=mode),
        )
        events = [e async for e in response["stream"]]
    deltas = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert deltas == text
    metadata = next(e["metadata"] for e in events if "metadata" in e)
    assert "gr1" in metadata["trace"]["guardrail"]["outputAssessments"]


async def test_unknown_guardrails_are_refused_as_bedrock_does(make_client: ClientFactory) -> None:
    async with make_client() as client:
        with pytest.raises(ClientError) as missing:
            await client.converse(modelId=HAIKU, messages=[user("x")], guardrailConfig=_config())
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


async def test_the_iam_rule_refuses_model_calls_without_a_guardrail(
    make_client: ClientFactory, emu: BedrockEmulator, guardrail: EmulatedGuardrail
) -> None:
    emu.guardrails.require_guardrail = True
    async with make_client() as client:
        with pytest.raises(ClientError) as denied:
            await client.converse(modelId=HAIKU, messages=[user("x")])
        allowed = await client.converse(modelId=HAIKU, messages=[user("x")], guardrailConfig=_config())
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "explicit deny" in denied.value.response["Error"]["Message"]
    assert allowed["stopReason"] == "end_turn"


async def test_invoke_model_reads_the_guardrail_headers_and_reports_the_action_in_the_body(
    make_client: ClientFactory, guardrail: EmulatedGuardrail
) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "mail bob@example.com"}],
    }
    async with make_client() as client:
        response = await client.invoke_model(
            modelId=HAIKU,
            body=json.dumps(body),
            guardrailIdentifier="gr1",
            guardrailVersion="1",
            trace="ENABLED",
        )
        answer: dict[str, Any] = json.loads(await response["body"].read())
    assert answer["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert answer["stop_reason"] == "end_turn"  # the model's own stop stays
    assert answer["content"][0]["text"] == "Echo: mail {EMAIL}"
    assert "gr1" in answer["amazon-bedrock-trace"]["guardrail"]["outputAssessments"]


@pytest.mark.parametrize(
    ("text", "action", "outputs"),
    [
        ("plain words", "NONE", []),
        (
            "the forbidden fruit",
            "GUARDRAIL_INTERVENED",
            [{"text": "Sorry, the model cannot answer this question."}],
        ),
        ("to a@b.co", "GUARDRAIL_INTERVENED", [{"text": "to {EMAIL}"}]),
    ],
)
async def test_apply_guardrail_checks_text_without_a_model(
    make_client: ClientFactory, guardrail: EmulatedGuardrail, text: str, action: str, outputs: list[Any]
) -> None:
    async with make_client() as client:
        answer = await client.apply_guardrail(
            guardrailIdentifier="gr1",
            guardrailVersion="1",
            source="INPUT",
            content=[{"text": {"text": text}}],
        )
    assert answer["action"] == action
    assert answer["outputs"] == outputs
    assert answer["usage"]["wordPolicyUnits"] == 1


async def test_guardrails_are_configured_over_the_control_api(emu: BedrockEmulator) -> None:
    async with httpx.AsyncClient(base_url=emu.endpoint_url) as control:
        added = await control.post(
            "/_emulator/guardrails", json={"identifier": "abc1", "blocked_words": ["x"]}
        )
        bad = await control.post("/_emulator/guardrails", json={"identifier": "Not Valid"})
        required = await control.post("/_emulator/guardrails/require", json={"require": True})
        listed = (await control.get("/_emulator/guardrails")).json()
        cleared = await control.delete("/_emulator/guardrails")
    assert added.status_code == 201 and bad.status_code == 400
    assert required.json()["require_guardrail"] is True
    assert listed["guardrails"][0]["identifier"] == "abc1" and listed["require_guardrail"] is True
    assert (
        cleared.status_code == 204 and not emu.guardrails.guardrails and not emu.guardrails.require_guardrail
    )


# -- native InvokeModel(WithResponseStream) ------------------------------------------------------
def _native(text: str, **extra: Any) -> str:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }
    return json.dumps(body)


async def _invoke_stream(client: Any, body: str, **guardrail: str) -> list[dict[str, Any]]:
    response = await client.invoke_model_with_response_stream(modelId=HAIKU, body=body, **guardrail)
    return [json.loads(event["chunk"]["bytes"]) async for event in response["body"]]


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")


async def test_invoke_model_answers_a_blocked_input_with_the_blocked_message_and_no_model_tokens(
    make_client: ClientFactory, guardrail: EmulatedGuardrail
) -> None:
    async with make_client() as client:
        response = await client.invoke_model(
            modelId=HAIKU,
            body=_native("the forbidden fruit"),
            guardrailIdentifier="gr1",
            guardrailVersion="1",
        )
        answer: dict[str, Any] = json.loads(await response["body"].read())
    assert answer["content"] == [{"type": "text", "text": "Sorry, the model cannot answer this question."}]
    assert answer["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert answer["stop_reason"] == "end_turn"
    assert answer["usage"]["output_tokens"] == 0
    assert "amazon-bedrock-trace" not in answer  # tracing was not asked for


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("the forbidden fruit", "Sorry, the model cannot answer this question."),  # input blocked
        ("mail bob@example.com", "Echo: mail {EMAIL}"),  # output masked
    ],
)
async def test_a_guarded_native_stream_reports_the_intervention_on_its_last_chunk(
    make_client: ClientFactory, guardrail: EmulatedGuardrail, text: str, said: str
) -> None:
    async with make_client() as client:
        events = await _invoke_stream(
            client, _native(text), guardrailIdentifier="gr1", guardrailVersion="1", trace="ENABLED"
        )
    assert _text(events) == said
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["delta"] == {"stop_reason": "end_turn"}  # the model's own stop, as on InvokeModel
    last = events[-1]
    assert last["type"] == "message_stop"
    assert last["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert "gr1" in last["amazon-bedrock-trace"]["guardrail"]["inputAssessment"]
    assert "amazon-bedrock-invocationMetrics" in last
    assert all("amazon-bedrock-guardrailAction" not in e for e in events[:-1])


async def test_a_guarded_native_stream_that_passes_says_none_and_an_unguarded_one_says_nothing(
    make_client: ClientFactory, guardrail: EmulatedGuardrail
) -> None:
    async with make_client() as client:
        guarded = await _invoke_stream(client, _native("hi"), guardrailIdentifier="gr1", guardrailVersion="1")
        plain = await _invoke_stream(client, _native("hi"))
    assert guarded[-1]["amazon-bedrock-guardrailAction"] == "NONE"
    assert "amazon-bedrock-trace" not in guarded[-1]
    assert "amazon-bedrock-guardrailAction" not in plain[-1]
    assert plain[-2]["delta"]["stop_sequence"] is None  # unguarded deltas keep the member


async def test_the_asynchronous_stream_mode_sends_the_output_unmasked_before_the_verdict(
    make_client: ClientFactory, emu: BedrockEmulator
) -> None:
    emu.guardrails.add(
        EmulatedGuardrail("gr2", blocked_words=("secret",), check_input=False, mask_regexes={"E": r"\S+@\S+"})
    )
    mode = {"amazon-bedrock-guardrailConfig": {"streamProcessingMode": "ASYNCHRONOUS"}}
    async with make_client() as client:
        late = await _invoke_stream(
            client, _native("say secret to a@b.co", **mode), guardrailIdentifier="gr2", guardrailVersion="1"
        )
        held = await _invoke_stream(
            client, _native("say secret to a@b.co"), guardrailIdentifier="gr2", guardrailVersion="1"
        )
    assert _text(late) == "Echo: say secret to a@b.co"  # streamed at once, never masked
    assert late[-1]["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert _text(held) == "Sorry, the model cannot answer this question."  # sync: checked first
    assert held[-1]["amazon-bedrock-guardrailAction"] == "INTERVENED"


@pytest.mark.parametrize(
    "config",
    [
        {"streamProcessingMode": "LATER"},
        {"unknownMember": 1},
        "ASYNCHRONOUS",
    ],
)
async def test_a_bad_guardrail_config_in_a_native_body_is_a_validation_exception(
    make_client: ClientFactory, guardrail: EmulatedGuardrail, config: Any
) -> None:
    body = _native("hi", **{"amazon-bedrock-guardrailConfig": config})
    async with make_client() as client:
        with pytest.raises(ClientError) as refused:
            await _invoke_stream(client, body, guardrailIdentifier="gr1", guardrailVersion="1")
    assert refused.value.response["Error"]["Code"] == "ValidationException"


async def test_a_guardrail_config_in_the_body_without_the_guardrail_header_is_refused(
    make_client: ClientFactory, guardrail: EmulatedGuardrail
) -> None:
    body = _native("hi", **{"amazon-bedrock-guardrailConfig": {"streamProcessingMode": "SYNCHRONOUS"}})
    async with make_client() as client:
        with pytest.raises(ClientError) as refused:
            await client.invoke_model(modelId=HAIKU, body=body)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "guardrail identifier" in refused.value.response["Error"]["Message"]


@pytest.mark.parametrize("model", ["amazon.titan-text-express-v1", "meta.llama3-1-70b-instruct-v1:0"])
async def test_prompt_bodies_are_guarded_like_anthropic_ones(
    make_client: ClientFactory, guardrail: EmulatedGuardrail, model: str
) -> None:
    key = "inputText" if "titan" in model else "prompt"
    guard = {"guardrailIdentifier": "gr1", "guardrailVersion": "1", "trace": "ENABLED"}
    async with make_client() as client:
        response = await client.invoke_model(
            modelId=model, body=json.dumps({key: "User: the forbidden fruit"}), **guard
        )
        answer: dict[str, Any] = json.loads(await response["body"].read())
        streamed = await client.invoke_model_with_response_stream(
            modelId=model, body=json.dumps({key: "User: mail bob@example.com"}), **guard
        )
        chunks = [json.loads(e["chunk"]["bytes"]) async for e in streamed["body"]]
    assert answer["amazon-bedrock-guardrailAction"] == "INTERVENED"
    said = answer["results"][0]["outputText"] if "titan" in model else answer["generation"]
    assert said == "Sorry, the model cannot answer this question."
    assert "gr1" in answer["amazon-bedrock-trace"]["guardrail"]["inputAssessment"]
    text = "".join(c.get("outputText", c.get("generation")) or "" for c in chunks)
    assert text.strip() == "Echo: mail {EMAIL}"
    assert chunks[-1]["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert "amazon-bedrock-invocationMetrics" in chunks[-1]
    assert all("amazon-bedrock-guardrailAction" not in c for c in chunks[:-1])


@pytest.mark.parametrize(
    ("model", "body", "said"),
    [
        (
            "mistral.mixtral-8x7b-instruct-v0:1",
            {"prompt": "<s>[INST] the forbidden fruit [/INST]", "max_tokens": 50},
            lambda a: a["outputs"][0],
        ),
        (
            "mistral.mistral-large-2407-v1:0",
            {"messages": [{"role": "user", "content": "the forbidden fruit"}], "max_tokens": 50},
            lambda a: a["choices"][0],
        ),
        (
            "amazon.nova-lite-v1:0",
            {"messages": [{"role": "user", "content": [{"text": "the forbidden fruit"}]}]},
            lambda a: a["output"]["message"]["content"][0],
        ),
    ],
    ids=["mistral-text", "mistral-chat", "nova"],
)
async def test_every_native_body_keeps_its_own_stop_reason_and_reports_the_guardrail(
    make_client: ClientFactory, guardrail: EmulatedGuardrail, model: str, body: Any, said: Any
) -> None:
    guard = {"guardrailIdentifier": "gr1", "guardrailVersion": "1"}
    async with make_client() as client:
        response = await client.invoke_model(modelId=model, body=json.dumps(body), **guard)
        answer: dict[str, Any] = json.loads(await response["body"].read())
        streamed = await client.invoke_model_with_response_stream(
            modelId=model, body=json.dumps(body), **guard
        )
        chunks = [json.loads(e["chunk"]["bytes"]) async for e in streamed["body"]]
    assert answer["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert "Sorry, the model cannot answer this question." in json.dumps(said(answer))
    assert "guardrail_intervened" not in json.dumps(answer)  # a Converse stop reason, not a native one
    assert chunks[-1]["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert "amazon-bedrock-invocationMetrics" in chunks[-1]

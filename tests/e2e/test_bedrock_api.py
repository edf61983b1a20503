"""Bedrock's own API through the gateway: boto3, aiobotocore and langchain-aws, over TLS, to the emulator.

boto3 sends a Bedrock API key (``AWS_BEARER_TOKEN_BEDROCK``) only over HTTPS, so the gateway runs
under uvicorn with a throwaway certificate that the clients trust through ``verify=`` (the same as
``AWS_CA_BUNDLE``). The virtual key is the Bedrock API key; the gateway re-signs for the emulator.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import httpx
import pytest
from aiobotocore.session import AioSession
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

import bedrock_mw
from bedrock_mw.testing import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_API_KEY,
    BedrockEmulator,
    Fault,
    LoopbackCertificate,
    key_fingerprint,
    make_loopback_certificate,
)
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config
from bedrock_mw.usage import UsageRecord

from .conftest import ServedApp

HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
US_HAIKU = f"us.{HAIKU}"
NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=30)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCertificate:
    return make_loopback_certificate(tmp_path_factory.mktemp("tls"))


class TlsGateway:
    """A served gateway over HTTPS, the usage records it made, and clients pointed at it."""

    def __init__(self, served: ServedApp, cert: LoopbackCertificate, records: list[UsageRecord]) -> None:
        self.served = served
        self.cert = cert
        self.records = records
        self.endpoint = served.url + "/bedrock"

    def runtime(self, **kw: Any) -> Any:
        return boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            verify=str(self.cert.ca_file),
            config=NO_RETRIES,
            **kw,
        )


@pytest.fixture
def bedrock_gateway(
    bedrock_emulator: BedrockEmulator, certificate: LoopbackCertificate, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Start gateways over TLS (config from the emulator's, edited by the test); key vk-test in the env."""
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "vk-test")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    served: list[ServedApp] = []

    def start(config: dict[str, Any] | None = None) -> TlsGateway:
        cfg = config if config is not None else emulator_gateway_config(bedrock_emulator)
        records: list[UsageRecord] = []

        async def hook(record: UsageRecord) -> None:
            records.append(record)

        app = bedrock_mw.create_gateway(cfg, usage_hook=hook)
        server = ServedApp(
            app, ssl_certfile=str(certificate.certfile), ssl_keyfile=str(certificate.keyfile)
        ).__enter__()
        served.append(server)
        return TlsGateway(server, certificate, records)

    yield start
    for server in served:
        server.__exit__()


def trusting(cert: LoopbackCertificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert.ca_file))


def user(text: str = "hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def anthropic_body(text: str = "hi", **extra: Any) -> bytes:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }
    return json.dumps(body).encode()


def wait_for_records(records: list[UsageRecord], count: int) -> list[UsageRecord]:
    # The hook runs in the gateway's thread once the response has gone out.
    for _ in range(500):
        if len(records) >= count:
            return records
        time.sleep(0.01)
    raise AssertionError(f"expected {count} usage records, got {len(records)}")


# -- boto3, sync, bearer token --------------------------------------------------------------------
def test_boto3_converse_with_a_virtual_key_as_bedrock_api_key(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    gw = bedrock_gateway()
    answer = gw.runtime().converse(modelId=US_HAIKU, messages=user("hello there"))
    assert answer["output"]["message"]["content"] == [{"text": "Echo: hello there"}]
    assert answer["usage"]["outputTokens"] > 0
    (entry,) = bedrock_emulator.log.entries
    # Re-signed with the provider's own access keys (SigV4), not the caller's key.
    assert (entry.operation, entry.model_id, entry.auth_kind) == ("converse", US_HAIKU, "sigv4")
    assert entry.access_key_id == EMULATOR_ACCESS_KEY_ID
    (record,) = wait_for_records(gw.records, 1)
    assert (record.endpoint, record.status, record.key_id) == ("bedrock.Converse", 200, "test")
    assert record.usage.input_tokens == answer["usage"]["inputTokens"]
    assert record.usage.output_tokens == answer["usage"]["outputTokens"]


def test_boto3_converse_stream_relays_every_event_and_records_usage(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    gw = bedrock_gateway()
    response = gw.runtime().converse_stream(modelId=US_HAIKU, messages=user("stream me please"))
    events = list(response["stream"])
    assert list(events[0]) == ["messageStart"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "Echo: stream me please"
    usage = events[-1]["metadata"]["usage"]
    (record,) = wait_for_records(gw.records, 1)
    assert (record.endpoint, record.stream, record.status) == ("bedrock.ConverseStream", True, 200)
    assert (record.usage.input_tokens, record.usage.output_tokens) == (
        usage["inputTokens"],
        usage["outputTokens"],
    )


def test_boto3_invoke_model_with_an_anthropic_body_returns_bedrocks_body_and_token_headers(
    bedrock_gateway: Any,
) -> None:
    gw = bedrock_gateway()
    response = gw.runtime().invoke_model(modelId=US_HAIKU, body=anthropic_body("invoke me"))
    message = json.loads(response["body"].read())
    assert message["content"] == [{"type": "text", "text": "Echo: invoke me"}]
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-output-token-count"]) == message["usage"]["output_tokens"]
    (record,) = wait_for_records(gw.records, 1)
    assert record.endpoint == "bedrock.InvokeModel"
    assert record.usage.output_tokens == message["usage"]["output_tokens"]


def test_boto3_invoke_model_with_response_stream_relays_chunks_and_reads_invocation_metrics(
    bedrock_gateway: Any,
) -> None:
    gw = bedrock_gateway()
    response = gw.runtime().invoke_model_with_response_stream(
        modelId=US_HAIKU, body=anthropic_body("stream the invoke")
    )
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    assert [c["type"] for c in chunks][:2] == ["message_start", "content_block_start"]
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert text == "Echo: stream the invoke"
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    (record,) = wait_for_records(gw.records, 1)
    assert record.endpoint == "bedrock.InvokeModelWithResponseStream"
    assert (record.usage.input_tokens, record.usage.output_tokens) == (
        metrics["inputTokenCount"],
        metrics["outputTokenCount"],
    )


def test_boto3_count_tokens_is_counted_on_the_base_model(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    gw = bedrock_gateway()
    answer = gw.runtime().count_tokens(
        modelId=US_HAIKU, input={"converse": {"messages": user("count these four words")}}
    )
    assert answer["inputTokens"] > 0
    (entry,) = bedrock_emulator.log.entries
    assert (entry.operation, entry.model_id) == ("count-tokens", HAIKU)


def test_a_throttled_first_provider_falls_over_before_the_first_byte(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = emulator_gateway_config(bedrock_emulator)
    second = {**cfg["providers"][0], "id": "second", "region": "us-west-2"}
    cfg["providers"].append(second)
    cfg["virtual_keys"][0]["providers"] = ["emulator", "second"]
    gw = bedrock_gateway(cfg)
    bedrock_emulator.faults.add(Fault.throttling(region="us-east-1"))
    client = gw.runtime()

    answer = client.converse(modelId=US_HAIKU, messages=user())
    stream = client.invoke_model_with_response_stream(modelId=US_HAIKU, body=anthropic_body())
    chunks = [json.loads(e["chunk"]["bytes"]) for e in stream["body"]]

    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-bedrock-mw-provider"] == "second"
    assert stream["ResponseMetadata"]["HTTPHeaders"]["x-bedrock-mw-attempts"] == "2"
    assert chunks[-1]["type"] == "message_stop"
    statuses = [(e.region, e.status) for e in bedrock_emulator.log.entries]
    assert statuses == [("us-east-1", 429), ("us-west-2", 200)] * 2


def test_throttling_everywhere_is_bedrocks_throttling_exception_with_guidance(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    gw = bedrock_gateway()
    bedrock_emulator.faults.add(Fault.throttling())
    with pytest.raises(ClientError) as caught:
        gw.runtime().converse(modelId=US_HAIKU, messages=user())
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert "quotas are per region" in error["Error"]["Message"]


def test_a_key_that_may_not_use_the_model_gets_access_denied_without_a_bedrock_call(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["virtual_keys"][0]["allowed_models"] = ["*nova*"]
    gw = bedrock_gateway(cfg)
    with pytest.raises(ClientError) as caught:
        gw.runtime().invoke_model(modelId=US_HAIKU, body=anthropic_body())
    error = caught.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "not allowed for this API key" in error["Error"]["Message"]
    assert bedrock_emulator.log.entries == []
    (record,) = wait_for_records(gw.records, 1)
    assert (record.endpoint, record.status, record.error_type) == ("bedrock.InvokeModel", 403, "permission")


def test_a_sigv4_signed_client_is_told_to_use_a_bedrock_api_key(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = bedrock_gateway()
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK")
    client = gw.runtime(aws_access_key_id="AKIAEXAMPLEEXAMPLE", aws_secret_access_key="not-a-key")
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=US_HAIKU, messages=user())
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "UnrecognizedClientException"
    assert "AWS_BEARER_TOKEN_BEDROCK" in error["Error"]["Message"]
    assert bedrock_emulator.log.entries == []


def test_an_unknown_virtual_key_is_refused_in_bedrocks_shape(
    bedrock_gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = bedrock_gateway()
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "vk-wrong")
    with pytest.raises(ClientError) as caught:
        gw.runtime().converse(modelId=US_HAIKU, messages=user())
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert "vk-wrong" not in caught.value.response["Error"]["Message"]


def test_a_mid_stream_bedrock_exception_reaches_the_sdk_as_its_own_event_stream_error(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    gw = bedrock_gateway()
    bedrock_emulator.faults.add(Fault.stream_error(after=2, error="ThrottlingException"))
    response = gw.runtime().converse_stream(modelId=US_HAIKU, messages=user("a few words to stream"))
    with pytest.raises(EventStreamError) as caught:
        list(response["stream"])
    assert caught.value.response["Error"]["Code"] == "throttlingException"


# -- ListInferenceProfiles (control plane) ---------------------------------------------------------
def test_list_inference_profiles_lists_the_profiles_the_key_may_use_from_its_region(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["virtual_keys"][0]["allowed_models"] = ["*claude-haiku-4-5*"]
    gw = bedrock_gateway(cfg)
    control = boto3.client(
        "bedrock", region_name="us-east-1", endpoint_url=gw.endpoint, verify=str(gw.cert.ca_file)
    )
    summaries = control.list_inference_profiles()["inferenceProfileSummaries"]
    assert sorted(s["inferenceProfileId"] for s in summaries) == [f"global.{HAIKU}", US_HAIKU]
    assert {s["type"] for s in summaries} == {"SYSTEM_DEFINED"}
    paged = control.get_paginator("list_inference_profiles").paginate(PaginationConfig={"PageSize": 1})
    assert [len(page["inferenceProfileSummaries"]) for page in paged] == [1, 1]
    # A listed ARN, sent back as the model id, is served through the provider's copy of the profile.
    arn = summaries[0]["inferenceProfileArn"]
    answer = gw.runtime().converse(modelId=arn, messages=user())
    assert (
        answer["ResponseMetadata"]["HTTPHeaders"]["x-bedrock-mw-model-id"]
        == summaries[0]["inferenceProfileId"]
    )


# -- aiobotocore ------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_aiobotocore_converse_and_converse_stream(bedrock_gateway: Any) -> None:
    gw = bedrock_gateway()
    session = AioSession()
    async with session.create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=gw.endpoint,
        verify=str(gw.cert.ca_file),
        config=NO_RETRIES,
    ) as client:
        answer = await client.converse(modelId=US_HAIKU, messages=user("async hello"))
        response = await client.converse_stream(modelId=US_HAIKU, messages=user("async stream"))
        events = [event async for event in response["stream"]]
    assert answer["output"]["message"]["content"] == [{"text": "Echo: async hello"}]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "Echo: async stream"


# -- langchain-aws ------------------------------------------------------------------------------------
def test_langchain_chat_bedrock_converse_invoke_and_stream(bedrock_gateway: Any) -> None:
    from langchain_aws import ChatBedrockConverse

    gw = bedrock_gateway()
    chat = ChatBedrockConverse(model=US_HAIKU, region_name="us-east-1", client=gw.runtime(), max_tokens=64)
    reply = chat.invoke("hello langchain")
    pieces = [chunk.content for chunk in chat.stream("stream langchain")]
    assert reply.content == "Echo: hello langchain"
    streamed = "".join(
        part if isinstance(part, str) else "".join(p.get("text", "") for p in part if isinstance(p, dict))
        for part in pieces
    )
    assert streamed == "Echo: stream langchain"
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0


# -- Claude Code in Bedrock mode -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "model_id",
    [US_HAIKU, f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{US_HAIKU}"],
    ids=["us-profile", "profile-arn"],
)
def test_claude_code_bedrock_mode_request_shape_streams_through(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator, certificate: LoopbackCertificate, model_id: str
) -> None:
    """InvokeModelWithResponseStream, the id percent-encoded, an Anthropic body with anthropic_beta."""
    gw = bedrock_gateway()
    body = anthropic_body(
        "claude code says hi",
        anthropic_beta=["interleaved-thinking-2025-05-14", "claude-code-20250219"],
        system=[{"type": "text", "text": "You are Claude Code."}],
    )
    path = f"/bedrock/model/{quote(model_id, safe='')}/invoke-with-response-stream"
    headers = {
        "authorization": "Bearer vk-test",
        "content-type": "application/json",
        "x-amzn-bedrock-accept": "application/json",
    }
    with (
        httpx.Client(base_url=gw.served.url, verify=trusting(certificate), timeout=30) as http,
        http.stream("POST", path, content=body, headers=headers) as response,
    ):
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    # The one flag Bedrock would refuse was dropped, and the response says so.
    assert response.headers["x-bedrock-mw-dropped-betas"] == "claude-code-20250219"
    (entry,) = bedrock_emulator.log.entries
    assert entry.body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    assert entry.model_id == model_id
    assert raw.count(b":event-type") >= 5


def test_claude_code_probe_calls_each_get_a_quick_answer(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    """Claude Code probes other Claude ids with one token; allowed ones answer 200, others 403."""
    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["virtual_keys"][0]["allowed_models"] = ["*claude-haiku*", "*claude-sonnet-4-5*"]
    gw = bedrock_gateway(cfg)
    client = gw.runtime()
    probes = {
        US_HAIKU: 200,
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0": 200,
        "us.anthropic.claude-opus-4-1-20250805-v1:0": 403,
        "global.anthropic.claude-opus-4-5-20251101-v1:0": 403,
    }
    seen: dict[str, int] = {}
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    for model_id in probes:
        try:
            response = client.invoke_model(modelId=model_id, body=body)
            seen[model_id] = response["ResponseMetadata"]["HTTPStatusCode"]
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDeniedException"
            seen[model_id] = exc.response["ResponseMetadata"]["HTTPStatusCode"]
    assert seen == probes
    assert len(bedrock_emulator.log.entries) == 2


def test_the_prefix_is_configurable_and_unknown_paths_answer_in_bedrocks_shape(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator, certificate: LoopbackCertificate
) -> None:
    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["bedrock_api"] = {"prefix": "/aws/bedrock-runtime"}
    gw = bedrock_gateway(cfg)
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=gw.served.url + "/aws/bedrock-runtime",
        verify=str(certificate.ca_file),
        config=NO_RETRIES,
    )
    assert client.converse(modelId=US_HAIKU, messages=user())["stopReason"] == "end_turn"
    with httpx.Client(verify=trusting(certificate)) as http:
        r = http.post(
            gw.served.url + "/aws/bedrock-runtime/model/x/apply-guardrail",
            headers={"authorization": "Bearer vk-test"},
        )
    assert r.status_code == 404
    assert r.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert "converse" in r.json()["message"]


def test_the_endpoint_env_var_strands_relies_on_reaches_the_gateway(
    bedrock_gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Strands' BedrockModel builds its client from a boto3 Session: only environment variables reach it."""
    gw = bedrock_gateway()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", gw.endpoint)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(gw.cert.ca_file))
    client = boto3.Session().client("bedrock-runtime", region_name="us-east-1", config=NO_RETRIES)
    answer = client.converse(modelId=US_HAIKU, messages=user("from strands"))
    assert answer["output"]["message"]["content"] == [{"text": "Echo: from strands"}]
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-bedrock-mw-provider"] == "emulator"


def test_a_stream_refused_in_its_first_frame_falls_over_to_the_next_provider(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["providers"].append({**cfg["providers"][0], "id": "second", "region": "us-west-2"})
    cfg["virtual_keys"][0]["providers"] = ["emulator", "second"]
    gw = bedrock_gateway(cfg)
    bedrock_emulator.faults.add(Fault.stream_error(after=0, error="ThrottlingException", region="us-east-1"))
    response = gw.runtime().converse_stream(modelId=US_HAIKU, messages=user("first frame"))
    events = list(response["stream"])
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-bedrock-mw-provider"] == "second"
    assert "metadata" in events[-1]
    assert [e.region for e in bedrock_emulator.log.entries] == ["us-east-1", "us-west-2"]


def test_an_alias_names_the_model_and_a_bedrock_api_key_provider_re_sends_its_own_key(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    cfg = emulator_gateway_config(bedrock_emulator)
    cfg["providers"][0]["auth"] = {"mode": "api_key", "api_key": EMULATOR_API_KEY}
    cfg["virtual_keys"][0]["model_aliases"] = {"fast": US_HAIKU}
    gw = bedrock_gateway(cfg)
    answer = gw.runtime().converse(modelId="fast", messages=user("aliased"))
    assert answer["output"]["message"]["content"] == [{"text": "Echo: aliased"}]
    (entry,) = bedrock_emulator.log.entries
    assert (entry.model_id, entry.auth_kind) == (US_HAIKU, "bearer")
    assert entry.bearer_key_id == key_fingerprint(EMULATOR_API_KEY)  # the provider's key, not vk-test
    (record,) = wait_for_records(gw.records, 1)
    assert (record.model, record.model_id) == ("fast", US_HAIKU)


def test_a_keys_guardrail_rides_on_pass_through_calls_the_account_refuses_without_one(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    # An account whose IAM policy denies model calls without a guardrail (bedrock:GuardrailIdentifier),
    # and a key configured with one: boto3 through the pass-through gets answers, and each Bedrock
    # call carried the guardrail (Converse in its body, InvokeModel in its headers).
    from bedrock_mw.testing import EmulatedGuardrail

    bedrock_emulator.guardrails.add(EmulatedGuardrail("k7qz2m9x4abc", blocked_words=("forbidden",)))
    bedrock_emulator.guardrails.require_guardrail = True
    config = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["guardrail"] = {"identifier": "k7qz2m9x4abc", "version": "1"}
    gateway = bedrock_gateway(config)
    client = gateway.runtime()
    answer = client.converse(modelId=US_HAIKU, messages=user("hi"))
    assert answer["stopReason"] == "end_turn"
    assert bedrock_emulator.log.entries[-1].body["guardrailConfig"]["guardrailIdentifier"] == "k7qz2m9x4abc"
    blocked = client.converse(modelId=US_HAIKU, messages=user("the forbidden word"))
    assert blocked["stopReason"] == "guardrail_intervened"
    streamed = client.converse_stream(modelId=US_HAIKU, messages=user("hi"))
    assert [e for e in streamed["stream"] if "messageStop" in e]
    invoked = client.invoke_model(modelId=US_HAIKU, body=anthropic_body("hi"))
    assert json.loads(invoked["body"].read())["content"]
    headers = {k.lower(): v for k, v in bedrock_emulator.log.entries[-1].headers.items()}
    assert headers["x-amzn-bedrock-guardrailidentifier"] == "k7qz2m9x4abc"
    # The key's guardrail travels with a caller's body unchanged apart from guardrailConfig.
    assert bedrock_emulator.log.entries[0].body["messages"] == user("hi")


def test_a_body_the_gateway_must_rewrite_cannot_nest_past_the_depth_limit(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    # The pass-through rewrites a Converse body to attach the key's guardrail; JSON nested past
    # limits.max_json_depth is refused in Bedrock's shape instead of failing when written again.
    config = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["guardrail"] = {"identifier": "k7qz2m9x4abc", "version": "1"}
    gateway = bedrock_gateway(config)
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    body = {"messages": user("hi"), "additionalModelRequestFields": {"deep": deep}}
    answer = httpx.post(
        f"{gateway.endpoint}/model/{quote(US_HAIKU, safe='')}/converse",
        json=body,
        headers={"authorization": "Bearer vk-test"},
        verify=trusting(gateway.cert),
    )
    assert answer.status_code == 400
    assert answer.headers["x-amzn-errortype"].startswith("ValidationException")
    assert "deeper than the limit" in answer.json()["message"]
    assert not bedrock_emulator.log.entries


def test_the_pass_through_relays_bedrocks_guardrail_members_in_a_native_stream_untouched(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    from bedrock_mw.testing import EmulatedGuardrail

    bedrock_emulator.guardrails.add(EmulatedGuardrail("k7qz2m9x4abc", blocked_words=("forbidden",)))
    config = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["guardrail"] = {
        "identifier": "k7qz2m9x4abc",
        "version": "1",
        "trace": "enabled",
    }
    gateway = bedrock_gateway(config)
    stream = gateway.runtime().invoke_model_with_response_stream(
        modelId=US_HAIKU, body=anthropic_body("the forbidden word")
    )
    chunks = [json.loads(event["chunk"]["bytes"]) for event in stream["body"]]
    # Bedrock's own shape: the model's stop reason, the action and trace on the last chunk.
    assert next(c for c in chunks if c["type"] == "message_delta")["delta"] == {"stop_reason": "end_turn"}
    assert chunks[-1]["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert "k7qz2m9x4abc" in chunks[-1]["amazon-bedrock-trace"]["guardrail"]["inputAssessment"]
    record = wait_for_records(gateway.records, 1)[-1]
    assert (record.guardrail, record.guardrail_action) == ("k7qz2m9x4abc:1", "INTERVENED")
    assert record.guardrail_trace == chunks[-1]["amazon-bedrock-trace"]["guardrail"]


@pytest.mark.parametrize("operation", ["invoke_model", "converse", "converse_stream"])
def test_the_pass_through_records_the_guardrails_verdict_as_bedrock_reported_it(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator, operation: str
) -> None:
    from bedrock_mw.testing import EmulatedGuardrail

    bedrock_emulator.guardrails.add(EmulatedGuardrail("k7qz2m9x4abc", blocked_words=("forbidden",)))
    config = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["guardrail"] = {
        "identifier": "k7qz2m9x4abc",
        "version": "1",
        "trace": "enabled",
    }
    gateway = bedrock_gateway(config)
    client = gateway.runtime()
    for text in ("hello", "the forbidden word"):
        if operation == "invoke_model":
            client.invoke_model(modelId=US_HAIKU, body=anthropic_body(text))["body"].read()
        elif operation == "converse":
            client.converse(modelId=US_HAIKU, messages=user(text))
        else:
            list(client.converse_stream(modelId=US_HAIKU, messages=user(text))["stream"])
    passed, blocked = wait_for_records(gateway.records, 2)[-2:]
    assert (passed.guardrail_action, blocked.guardrail_action) == ("NONE", "INTERVENED")
    assert blocked.guardrail_trace["inputAssessment"]["k7qz2m9x4abc"]["wordPolicy"]


def test_the_pass_through_puts_the_keys_stream_mode_in_a_native_stream_body_keeping_the_callers_tag(
    bedrock_gateway: Any, bedrock_emulator: BedrockEmulator
) -> None:
    from bedrock_mw.testing import EmulatedGuardrail

    bedrock_emulator.guardrails.add(EmulatedGuardrail("k7qz2m9x4abc"))
    config = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["guardrail"] = {
        "identifier": "k7qz2m9x4abc",
        "version": "1",
        "stream_mode": "async",
    }
    gateway = bedrock_gateway(config)
    tagged = anthropic_body("hi", **{"amazon-bedrock-guardrailConfig": {"tagSuffix": "xyz"}})
    stream = gateway.runtime().invoke_model_with_response_stream(modelId=US_HAIKU, body=tagged)
    assert json.loads(list(stream["body"])[-1]["chunk"]["bytes"])["amazon-bedrock-guardrailAction"] == "NONE"
    sent = bedrock_emulator.log.for_operation("invoke-with-response-stream")[-1].body
    assert sent["amazon-bedrock-guardrailConfig"] == {
        "tagSuffix": "xyz",
        "streamProcessingMode": "ASYNCHRONOUS",
    }
    assert sent["messages"] == json.loads(tagged)["messages"]

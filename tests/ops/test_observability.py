"""What an operator sees: request ids, response headers, access log, Prometheus metrics, OTel spans."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from bedrock_mw.observability import GenAITracer, JsonLogFormatter
from bedrock_mw.testing import EMULATOR_SECRET_ACCESS_KEY, BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import ANTHROPIC, DIALECTS, MODEL, MODEL_ID, OPENAI, Dialect, ServedGateway, ServeGateway

pytestmark = pytest.mark.anyio

SECRET_KEY = "vk-ops-0bs3rvab1l1ty-s3cret"


def config_with_key(emu: BedrockEmulator, **observability: Any) -> dict[str, Any]:
    config = emulator_gateway_config(emu)
    config["virtual_keys"][0]["key"] = SECRET_KEY
    if observability:
        config["observability"] = observability
    return config


# -- request ids and headers ----------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_sane_caller_request_id_is_echoed_everywhere(
    serve: ServeGateway, http: httpx.AsyncClient, dialect: Dialect
) -> None:
    gw = serve()
    headers = {**dialect.headers(), "x-request-id": "trace-1234.abc"}
    ok = await http.post(gw.url + dialect.path, json=dialect.body(), headers=headers)
    refused = await http.post(
        gw.url + dialect.path, json=dialect.body(), headers={"x-request-id": "trace-5678"}
    )
    assert ok.headers["x-request-id"] == "trace-1234.abc"
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "trace-5678"
    assert [r.request_id for r in await gw.usage.wait_for(1)] == ["trace-1234.abc"]


@pytest.mark.parametrize(
    "given",
    [None, "x" * 129, "bad\tid", b"caf\xc3\xa9"],
    ids=["absent", "too-long", "not-printable", "not-ascii"],
)
async def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(
    serve: ServeGateway, http: httpx.AsyncClient, given: str | bytes | None
) -> None:
    gw = serve()
    headers: dict[str, Any] = dict(OPENAI.headers())
    if given is not None:
        headers["x-request-id"] = given
    first = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=headers)
    second = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=headers)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    for request_id in ids:
        assert request_id.startswith("req_") and len(request_id) == 4 + 24
        int(request_id[4:], 16)
    assert ids[0] != ids[1]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_the_answer_says_who_served_it_and_bedrocks_request_id(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    dialect: Dialect,
    stream: bool,
) -> None:
    gw = serve()
    response = await http.post(
        gw.url + dialect.path, json=dialect.body(stream=stream), headers=dialect.headers()
    )
    assert response.status_code == 200
    assert response.headers["x-bedrock-mw-provider"] == "emulator"
    assert response.headers["x-bedrock-mw-region"] == "us-east-1"
    assert response.headers["x-bedrock-mw-model-id"] == MODEL_ID
    assert response.headers["x-bedrock-mw-attempts"] == "1"
    assert "x-bedrock-mw-skipped" not in response.headers
    # docs/operations.md: "When Bedrock answered, x-amzn-requestid carries Bedrock's request id".
    (upstream,) = bedrock_emulator.log.entries
    assert response.headers.get("x-amzn-requestid") == upstream.request_id


async def test_embeddings_answers_carry_bedrocks_request_id(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve()
    response = await http.post(
        gw.url + "/v1/embeddings",
        json={"model": "amazon.titan-embed-text-v2:0", "input": "one two"},
        headers=OPENAI.headers(),
    )
    assert response.status_code == 200
    (upstream,) = bedrock_emulator.log.entries
    assert response.headers.get("x-amzn-requestid") == upstream.request_id


async def test_dropped_parameters_are_named_in_a_response_header(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["virtual_keys"][0]["drop_unsupported_params"] = True
    gw = serve(config)
    response = await http.post(
        gw.url + OPENAI.path,
        json=OPENAI.body(seed=7, logit_bias={"50256": -100}),
        headers=OPENAI.headers(),
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-bedrock-mw-dropped-params"] == "seed,logit_bias"
    # Without opting in, the same request is refused, naming the parameter.
    config["virtual_keys"][0]["drop_unsupported_params"] = False
    strict = serve(config)
    refused = await http.post(strict.url + OPENAI.path, json=OPENAI.body(seed=7), headers=OPENAI.headers())
    assert refused.status_code == 400
    assert "seed" in refused.json()["error"]["message"]


# -- access log -----------------------------------------------------------------------------------
@pytest.fixture
def gateway_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of the ``bedrock_mw`` loggers, down to DEBUG."""
    with caplog.at_level(logging.DEBUG, logger="bedrock_mw"):
        yield caplog


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bedrock_mw" and r.getMessage() == "request"]


async def test_the_access_log_has_one_json_ready_line_per_request_and_no_secret(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    gateway_logs: pytest.LogCaptureFixture,
) -> None:
    gw = serve(config_with_key(bedrock_emulator))
    plain = await http.post(
        gw.url + ANTHROPIC.path,
        json=ANTHROPIC.body(),
        headers={**ANTHROPIC.headers(SECRET_KEY), "x-request-id": "req-plain"},
    )
    streamed = await http.post(
        gw.url + OPENAI.path, json=OPENAI.body(stream=True), headers=OPENAI.headers(SECRET_KEY)
    )
    bedrock_emulator.faults.add(Fault.throttling(times=1))
    throttled = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers(SECRET_KEY))
    unknown = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers("vk-nope"))
    await gw.usage.wait_for(3)

    lines = [json.loads(JsonLogFormatter().format(r)) for r in access_records(gateway_logs)]
    assert [line["request_id"] for line in lines] == [
        "req-plain",
        streamed.headers["x-request-id"],
        throttled.headers["x-request-id"],
        unknown.headers["x-request-id"],
    ]
    first = lines[0]
    assert first["level"] == "INFO" and first["logger"] == "bedrock_mw" and first["message"] == "request"
    assert {k: first[k] for k in ("key_id", "endpoint", "model", "provider", "region", "status")} == {
        "key_id": "test",
        "endpoint": "messages",
        "model": MODEL,
        "provider": "emulator",
        "region": "us-east-1",
        "status": 200,
    }
    assert first["attempts"] == 1 and first["latency_ms"] > 0
    assert first["input_tokens"] == plain.json()["usage"]["input_tokens"]
    assert first["output_tokens"] == plain.json()["usage"]["output_tokens"]
    assert [line["status"] for line in lines] == [200, 200, 429, 401]
    assert lines[3]["key_id"] is None

    everything = "\n".join(JsonLogFormatter().format(r) for r in gateway_logs.records)
    for secret in (SECRET_KEY, "vk-nope", EMULATOR_SECRET_ACCESS_KEY):
        assert secret not in everything
    assert plain.status_code == 200 and throttled.status_code == 429


async def test_a_failed_attempt_is_logged_before_the_fallback(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    gateway_logs: pytest.LogCaptureFixture,
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    config["providers"].append({**config["providers"][0], "id": "backup", "region": "us-west-2"})
    config["virtual_keys"][0]["providers"] = ["emulator", "backup"]
    gw = serve(config)
    bedrock_emulator.faults.add(Fault.throttling(region="us-east-1"))
    response = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())
    assert response.status_code == 200
    assert response.headers["x-bedrock-mw-attempts"] == "2"
    assert response.headers["x-bedrock-mw-provider"] == "backup"
    await gw.usage.wait_for(1)
    (failed,) = [r for r in gateway_logs.records if r.getMessage() == "attempt failed"]
    assert vars(failed)["request_id"] == response.headers["x-request-id"]
    assert (vars(failed)["provider"], vars(failed)["region"], vars(failed)["model_id"]) == (
        "emulator",
        "us-east-1",
        MODEL_ID,
    )
    assert (vars(failed)["error"], vars(failed)["status"]) == ("ThrottlingException", 429)
    (line,) = access_records(gateway_logs)
    assert (vars(line)["provider"], vars(line)["attempts"]) == ("backup", 2)


async def test_access_log_off_writes_no_request_lines(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    gateway_logs: pytest.LogCaptureFixture,
) -> None:
    gw = serve(config_with_key(bedrock_emulator, access_log=False))
    response = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers(SECRET_KEY))
    assert response.status_code == 200
    await gw.usage.wait_for(1)
    assert access_records(gateway_logs) == []


# -- Prometheus -----------------------------------------------------------------------------------
def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


async def test_metrics_count_requests_tokens_latency_and_attempts(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve(config_with_key(bedrock_emulator, metrics=True))
    headers = ANTHROPIC.headers(SECRET_KEY)
    plain = (await http.post(gw.url + ANTHROPIC.path, json=ANTHROPIC.body(), headers=headers)).json()
    streamed = await http.post(gw.url + ANTHROPIC.path, json=ANTHROPIC.body(stream=True), headers=headers)
    assert streamed.status_code == 200
    bedrock_emulator.faults.add(Fault.throttling(times=1))
    throttled = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers(SECRET_KEY))
    assert throttled.status_code == 429
    await gw.usage.wait_for(3)

    response = await http.get(gw.url + "/metrics")  # outside virtual-key auth
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert SECRET_KEY not in response.text and EMULATOR_SECRET_ACCESS_KEY not in response.text
    got = samples(response.text)
    where = {"provider": "emulator", "region": "us-east-1", "model": MODEL_ID, "key": "test"}
    assert got[("bedrock_mw_requests_total", labels(endpoint="messages", status="200", **where))] == 2
    # A throttled request never got an answering provider: its provider labels are empty.
    failed = labels(endpoint="chat_completions", status="429", provider="", region="", model="", key="test")
    assert got[("bedrock_mw_requests_total", failed)] == 1
    assert (
        got[("bedrock_mw_tokens_total", labels(type="input", **where))] == 2 * plain["usage"]["input_tokens"]
    )
    assert (
        got[("bedrock_mw_tokens_total", labels(type="output", **where))]
        == 2 * plain["usage"]["output_tokens"]
    )
    assert got[("bedrock_mw_request_seconds_count", labels(endpoint="messages", provider="emulator"))] == 2
    ttft = ("bedrock_mw_time_to_first_token_seconds_count", labels(endpoint="messages", provider="emulator"))
    assert got[ttft] == 1  # only the stream has a first token
    assert got[("bedrock_mw_upstream_attempts_total", labels(endpoint="messages"))] == 2
    assert got[("bedrock_mw_upstream_attempts_total", labels(endpoint="chat_completions"))] == 1
    # Cost by key and model: both answers' cost_usd (the throttled request cost nothing).
    costs = [r.cost_usd for r in gw.usage.records if r.status == 200]
    assert len(costs) == 2 and all(c is not None and c > 0 for c in costs)
    cost = got[("bedrock_mw_cost_usd_total", labels(key="test", model=MODEL_ID))]
    assert cost == pytest.approx(sum(c or 0.0 for c in costs))


def open_streams(text: str) -> float:
    return samples(text)[("bedrock_mw_open_streams", frozenset())]


async def test_the_open_streams_gauge_counts_streams_being_relayed_and_drops_when_they_end(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    gw = serve(config_with_key(bedrock_emulator, metrics=True))
    assert open_streams((await http.get(gw.url + "/metrics")).text) == 0
    # A slow stream (30 events a second apart): certainly open while we look, however loaded the
    # machine; the caller leaves after the look, so the test does not wait for its end.
    bedrock_emulator.faults.add(Fault(event_delay_s=1.0))
    body = ANTHROPIC.body(stream=True)
    body["messages"][0]["content"] = "emit 30 events. hi"
    body["max_tokens"] = 200
    async with http.stream(
        "POST", gw.url + ANTHROPIC.path, json=body, headers=ANTHROPIC.headers(SECRET_KEY)
    ) as r:
        assert r.status_code == 200
        # The line iterator is held, not left to a `break`: an abandoned httpx iterator is closed
        # when it is garbage-collected, and that closes the connection, so the stream would end
        # (recorded 499) while we look. CI caught exactly that: a 499 0.05 s after the first event.
        lines = r.aiter_lines()
        while not (await anext(lines)).startswith("data:"):
            pass  # until a transcoded event arrived: the relay is running
        # A loaded CI machine may serve a scrape late, so look for a while.
        seen = 0.0
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            seen = open_streams((await http.get(gw.url + "/metrics")).text)
            if seen == 1:
                break
            await asyncio.sleep(0.1)
        state = (await http.get(bedrock_emulator.endpoint_url + "/_emulator/state")).json()
        assert seen == 1, f"emulator: {state}; usage: {gw.usage.records}"
        await lines.aclose()
    # The caller left mid-stream: the relay is closed by its owner and the gauge comes back down.
    await gw.usage.wait_for(1)
    assert open_streams((await http.get(gw.url + "/metrics")).text) == 0


async def test_metrics_count_the_gateways_own_refusals_and_fallbacks_apart_from_bedrocks(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    config = config_with_key(bedrock_emulator, metrics=True)
    backup = {**config["providers"][0], "id": "backup"}
    config["providers"].append(backup)
    config["virtual_keys"][0]["providers"] = ["emulator", "backup"]
    config["virtual_keys"][0]["limits"] = {"requests_per_minute": 2}
    gw = serve(config)
    headers = ANTHROPIC.headers(SECRET_KEY)
    bedrock_emulator.faults.add(Fault.throttling(times=1))  # the first attempt only: backup answers
    fell_over = await http.post(gw.url + ANTHROPIC.path, json=ANTHROPIC.body(), headers=headers)
    assert fell_over.status_code == 200 and fell_over.headers["x-bedrock-mw-provider"] == "backup"
    bedrock_emulator.faults.add(Fault.throttling(times=2))  # both attempts: Bedrock's own 429
    throttled = await http.post(gw.url + ANTHROPIC.path, json=ANTHROPIC.body(), headers=headers)
    assert throttled.status_code == 429
    refused = await http.post(gw.url + ANTHROPIC.path, json=ANTHROPIC.body(), headers=headers)
    assert refused.status_code == 429  # the key's own requests_per_minute: Bedrock never called
    await gw.usage.wait_for(3)
    got = samples((await http.get(gw.url + "/metrics")).text)
    assert got[("bedrock_mw_fallbacks_total", labels(endpoint="messages", provider="backup"))] == 1
    refusals = {k: v for k, v in got.items() if k[0] == "bedrock_mw_refusals_total"}
    assert refusals == {
        ("bedrock_mw_refusals_total", labels(endpoint="messages", key="test", reason="rate_limit")): 1
    }


async def test_metrics_are_off_by_default_and_their_path_is_configurable(
    serve: ServeGateway, http: httpx.AsyncClient, bedrock_emulator: BedrockEmulator
) -> None:
    off = serve()
    assert (await http.get(off.url + "/metrics")).status_code == 404
    moved = serve(config_with_key(bedrock_emulator, metrics=True, metrics_path="/internal/prom"))
    assert (await http.get(moved.url + "/metrics")).status_code == 404
    exposed = await http.get(moved.url + "/internal/prom")
    assert exposed.status_code == 200
    assert "# TYPE bedrock_mw_requests_total counter" in exposed.text


# -- OpenTelemetry --------------------------------------------------------------------------------
@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


def traced(gw: ServedGateway, exporter: InMemorySpanExporter) -> None:
    """Point the gateway's GenAI tracer at a TracerProvider of the test's own (no global state)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observers = gw.gateway.observers
    observers[:] = [o for o in observers if not isinstance(o, GenAITracer)]
    observers.append(GenAITracer(tracer=provider.get_tracer("bedrock_mw")))


async def test_each_request_is_a_genai_span(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    spans: InMemorySpanExporter,
) -> None:
    gw = serve()
    traced(gw, spans)
    plain = await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())
    await http.post(gw.url + ANTHROPIC.path, json=ANTHROPIC.body(stream=True), headers=ANTHROPIC.headers())
    await http.post(
        gw.url + "/v1/embeddings",
        json={"model": "amazon.titan-embed-text-v2:0", "input": "one two"},
        headers=OPENAI.headers(),
    )
    bedrock_emulator.faults.add(Fault.throttling(times=1))
    await http.post(gw.url + OPENAI.path, json=OPENAI.body(), headers=OPENAI.headers())
    await gw.usage.wait_for(4)

    chat, streamed, embed, throttled = spans.get_finished_spans()
    assert chat.name == f"chat {MODEL}"
    assert chat.kind is SpanKind.CLIENT
    assert chat.status.status_code is StatusCode.UNSET
    usage = plain.json()["usage"]
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "aws.bedrock",
        "gen_ai.system": "aws.bedrock",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL_ID,
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "http.response.status_code": 200,
        "aws.region": "us-east-1",
        "bedrock_mw.provider": "emulator",
        "bedrock_mw.attempts": 1,
        "bedrock_mw.request_id": plain.headers["x-request-id"],
    }
    assert chat.end_time is not None and chat.start_time is not None and chat.end_time > chat.start_time
    assert streamed.name == f"chat {MODEL}"
    assert (streamed.attributes or {})["gen_ai.usage.output_tokens"] == 3
    assert embed.name == "embeddings amazon.titan-embed-text-v2:0"
    assert (embed.attributes or {})["gen_ai.operation.name"] == "embeddings"
    assert (embed.attributes or {})["gen_ai.usage.input_tokens"] == 2
    assert throttled.status.status_code is StatusCode.ERROR
    assert (throttled.attributes or {})["error.type"] == "rate_limit"
    assert (throttled.attributes or {})["http.response.status_code"] == 429


async def test_cache_tokens_are_span_attributes(
    serve: ServeGateway, http: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    gw = serve()
    traced(gw, spans)
    system = [{"type": "text", "text": "Be brief. " * 20, "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        response = await http.post(
            gw.url + ANTHROPIC.path, json=ANTHROPIC.body(system=system), headers=ANTHROPIC.headers()
        )
        assert response.status_code == 200
    await gw.usage.wait_for(2)
    written, read = (dict(s.attributes or {}) for s in spans.get_finished_spans())
    written_tokens = written["gen_ai.usage.cache_creation.input_tokens"]
    assert isinstance(written_tokens, int) and written_tokens > 0
    assert "gen_ai.usage.cache_read.input_tokens" not in written
    assert read["gen_ai.usage.cache_read.input_tokens"] == written_tokens


async def test_session_and_end_user_are_span_attributes(
    serve: ServeGateway, http: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    gw = serve()
    traced(gw, spans)
    headers = {**ANTHROPIC.headers(), "x-claude-code-session-id": "sess-1"}
    response = await http.post(
        gw.url + ANTHROPIC.path, json=ANTHROPIC.body(metadata={"user_id": "user-7"}), headers=headers
    )
    assert response.status_code == 200
    await gw.usage.wait_for(1)
    (span,) = spans.get_finished_spans()
    assert (span.attributes or {})["session.id"] == "sess-1"
    assert (span.attributes or {})["enduser.id"] == "user-7"

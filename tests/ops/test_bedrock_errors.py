"""Every Bedrock error in the guidance table reaches both dialects with its status, type and advice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, BedrockEmulator, Fault
from bedrock_mw.testing.pytest_plugin import emulator_gateway_config

from .conftest import ANTHROPIC, DIALECTS, MODEL_ID, Dialect, ServeGateway

pytestmark = pytest.mark.anyio

IAM_MESSAGE = (
    "User: arn:aws:iam::123456789012:user/gateway is not authorized to perform: {action} on resource: "
    "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"
)
ON_DEMAND_MESSAGE = (
    "Invocation of model ID anthropic.claude-haiku-4-5-20251001-v1:0 with on-demand throughput isn't "
    "supported. Retry your request with the ID or ARN of an inference profile that contains this model."
)


@dataclass(frozen=True)
class Case:
    """A scripted Bedrock failure and what each dialect must show for it."""

    code: str
    fault: Fault | None
    # (status, Anthropic error type) and (status, OpenAI error type); statuses differ for "overloaded".
    anthropic: tuple[int, str]
    openai: tuple[int, str]
    phrases: tuple[str, ...]
    retry_after: str | None = None
    auth: dict[str, Any] | None = None  # provider auth replacing the working one


CASES = [
    Case(
        "ThrottlingException",
        Fault.throttling(retry_after="7"),
        (429, "rate_limit_error"),
        (429, "rate_limit_error"),
        ("Bedrock throttled provider emulator in us-east-1", "quotas are per region", "fallback provider"),
        retry_after="7",
    ),
    Case(
        "AccessDeniedException",
        Fault.access_denied(),
        (403, "permission_error"),
        (403, "permission_error"),
        (
            "You don't have access to the model with the specified model ID.",
            f"has not enabled access to {MODEL_ID} in us-east-1",
            "https://console.aws.amazon.com/bedrock/home?region=us-east-1#/modelaccess",
        ),
    ),
    Case(
        "AccessDeniedException",
        None,  # built per stream/plain: the IAM action named differs by operation
        (403, "permission_error"),
        (403, "permission_error"),
        ("is not authorized to perform", "The IAM identity of provider emulator lacks a permission"),
    ),
    Case(
        "ValidationException",
        Fault.validation(ON_DEMAND_MESSAGE),
        (400, "invalid_request_error"),
        (400, "invalid_request_error"),
        ("no on-demand throughput in Bedrock", "call it through an inference profile", MODEL_ID),
    ),
    Case(
        "ServiceUnavailableException",
        Fault.unavailable(retry_after="3"),
        (529, "overloaded_error"),
        (503, "server_error"),
        ("Bedrock is unavailable in us-east-1 right now", "add a fallback provider"),
        retry_after="3",
    ),
    Case(
        "InternalServerException",
        Fault.internal_error(),
        (500, "api_error"),
        (500, "server_error"),
        ("Bedrock had an internal error; retry the request.",),
    ),
    Case(
        "ModelNotReadyException",
        Fault.model_not_ready(),
        (529, "overloaded_error"),
        (503, "server_error"),
        ("The model is not ready yet in us-east-1 (a cold start); retry shortly.",),
    ),
    Case(
        "ModelTimeoutException",
        Fault(error="ModelTimeoutException"),
        (504, "timeout_error"),
        (504, "timeout_error"),
        ("The model took too long to answer",),
    ),
    Case(
        "ServiceQuotaExceededException",
        Fault(error="ServiceQuotaExceededException"),
        (429, "rate_limit_error"),
        (429, "rate_limit_error"),
        (f"A Bedrock service quota for {MODEL_ID} in us-east-1 is exhausted", "Service Quotas"),
    ),
    Case(
        "UnrecognizedClientException",
        None,
        (502, "api_error"),
        (502, "server_error"),
        ("did not recognise the AWS credentials of provider emulator", "must fix that provider's"),
        auth={
            "mode": "access_keys",
            "access_key_id": "AKIAUNKNOWN000000000",
            "secret_access_key": "not-a-known-secret-0000000000000000000000",
        },
    ),
    Case(
        "InvalidSignatureException",
        None,
        (502, "api_error"),
        (502, "server_error"),
        ("Bedrock rejected the request signature of provider emulator: its secret key is wrong.",),
        auth={
            "mode": "access_keys",
            "access_key_id": EMULATOR_ACCESS_KEY_ID,
            "secret_access_key": "wrong/secret/key/000000000000000000000000",
        },
    ),
    Case(
        "UnrecognizedClientException",
        None,
        (502, "api_error"),
        (502, "server_error"),
        ("did not recognise the AWS credentials of provider emulator",),
        auth={"mode": "api_key", "api_key": "ABSKd3JvbmctYXBpLWtleQ=="},
    ),
]
CASE_IDS = [
    "throttling",
    "model-access",
    "iam",
    "on-demand",
    "unavailable",
    "internal",
    "not-ready",
    "model-timeout",
    "quota",
    "unknown-access-key",
    "wrong-secret",
    "wrong-api-key",
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_a_bedrock_error_reaches_the_caller_with_status_type_advice_and_request_id(
    serve: ServeGateway,
    http: httpx.AsyncClient,
    bedrock_emulator: BedrockEmulator,
    case: Case,
    dialect: Dialect,
    stream: bool,
) -> None:
    config = emulator_gateway_config(bedrock_emulator)
    if case.auth is not None:
        config["providers"][0]["auth"] = case.auth
    gw = serve(config)
    phrases = case.phrases
    if case.fault is not None:
        bedrock_emulator.faults.add(case.fault)
    elif case.auth is None:  # the IAM case
        action = "bedrock:InvokeModelWithResponseStream" if stream else "bedrock:InvokeModel"
        bedrock_emulator.faults.add(Fault.access_denied(message=IAM_MESSAGE.format(action=action)))
        phrases = (*phrases, f"It needs {action} on the model")

    response = await http.post(
        gw.url + dialect.path, json=dialect.body(stream=stream), headers=dialect.headers()
    )

    status, error_type = case.anthropic if dialect is ANTHROPIC else case.openai
    assert response.status_code == status, response.text
    error = dialect.error(response)
    assert error["type"] == error_type
    if dialect is not ANTHROPIC:
        assert error["code"] == case.code  # OpenAI's ``code`` names Bedrock's error
    message = error["message"]
    assert message.startswith(f"Bedrock {case.code} (emulator, us-east-1, {MODEL_ID}): ")
    for phrase in phrases:
        assert phrase in message
    (upstream,) = bedrock_emulator.log.entries
    assert response.headers["x-amzn-requestid"] == upstream.request_id
    assert response.headers.get("retry-after") == case.retry_after
    assert response.headers["x-request-id"].startswith("req_")
    (record,) = await gw.usage.wait_for(1)
    assert record.status == status
    assert record.stream is False  # the stream never started: a plain error response

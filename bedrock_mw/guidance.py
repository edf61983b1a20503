"""Bedrock's errors, explained: one table from upstream failures to caller-facing errors.

Each row maps a Bedrock Runtime error (or a failure that never reached Bedrock) to an
:class:`ErrorKind` and a sentence saying what to do about it. Bedrock's quirks live here: quotas
are per region, model access is opted into per account and region, newer models need inference
profiles, and IAM needs one action per operation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .dispatch import UpstreamError
from .errors import ErrorKind, GatewayError
from .routing.model_ids import parse_model_id
from .routing.plan import profile_id_for

_IAM_ACTIONS = {
    "Converse": "bedrock:InvokeModel",
    "ConverseStream": "bedrock:InvokeModelWithResponseStream",
    "InvokeModel": "bedrock:InvokeModel",
    "InvokeModelWithResponseStream": "bedrock:InvokeModelWithResponseStream",
    "CountTokens": "bedrock:CountTokens",
    "ApplyGuardrail": "bedrock:ApplyGuardrail",
}

_CONSOLE = "https://console.aws.amazon.com/bedrock/home?region={region}#/modelaccess"


@dataclass(frozen=True, slots=True)
class _Rule:
    code: str
    kind: ErrorKind
    pattern: re.Pattern[str] | None
    advice: str


def _rule(code: str, kind: ErrorKind, advice: str, pattern: str | None = None) -> _Rule:
    return _Rule(code, kind, re.compile(pattern, re.IGNORECASE) if pattern else None, advice)


# First matching row wins: rows with a message pattern come before the catch-all for their code.
RULES: tuple[_Rule, ...] = (
    _rule(
        "ValidationException",
        ErrorKind.INVALID_REQUEST,
        "This model has no on-demand throughput in Bedrock: call it through an inference profile, "
        "for example {profile} (or its ARN).",
        r"on-demand throughput",
    ),
    _rule(
        "ValidationException",
        ErrorKind.NOT_FOUND,
        "Bedrock does not know this model id in {region}. Check the id, or use the model's "
        "inference-profile id (us., eu., apac., global.).",
        r"model identifier is invalid|model id.*(not|in)valid|could not resolve the foundation model",
    ),
    _rule("ValidationException", ErrorKind.INVALID_REQUEST, "Bedrock refused the request as invalid."),
    _rule(
        "AccessDeniedException",
        ErrorKind.PERMISSION,
        "This model does not support prompt caching on Bedrock; remove cache_control for it.",
        r"prompt caching",
    ),
    _rule(
        "AccessDeniedException",
        ErrorKind.PERMISSION,
        "The AWS account behind provider {provider} has not enabled access to {model} in {region}. "
        "Enable it in the Bedrock console under Model access ({console}), or route this key to a region "
        "or account that has it.",
        r"(don.t|do not) have access to the model|access to the model|model access",
    ),
    _rule(
        "AccessDeniedException",
        ErrorKind.PERMISSION,
        "An IAM or organisation policy explicitly denies this call for provider {provider}. Policies that "
        "demand a Bedrock guardrail (a condition on bedrock:GuardrailIdentifier) deny every model call "
        "made without one: configure a guardrail for this key, alias or provider (see docs/guardrails.md), "
        "or check the guardrail id and version the policy allows.",
        r"explicit deny",
    ),
    _rule(
        "AccessDeniedException",
        ErrorKind.PERMISSION,
        "The IAM identity of provider {provider} lacks a permission. It needs {action} on the model "
        "(bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream cover Converse and ConverseStream), "
        "and, for an inference profile, on the profile ARN and on the model in every region the "
        "profile routes to.",
        r"not authorized to perform|explicit deny|no identity-based policy",
    ),
    _rule(
        "AccessDeniedException",
        ErrorKind.PERMISSION,
        "Bedrock denied access for provider {provider} in {region}: check model access and IAM permissions.",
    ),
    _rule(
        "ThrottlingException",
        ErrorKind.RATE_LIMIT,
        "Bedrock throttled provider {provider} in {region}. Bedrock quotas are per region and per model: "
        "set the key's default_region to where your quota lives, add a fallback provider in another "
        "region, or use a cross-region inference profile (us., eu., global.).",
    ),
    _rule(
        "ServiceQuotaExceededException",
        ErrorKind.RATE_LIMIT,
        "A Bedrock service quota for {model} in {region} is exhausted: request an increase in Service "
        "Quotas, or route to another region.",
    ),
    _rule(
        "ModelNotReadyException",
        ErrorKind.OVERLOADED,
        "The model is not ready yet in {region} (a cold start); retry shortly.",
    ),
    _rule(
        "ServiceUnavailableException",
        ErrorKind.OVERLOADED,
        "Bedrock is unavailable in {region} right now; retry, or add a fallback provider in another region.",
    ),
    _rule(
        "InternalServerException", ErrorKind.API_ERROR, "Bedrock had an internal error; retry the request."
    ),
    _rule(
        "ModelTimeoutException",
        ErrorKind.TIMEOUT,
        "The model took too long to answer; retry, or ask for less.",
    ),
    _rule(
        "ModelErrorException", ErrorKind.BAD_GATEWAY, "The model failed while answering; retry the request."
    ),
    _rule("ModelStreamErrorException", ErrorKind.BAD_GATEWAY, "The model failed while streaming; retry."),
    _rule(
        "ResourceNotFoundException",
        ErrorKind.NOT_FOUND,
        "Bedrock found no such model or profile in {region}; check the id and the region.",
    ),
    _rule("ConflictException", ErrorKind.INVALID_REQUEST, "Bedrock reported a conflict for this request."),
    _rule(
        "UnrecognizedClientException",
        ErrorKind.BAD_GATEWAY,
        "Bedrock did not recognise the AWS credentials of provider {provider}: the gateway's operator must "
        "fix that provider's access key or API key.",
    ),
    _rule(
        "InvalidSignatureException",
        ErrorKind.BAD_GATEWAY,
        "Bedrock rejected the request signature of provider {provider}: its secret key is wrong.",
    ),
    _rule(
        "ExpiredTokenException",
        ErrorKind.BAD_GATEWAY,
        "The session token of provider {provider} has expired: the operator must refresh its credentials.",
    ),
    _rule(
        "MissingAuthenticationTokenException",
        ErrorKind.BAD_GATEWAY,
        "Provider {provider} sent no credentials Bedrock accepts.",
    ),
    _rule(
        "CredentialsError",
        ErrorKind.BAD_GATEWAY,
        "Provider {provider} has no usable AWS credentials (its default chain found none, or refreshing them "
        "failed): check the instance role, IRSA, or the configured keys.",
    ),
    _rule(
        "ConnectionError",
        ErrorKind.BAD_GATEWAY,
        "The TLS certificate of Bedrock's endpoint for provider {provider} is not one the gateway trusts: "
        "if a private CA signed it (a VPC proxy, a TLS-inspecting firewall), name that CA's PEM file in "
        "the provider's ca_bundle.",
        # OpenSSL's words (aiohttp, botocore), then rustls' (pyreqwest).
        r"CERTIFICATE_VERIFY_FAILED|invalid peer certificate",
    ),
    _rule(
        "ConnectionError",
        ErrorKind.BAD_GATEWAY,
        "The gateway could not reach Bedrock in {region} for provider {provider}; check network access and "
        "endpoint_url.",
    ),
    _rule(
        "Timeout",
        ErrorKind.TIMEOUT,
        "Bedrock did not answer provider {provider} in {region} in time (the provider's timeouts); Bedrock "
        "can be slow on a cold start.",
    ),
)

_FALLBACK = _rule("", ErrorKind.BAD_GATEWAY, "Bedrock answered with an unexpected error.")

# Which failure best explains a plan that failed everywhere: the caller's own mistake first, then
# access problems the caller can fix, then capacity, then infrastructure.
_RANK = {
    ErrorKind.INVALID_REQUEST: 0,
    ErrorKind.NOT_FOUND: 1,
    ErrorKind.PERMISSION: 2,
    ErrorKind.RATE_LIMIT: 3,
    ErrorKind.OVERLOADED: 4,
    ErrorKind.TIMEOUT: 5,
    ErrorKind.API_ERROR: 6,
    ErrorKind.BAD_GATEWAY: 7,
}


def _match(err: UpstreamError) -> _Rule:
    for rule in RULES:
        if rule.code == err.code and (rule.pattern is None or rule.pattern.search(err.message)):
            return rule
    return _FALLBACK


def _profile_hint(model_id: str, region: str) -> str:
    """The inference-profile id to suggest for a model refused on demand (routing decides which)."""
    try:
        ref = parse_model_id(model_id)
    except GatewayError:
        return model_id
    if ref.geo is not None or not region:
        return ref.model_id
    return profile_id_for(ref.base_model_id, region)


def explain(err: UpstreamError) -> GatewayError:
    """The caller-facing error for one failed Bedrock call, with Bedrock's message and what to do."""
    rule = _match(err)
    advice = rule.advice.format(
        provider=err.provider_id or "?",
        region=err.region or "?",
        model=err.model_id or "the model",
        action=_IAM_ACTIONS.get(err.operation, "bedrock:InvokeModel"),
        console=_CONSOLE.format(region=err.region or "us-east-1"),
        profile=_profile_hint(err.model_id, err.region),
    )
    where = ", ".join(p for p in (err.provider_id, err.region, err.model_id) if p)
    message = f"Bedrock {err.code} ({where}): {err.message.strip()} {advice}".strip()
    headers = {"x-amzn-requestid": err.request_id} if err.request_id else {}
    kind = rule.kind
    return GatewayError(kind, message, retry_after=err.retry_after, headers=headers, code=err.code)


def explain_all(failures: Sequence[UpstreamError]) -> GatewayError:
    """The most meaningful error of a routing plan whose every attempt failed, naming each attempt."""
    if not failures:
        return GatewayError(ErrorKind.BAD_GATEWAY, "No provider could serve this request.")
    explained = [explain(f) for f in failures]
    best = min(range(len(explained)), key=lambda i: (_RANK.get(explained[i].kind, 9), -i))
    chosen = explained[best]
    if len(failures) > 1:
        summary = "; ".join(
            f"{i + 1}. {f.provider_id}/{f.region}: {f.code} ({f.status})" for i, f in enumerate(failures)
        )
        chosen.message = f"{chosen.message} [all {len(failures)} attempts failed: {summary}]"
    return chosen

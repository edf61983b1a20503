"""Guardrail precedence (request / alias / key / provider / top level), wire forms and config shape."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_mw.config import (
    AliasEntry,
    ConfigError,
    GuardrailConfig,
    ProviderConfig,
    VirtualKeyConfig,
    load_config,
)
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.guardrails import (
    converse_guardrail_config,
    invoke_guardrail,
    invoke_guardrail_headers,
    native_intervened,
    outcome_of_converse,
    parse_request_guardrail,
    resolve_guardrail,
    responses_incomplete_details,
    with_guardrail,
)

G: dict[str, Any] = {"identifier": "topg", "version": "1"}
P: dict[str, Any] = {"identifier": "provg", "version": "2"}
K: dict[str, Any] = {"identifier": "keyg", "version": "3"}
A: dict[str, Any] = {"identifier": "aliasg", "version": "DRAFT"}
UNSET = object()


def _provider(guardrail: Any = UNSET) -> ProviderConfig:
    extra = {} if guardrail is UNSET else {"guardrail": guardrail}
    return ProviderConfig.model_validate(
        {"id": "p", "auth": {"mode": "api_key", "api_key": "x"}, "region": "us-east-1", **extra}
    )


def _key(guardrail: Any = UNSET, allow: bool = False) -> VirtualKeyConfig:
    extra = {} if guardrail is UNSET else {"guardrail": guardrail}
    return VirtualKeyConfig.model_validate(
        {"id": "k", "key": "vk", "providers": ["p"], "allow_request_guardrail": allow, **extra}
    )


def _alias(guardrail: Any = UNSET) -> AliasEntry:
    extra = {} if guardrail is UNSET else {"guardrail": guardrail}
    return AliasEntry.model_validate({"model": "claude-haiku-4-5", **extra})


def _resolve(
    top: Any = None,
    provider: Any = UNSET,
    key: Any = UNSET,
    alias: Any = UNSET,
    header: str | None = None,
    allow: bool = False,
) -> str | None:
    vk = _key(key, allow)
    spec = resolve_guardrail(
        top=None if top is None else GuardrailConfig.model_validate(top),
        provider=_provider(provider),
        key=vk,
        alias=None if alias is UNSET else _alias(alias),
        request_header=header,
        key_id=vk.id,
        allow_request=vk.allow_request_guardrail,
    )
    if spec is None:
        return None
    return f"{spec.identifier}:{spec.version}{'!' if spec.required else ''}"


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ({}, None),
        ({"top": G}, "topg:1"),
        ({"top": G, "provider": P}, "provg:2"),
        ({"top": G, "provider": P, "key": K}, "keyg:3"),
        ({"top": G, "provider": P, "key": K, "alias": A}, "aliasg:DRAFT"),
        ({"top": G, "key": K, "alias": UNSET}, "keyg:3"),  # an alias entry without the field inherits
        ({"top": G, "provider": None}, None),  # null switches the inherited one off
        ({"top": G, "key": None}, None),
        ({"key": K, "alias": None}, None),
        ({"top": {**G, "required": True}, "key": None}, "topg:1!"),  # ...unless it is required
        ({"provider": {**P, "required": True}, "alias": None}, "provg:2!"),
        ({"top": {**G, "required": True}, "key": K}, "keyg:3!"),  # replaced, still required
        ({"top": {**G, "required": True}, "key": K, "alias": None}, "keyg:3!"),
        ({"key": K, "alias": {"required": True}}, "keyg:3!"),  # a bare requirement keeps the named one
        ({"top": G, "provider": None, "key": K}, "keyg:3"),
        ({"top": {"required": True}, "key": K}, "keyg:3!"),  # a named one fills a bare requirement
        ({"top": {"required": True}, "key": K, "alias": None}, "keyg:3!"),
    ],
)
def test_the_most_specific_level_wins_and_null_cannot_drop_a_required_guardrail(
    levels: dict[str, Any], expected: str | None
) -> None:
    assert _resolve(**levels) == expected


def test_a_request_header_is_the_most_specific_level_on_keys_that_allow_it() -> None:
    assert _resolve(key=K, alias=A, header="reqg:7", allow=True) == "reqg:7"
    assert _resolve(key=None, header="reqg:7", allow=True) == "reqg:7"


def test_a_request_header_keeps_the_configured_trace_and_stream_mode() -> None:
    vk = _key({**K, "trace": "enabled_full", "stream_mode": "async"}, allow=True)
    spec = resolve_guardrail(
        top=None,
        provider=None,
        key=vk,
        alias=None,
        request_header="reqg:DRAFT",
        key_id="k",
        allow_request=True,
    )
    assert spec is not None
    assert (spec.identifier, spec.version, spec.trace, spec.stream_mode) == (
        "reqg",
        "DRAFT",
        "enabled_full",
        "async",
    )


def test_a_request_header_fills_a_bare_requirement() -> None:
    assert _resolve(key={"required": True}, header="reqg:1", allow=True) == "reqg:1!"


def test_a_request_header_cannot_replace_a_required_guardrail() -> None:
    with pytest.raises(GatewayError) as refused:
        _resolve(key={**K, "required": True}, header="other:1", allow=True)
    assert refused.value.kind is ErrorKind.PERMISSION and refused.value.code == "guardrail_required"
    assert _resolve(key={**K, "required": True}, header="keyg:3", allow=True) == "keyg:3!"


def test_a_request_header_on_a_key_without_permission_is_refused() -> None:
    with pytest.raises(GatewayError) as refused:
        _resolve(key=K, header="reqg:1", allow=False)
    assert refused.value.kind is ErrorKind.PERMISSION and refused.value.code == "guardrail_not_allowed"


def test_a_bare_requirement_with_nothing_to_fill_it_resolves_to_no_identifier() -> None:
    vk = _key({"required": True})
    spec = resolve_guardrail(
        top=None, provider=None, key=vk, alias=None, request_header=None, key_id="k", allow_request=False
    )
    assert spec is not None and spec.required and spec.identifier is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "abc:",
        ":1",
        "ABC:1",
        "abc:0",
        "abc:draft",
        "abc:1.0",
        "arn:aws:bedrock:us-east-1:12:guardrail/x:1",
    ],
)
def test_a_malformed_request_header_is_a_400(value: str) -> None:
    with pytest.raises(GatewayError) as refused:
        parse_request_guardrail(value)
    assert refused.value.kind is ErrorKind.INVALID_REQUEST


def test_a_request_header_may_name_a_guardrail_arn() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/k7qz2m9x4abc"
    assert parse_request_guardrail(f"{arn}:DRAFT") == (arn, "DRAFT")


@pytest.mark.parametrize(
    ("guardrail", "problem"),
    [
        ({"identifier": "Bad-Id", "version": "1"}, "identifier"),
        ({"identifier": "abc", "version": "0"}, "version"),
        ({"identifier": "abc"}, "give both"),
        ({}, "required"),
        ({"identifier": "abc", "version": "1", "trace": "on"}, "trace"),
        ({"identifier": "abc", "version": "1", "stream_mode": "later"}, "stream_mode"),
    ],
)
def test_guardrail_config_refuses_what_bedrock_would(guardrail: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config({"guardrail": guardrail})
    assert problem in str(refused.value)


def test_the_issue_configuration_shape_loads() -> None:
    target = "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    cfg = load_config(
        {
            "guardrail": {
                "identifier": "k7qz2m9x4abc",
                "version": "1",
                "trace": "enabled",
                "stream_mode": "async",
            },
            "virtual_keys": [
                {
                    "id": "team-a",
                    "key": "vk-a",
                    "providers": ["p"],
                    "guardrail": {"identifier": "k7qz2m9x4abc", "version": 1, "required": True},
                    "allow_request_guardrail": False,
                    "model_aliases": {
                        "haiku": target,
                        "haiku-strict": {
                            "model": target,
                            "guardrail": {"identifier": "p3r8t1w6yq0d", "version": "2"},
                        },
                        "haiku-open": {"model": target, "guardrail": None},
                    },
                }
            ],
        }
    )
    aliases = cfg.virtual_keys[0].model_aliases
    assert aliases["haiku"] == target
    strict, open_ = aliases["haiku-strict"], aliases["haiku-open"]
    assert isinstance(strict, AliasEntry) and isinstance(open_, AliasEntry)
    assert strict.guardrail is not None and strict.guardrail.version == "2"
    assert open_.guardrail is None and "guardrail" in open_.model_fields_set
    assert cfg.virtual_keys[0].guardrail is not None and cfg.virtual_keys[0].guardrail.version == "1"


def test_converse_and_invoke_wire_forms() -> None:
    spec = GuardrailConfig(identifier="abc", version="DRAFT", trace="enabled_full", stream_mode="async")
    assert converse_guardrail_config(spec, stream=False) == {
        "guardrailIdentifier": "abc",
        "guardrailVersion": "DRAFT",
        "trace": "enabled_full",
    }
    assert converse_guardrail_config(spec, stream=True)["streamProcessingMode"] == "async"
    assert invoke_guardrail_headers(spec) == {
        "X-Amzn-Bedrock-GuardrailIdentifier": "abc",
        "X-Amzn-Bedrock-GuardrailVersion": "DRAFT",
        "X-Amzn-Bedrock-Trace": "ENABLED_FULL",
    }
    assert invoke_guardrail_headers(None) == {}
    assert invoke_guardrail(spec) == {
        "guardrailIdentifier": "abc",
        "guardrailVersion": "DRAFT",
        "trace": "ENABLED_FULL",
    }
    assert invoke_guardrail(None) is None
    request = {"messages": []}
    assert with_guardrail(request, None, stream=False) is request
    assert "guardrailConfig" not in request  # attaching copies, the translated request stays as it was
    assert with_guardrail(request, spec, stream=False)["guardrailConfig"]["guardrailIdentifier"] == "abc"


def test_interventions_read_from_each_answer_shape() -> None:
    assert outcome_of_converse("guardrail_intervened", {"guardrail": {"x": 1}}).action == "INTERVENED"
    assert outcome_of_converse("guardrail_intervened", None).trace is None
    assert outcome_of_converse("end_turn", None).action == "NONE"
    assert native_intervened({"stop_reason": "end_turn", "amazon-bedrock-guardrailAction": "INTERVENED"})
    assert not native_intervened({"amazon-bedrock-guardrailAction": "NONE"})
    assert responses_incomplete_details("guardrail_intervened") == {"reason": "content_filter"}
    assert responses_incomplete_details("end_turn") is None

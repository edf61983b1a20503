"""The fallback plan: regions, profile upgrades and rewrites, provider profiles, skips; retry rules."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_mw.config import ProviderConfig, VirtualKeyConfig
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.model_ids import parse_model_id
from bedrock_mw.routing.plan import Attempt, is_retryable, plan_route, profile_id_for

ACCOUNT = "123456789012"
HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET_46 = "anthropic.claude-sonnet-4-6"
OPUS_41 = "anthropic.claude-opus-4-1-20250805-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"


def _provider(provider_id: str, region: str, profile_arn: str | None = None) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {
            "id": provider_id,
            "region": region,
            "auth": {"mode": "default_chain"},
            "inference_profile_arn": profile_arn,
        }
    )


def _key(**fields: Any) -> VirtualKeyConfig:
    return VirtualKeyConfig.model_validate({"id": "k", "key": "sk-k", "providers": ["a", "b"], **fields})


US_EAST = _provider("us-east", "us-east-1")
US_WEST = _provider("us-west", "us-west-2")
EU = _provider("eu", "eu-west-1")
TOKYO = _provider("tokyo", "ap-northeast-1")
SAO_PAULO = _provider("sao-paulo", "sa-east-1")


def _plan(model: str, providers: list[ProviderConfig], **key_fields: Any) -> list[tuple[str, str, str]]:
    plan = plan_route(parse_model_id(model), _key(**key_fields), providers)
    return [(a.provider.id, a.region, a.model_id) for a in plan.attempts]


# (model, providers, key fields, expected attempts)
PLAN_CASES: list[tuple[str, list[ProviderConfig], dict[str, Any], list[tuple[str, str, str]]]] = [
    # Region precedence for the primary: id region > key default_region > provider region.
    (LLAMA, [US_EAST, US_WEST], {}, [("us-east", "us-east-1", LLAMA), ("us-west", "us-west-2", LLAMA)]),
    (
        LLAMA,
        [US_EAST, US_WEST],
        {"default_region": "us-east-2"},
        [("us-east", "us-east-2", LLAMA), ("us-west", "us-west-2", LLAMA)],
    ),
    (
        f"bedrock/eu-central-1/{LLAMA}",
        [US_EAST, US_WEST],
        {"default_region": "us-east-2"},
        [("us-east", "eu-central-1", LLAMA), ("us-west", "eu-central-1", LLAMA)],
    ),
    # A model that needs a profile is upgraded to the profile of each attempt's own geography.
    (
        HAIKU_45,
        [US_EAST, EU],
        {},
        [("us-east", "us-east-1", "us." + HAIKU_45), ("eu", "eu-west-1", "eu." + HAIKU_45)],
    ),
    ("anthropic.claude-haiku-4-5-20251001", [EU], {}, [("eu", "eu-west-1", "eu." + HAIKU_45)]),
    (SONNET_46, [TOKYO], {}, [("tokyo", "ap-northeast-1", "jp." + SONNET_46)]),
    (
        "anthropic.claude-sonnet-4-20250514-v1:0",
        [TOKYO],
        {},
        [("tokyo", "ap-northeast-1", "apac.anthropic.claude-sonnet-4-20250514-v1:0")],
    ),
    (SONNET_46, [SAO_PAULO], {}, [("sao-paulo", "sa-east-1", "global." + SONNET_46)]),
    (f"bedrock/eu-west-3/{SONNET_46}", [US_EAST], {}, [("us-east", "eu-west-3", "eu." + SONNET_46)]),
    # A geo profile: kept where it serves; rewritten for a fallback in another geography.
    (
        "us." + SONNET_46,
        [US_EAST, EU],
        {},
        [("us-east", "us-east-1", "us." + SONNET_46), ("eu", "eu-west-1", "eu." + SONNET_46)],
    ),
    (
        "us." + SONNET_46,
        [US_EAST, US_WEST],
        {},
        [("us-east", "us-east-1", "us." + SONNET_46), ("us-west", "us-west-2", "us." + SONNET_46)],
    ),
    # The primary is not moved out of the chosen geography; a fallback in it serves the request.
    (
        "us." + SONNET_46,
        [EU, US_EAST],
        {"default_region": "eu-central-1"},
        [("us-east", "us-east-1", "us." + SONNET_46)],
    ),
    (
        "global." + SONNET_46,
        [US_EAST, EU, SAO_PAULO],
        {},
        [
            ("us-east", "us-east-1", "global." + SONNET_46),
            ("eu", "eu-west-1", "global." + SONNET_46),
            ("sao-paulo", "sa-east-1", "global." + SONNET_46),
        ],
    ),
    # A model unknown to the catalogue is assumed offered: the rewrite goes ahead.
    (
        "us.vendor.new-model-v1:0",
        [US_EAST, EU],
        {},
        [
            ("us-east", "us-east-1", "us.vendor.new-model-v1:0"),
            ("eu", "eu-west-1", "eu.vendor.new-model-v1:0"),
        ],
    ),
    # ARNs keep their region for every attempt.
    (
        f"arn:aws:bedrock:us-west-2:{ACCOUNT}:provisioned-model/abc123",
        [US_EAST, EU],
        {},
        [
            ("us-east", "us-west-2", f"arn:aws:bedrock:us-west-2:{ACCOUNT}:provisioned-model/abc123"),
            ("eu", "us-west-2", f"arn:aws:bedrock:us-west-2:{ACCOUNT}:provisioned-model/abc123"),
        ],
    ),
    (
        f"arn:aws:bedrock:us-east-1::foundation-model/{LLAMA}",
        [EU, US_WEST],
        {},
        [
            ("eu", "us-east-1", f"arn:aws:bedrock:us-east-1::foundation-model/{LLAMA}"),
            ("us-west", "us-east-1", f"arn:aws:bedrock:us-east-1::foundation-model/{LLAMA}"),
        ],
    ),
    # A system profile ARN names one account's copy: fallbacks use the profile id, same region.
    (
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{SONNET_46}",
        [US_EAST, EU],
        {},
        [
            ("us-east", "us-east-1", f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{SONNET_46}"),
            ("eu", "us-east-1", "us." + SONNET_46),
        ],
    ),
]


@pytest.mark.parametrize(
    ("model", "providers", "key_fields", "expected"),
    PLAN_CASES,
    ids=[f"{i}-{c[0][:40]}" for i, c in enumerate(PLAN_CASES)],
)
def test_plan_route_golden_cases(
    model: str,
    providers: list[ProviderConfig],
    key_fields: dict[str, Any],
    expected: list[tuple[str, str, str]],
) -> None:
    assert _plan(model, providers, **key_fields) == expected


def test_fallback_providers_use_their_own_region_not_the_keys_default() -> None:
    attempts = _plan(LLAMA, [US_EAST, EU, US_WEST], default_region="us-east-2")
    assert [region for _, region, _ in attempts] == ["us-east-2", "eu-west-1", "us-west-2"]


def test_a_fallback_where_the_model_is_not_offered_is_skipped_and_noted() -> None:
    plan = plan_route(parse_model_id("us." + OPUS_41), _key(), [US_EAST, EU, US_WEST])
    assert [a.provider.id for a in plan.attempts] == ["us-east", "us-west"]
    assert len(plan.skipped) == 1
    assert "'eu'" in plan.skipped[0] and "eu-west-1" in plan.skipped[0]


def test_a_bare_id_needing_a_profile_where_none_exists_is_skipped() -> None:
    plan = plan_route(parse_model_id(OPUS_41), _key(), [EU, US_EAST])
    assert [(a.provider.id, a.model_id) for a in plan.attempts] == [("us-east", "us." + OPUS_41)]
    assert "needs an inference profile" in plan.skipped[0]


def test_no_attempt_left_gives_an_empty_plan_with_every_reason() -> None:
    plan = plan_route(parse_model_id(OPUS_41), _key(), [EU, SAO_PAULO])
    assert plan.attempts == ()
    assert len(plan.skipped) == 2


def test_a_geo_profile_outside_every_region_the_key_reaches_is_a_400_naming_the_region() -> None:
    with pytest.raises(GatewayError) as caught:
        _plan("us." + SONNET_46, [EU], default_region="eu-central-1")
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert "eu-central-1" in caught.value.message and "eu." + SONNET_46 in caught.value.message


def test_a_geo_profile_pinned_to_a_region_outside_it_is_a_400() -> None:
    ref = parse_model_id("us." + SONNET_46)
    pinned = type(ref)(
        ref.requested, ref.model_id, ref.base_model_id, "eu-west-1", ref.geo, ref.kind, ref.family
    )
    with pytest.raises(GatewayError) as caught:
        plan_route(pinned, _key(), [US_EAST])
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert "eu.anthropic.claude-sonnet-4-6" in caught.value.message


PROFILE_ARN = f"arn:aws:bedrock:us-east-2:{ACCOUNT}:inference-profile/us.{SONNET_46}"


def test_a_providers_profile_arn_serves_requests_for_its_model_in_the_arns_region() -> None:
    with_profile = _provider("pooled", "us-east-1", PROFILE_ARN)
    assert _plan(SONNET_46, [with_profile, EU]) == [
        ("pooled", "us-east-2", PROFILE_ARN),
        ("eu", "eu-west-1", "eu." + SONNET_46),
    ]
    assert _plan("us." + SONNET_46, [with_profile]) == [("pooled", "us-east-2", PROFILE_ARN)]


def test_a_providers_profile_arn_is_not_used_for_other_models_or_other_pins() -> None:
    with_profile = _provider("pooled", "us-east-1", PROFILE_ARN)
    assert _plan(HAIKU_45, [with_profile]) == [("pooled", "us-east-1", "us." + HAIKU_45)]
    assert _plan("global." + SONNET_46, [with_profile]) == [("pooled", "us-east-1", "global." + SONNET_46)]
    assert _plan(f"bedrock/us-west-2/{SONNET_46}", [with_profile]) == [
        ("pooled", "us-west-2", "us." + SONNET_46)
    ]


def test_an_application_profile_arn_of_a_provider_cannot_be_matched_to_a_model() -> None:
    app_profile = _provider(
        "app", "us-east-1", f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/x1"
    )
    assert _plan(SONNET_46, [app_profile]) == [("app", "us-east-1", "us." + SONNET_46)]


def test_the_plan_carries_the_model_ref_and_attempts_are_targets() -> None:
    ref = parse_model_id(LLAMA)
    plan = plan_route(ref, _key(), [US_EAST])
    assert plan.model is ref
    assert plan.attempts == (Attempt(US_EAST, "us-east-1", LLAMA),)


@pytest.mark.parametrize(
    ("base", "region", "expected"),
    [
        (SONNET_46, "us-west-2", "us." + SONNET_46),
        (SONNET_46, "ca-central-1", "us." + SONNET_46),
        (SONNET_46, "eu-north-1", "eu." + SONNET_46),
        (SONNET_46, "ap-southeast-2", "au." + SONNET_46),
        (SONNET_46, "ap-south-1", "global." + SONNET_46),
        (
            "anthropic.claude-sonnet-4-20250514-v1:0",
            "ap-southeast-2",
            "apac.anthropic.claude-sonnet-4-20250514-v1:0",
        ),
        (
            "meta.llama4-maverick-17b-instruct-v1:0",
            "ap-northeast-1",
            "apac.meta.llama4-maverick-17b-instruct-v1:0",
        ),
        (
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us-gov-west-1",
            "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (SONNET_46, "us-gov-west-1", "us-gov." + SONNET_46),
        (
            "meta.llama4-maverick-17b-instruct-v1:0",
            "me-central-1",
            "global.meta.llama4-maverick-17b-instruct-v1:0",
        ),
    ],
)
def test_profile_id_for(base: str, region: str, expected: str) -> None:
    assert profile_id_for(base, region) == expected


@pytest.mark.parametrize(
    ("status", "code", "retry"),
    [
        (429, "ThrottlingException", True),
        (503, "ServiceUnavailableException", True),
        (500, "InternalServerException", True),
        (429, "ModelNotReadyException", True),
        (408, "ModelTimeoutException", True),
        (400, "ServiceQuotaExceededException", True),
        (403, "AccessDeniedException", True),
        (403, "UnrecognizedClientException", True),
        (403, "ExpiredTokenException", True),
        (404, "ResourceNotFoundException", True),
        (502, "ConnectionError", True),
        (504, "Timeout", True),
        (401, "CredentialsError", True),
        (0, None, True),
        (529, None, True),
        (400, "ValidationException", False),
        (424, "ModelErrorException", False),
        (400, None, False),
        (413, None, False),
        (422, None, False),
        (400, "com.amazon.coral.validate#ValidationException", False),
        (500, "ModelStreamErrorException", False),
        (418, "SomethingNew", False),
        (503, "SomethingNew", True),
    ],
)
def test_is_retryable_table(status: int, code: str | None, retry: bool) -> None:
    assert is_retryable(status, code) is retry


# --- allowed_regions (data residency) ---


def test_allowed_regions_refuse_an_explicit_region_outside_them_with_a_403() -> None:
    with pytest.raises(GatewayError) as caught:
        _plan(f"bedrock/us-east-1/{LLAMA}", [EU], allowed_regions=["eu-*"])
    assert caught.value.kind is ErrorKind.PERMISSION
    assert "allowed_regions" in caught.value.message and "us-east-1" in caught.value.message


def test_allowed_regions_refuse_a_global_profile() -> None:
    with pytest.raises(GatewayError) as caught:
        _plan("global." + SONNET_46, [EU], allowed_regions=["eu-west-1"])
    assert caught.value.kind is ErrorKind.PERMISSION
    assert "global" in caught.value.message


def test_allowed_regions_refuse_another_regions_arn() -> None:
    arn = f"arn:aws:bedrock:us-west-2:{ACCOUNT}:inference-profile/us.{HAIKU_45}"
    with pytest.raises(GatewayError) as caught:
        _plan(arn, [EU], allowed_regions=["eu-west-1", "eu-central-1"])
    assert caught.value.kind is ErrorKind.PERMISSION and "us-west-2" in caught.value.message


def test_allowed_regions_skip_fallbacks_outside_them_and_name_them() -> None:
    plan = plan_route(parse_model_id(LLAMA), _key(allowed_regions=["eu-*"]), [EU, US_EAST])
    assert [(a.provider.id, a.region) for a in plan.attempts] == [("eu", "eu-west-1")]
    (note,) = plan.skipped
    assert "'us-east'" in note and "allowed_regions" in note


def test_allowed_regions_let_a_primary_outside_them_fall_to_a_fallback_inside() -> None:
    assert _plan(LLAMA, [US_EAST, EU], allowed_regions=["eu-west-1"]) == [("eu", "eu-west-1", LLAMA)]


def test_allowed_regions_keep_a_geography_profile_called_from_an_allowed_region() -> None:
    assert _plan(SONNET_46, [EU], allowed_regions=["eu-*"]) == [("eu", "eu-west-1", "eu." + SONNET_46)]


def test_without_allowed_regions_every_region_and_global_are_reachable() -> None:
    assert _plan(f"bedrock/us-east-1/{LLAMA}", [EU]) == [("eu", "us-east-1", LLAMA)]


@pytest.mark.parametrize("bad", ["EU-WEST-1", "eu west", "", "eu_west_1"])
def test_allowed_regions_reject_entries_that_are_not_region_names_or_globs(bad: str) -> None:
    with pytest.raises(ValueError, match="region"):
        _key(allowed_regions=[bad])

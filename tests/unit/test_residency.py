"""Data residency and account boundaries: the rule, table-driven, and the plan that applies it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bedrock_mw.config import ProviderConfig, VirtualKeyConfig
from bedrock_mw.dispatch import AccountListing
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.access import listing_origin
from bedrock_mw.routing.discovery import AccountModels
from bedrock_mw.routing.model_ids import parse_model_id
from bedrock_mw.routing.plan import plan_route
from bedrock_mw.routing.residency import GEO_SPAN, geo_covered, outside_regions, reach_of, region_allowed

ACCOUNT = "123456789012"
OTHER = "210987654321"


def arn(kind: str, resource: str, account: str = ACCOUNT, region: str = "eu-west-1") -> str:
    return f"arn:aws:bedrock:{region}:{account}:{kind}/{resource}"


OPAQUE = "abc123def456"
SONNET_46 = "anthropic.claude-sonnet-4-6"
HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
NOVA = "amazon.nova-pro-v1:0"


def _provider(provider_id: str, region: str, **fields: Any) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {"id": provider_id, "region": region, "auth": {"mode": "default_chain"}, **fields}
    )


def _key(**fields: Any) -> VirtualKeyConfig:
    return VirtualKeyConfig.model_validate({"id": "k", "key": "sk-k", "providers": ["a"], **fields})


EU = _provider("eu", "eu-west-1", account_id=ACCOUNT)
US = _provider("us", "us-east-1", account_id=ACCOUNT)
UNKNOWN_ACCOUNT = _provider("eu-anon", "eu-west-1")


# (allowed_regions, geography, covered)
GEO_CASES: list[tuple[list[str], str, bool]] = [
    (["eu-*"], "eu", True),
    (["e*"], "eu", True),
    (["*"], "eu", True),
    (["*-*"], "eu", True),
    (["eu-west-1", "eu-central-1"], "eu", False),
    (["eu-west-*"], "eu", False),
    (["eu-*-1"], "eu", False),
    (["us-*"], "us", True),
    (["us-east-*", "us-west-*"], "us", True),
    (["us-east-1", "us-east-2", "us-west-2"], "us", False),
    (["us-east-*"], "us", False),
    (["eu-*"], "us", False),
    (["ap-northeast-1", "ap-northeast-3"], "jp", True),
    (["ap-northeast-1"], "jp", False),
    (["ap-*"], "jp", True),
    (["ap-*"], "au", True),
    (["ap-southeast-2", "ap-southeast-4"], "au", True),
    (["ap-*"], "apac", True),
    (["ap-northeast-*", "ap-southeast-*"], "apac", False),
    (["ca-*"], "ca", True),
    (["us-gov-*"], "us-gov", True),
    (["us-*"], "us-gov", True),
    (["eu-*", "us-*", "ap-*"], "global", False),
    (["*"], "global", True),
]


@pytest.mark.parametrize(("patterns", "geo", "covered"), GEO_CASES)
def test_a_geography_is_allowed_only_when_the_globs_cover_all_of_it(
    patterns: list[str], geo: str, covered: bool
) -> None:
    assert geo_covered(patterns, geo) is covered


APP_ARN = arn("application-inference-profile", OPAQUE)

# (model sent, region called, allowed_regions, the words of the refusal or None when allowed)
REACH_CASES: list[tuple[str, str, list[str], str | None]] = [
    (NOVA, "eu-west-1", ["eu-*"], None),
    (NOVA, "us-east-1", ["eu-*"], "us-east-1 is not in"),
    (f"eu.{SONNET_46}", "eu-west-1", ["eu-*"], None),
    (f"eu.{SONNET_46}", "eu-west-1", ["eu-west-1"], "'eu.' inference profile may run in any of eu-*"),
    (f"us.{SONNET_46}", "us-east-1", ["eu-*"], "us-east-1 is not in"),
    (f"us.{SONNET_46}", "us-east-1", ["us-east-1"], "'us.' inference profile"),
    (f"us.{SONNET_46}", "ca-central-1", ["ca-*"], "'us.' inference profile"),
    (f"global.{SONNET_46}", "eu-west-1", ["eu-*"], "any commercial region"),
    (f"global.{SONNET_46}", "eu-west-1", ["*"], None),
    (f"jp.{SONNET_46}", "ap-northeast-1", ["ap-northeast-1", "ap-northeast-3"], None),
    (f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/eu.{HAIKU_45}", "eu-west-1", ["eu-*"], None),
    (
        f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/eu.{HAIKU_45}",
        "eu-west-1",
        ["eu-west-1"],
        "'eu.' inference profile",
    ),
    (f"arn:aws:bedrock:eu-west-1::foundation-model/{NOVA}", "eu-west-1", ["eu-west-1"], None),
    (
        arn("provisioned-model", OPAQUE, region="us-east-1"),
        "us-east-1",
        ["eu-*"],
        "us-east-1",
    ),
    (arn("imported-model", OPAQUE), "eu-west-1", ["eu-west-1"], None),
    (
        arn("custom-model-deployment", OPAQUE),
        "eu-west-1",
        ["eu-west-1"],
        None,
    ),
    (
        arn("custom-model", "amazon.nova-lite-v1/" + OPAQUE),
        "eu-west-1",
        ["eu-west-1"],
        None,
    ),
    (APP_ARN, "eu-west-1", ["eu-*"], "regions application inference profile"),  # regions unknown
]


@pytest.mark.parametrize(("model", "region", "patterns", "refusal"), REACH_CASES)
def test_where_a_call_may_run_decides_whether_allowed_regions_hold_it(
    model: str, region: str, patterns: list[str], refusal: str | None
) -> None:
    why = outside_regions(patterns, reach_of(parse_model_id(model), region))
    if refusal is None:
        assert why is None
    else:
        assert why is not None and refusal in why


@pytest.mark.parametrize(
    ("regions", "patterns", "allowed"),
    [
        (frozenset({"eu-west-1"}), ["eu-west-1"], True),
        (frozenset({"eu-west-1", "eu-central-1", "eu-north-1"}), ["eu-*"], True),
        (frozenset({"eu-west-1", "eu-central-1", "eu-north-1"}), ["eu-west-1", "eu-central-1"], False),
        (frozenset({"us-east-1", "us-east-2", "us-west-2"}), ["eu-*"], False),
    ],
)
def test_an_application_profile_is_held_to_every_region_its_source_runs_in(
    regions: frozenset[str], patterns: list[str], allowed: bool
) -> None:
    ref = replace(parse_model_id(APP_ARN), profile_regions=regions)
    assert (outside_regions(patterns, reach_of(ref, "eu-west-1")) is None) is allowed


def test_the_plan_refuses_a_us_profile_for_a_key_held_to_one_us_region_with_a_403() -> None:
    with pytest.raises(GatewayError) as caught:
        plan_route(parse_model_id(f"us.{SONNET_46}"), _key(allowed_regions=["us-east-1"]), [US])
    assert caught.value.kind is ErrorKind.PERMISSION
    assert "allowed_regions" in caught.value.message and "'us.'" in caught.value.message


def test_the_plan_skips_a_geography_the_list_covers_only_in_part_and_keeps_an_in_region_fallback() -> None:
    # eu-west-1 alone: the eu. profile may leave it; nova is served in-region on demand.
    with pytest.raises(GatewayError) as caught:
        plan_route(parse_model_id(SONNET_46), _key(allowed_regions=["eu-west-1"]), [EU])
    assert caught.value.kind is ErrorKind.PERMISSION
    plan = plan_route(parse_model_id(NOVA), _key(allowed_regions=["eu-west-1"]), [US, EU])
    assert [(a.provider.id, a.region) for a in plan.attempts] == [("eu", "eu-west-1")]


# (model, providers, allowed_regions, expected attempt provider ids, or the words of the 403)
ACCOUNT_CASES: list[tuple[str, list[ProviderConfig], list[str] | None, list[str] | str]] = [
    (arn("application-inference-profile", OPAQUE), [EU], None, ["eu"]),
    (arn("application-inference-profile", OPAQUE, OTHER), [EU], None, OTHER),
    (arn("provisioned-model", OPAQUE, OTHER), [EU], None, "another AWS account"),
    (arn("imported-model", OPAQUE, OTHER), [EU], None, ACCOUNT),
    # The account is unknown: not guessed, Bedrock decides.
    (
        arn("provisioned-model", OPAQUE, OTHER),
        [UNKNOWN_ACCOUNT],
        None,
        ["eu-anon"],
    ),
    # Skipped where the account is known, kept where it is not.
    (
        arn("provisioned-model", OPAQUE, OTHER),
        [EU, UNKNOWN_ACCOUNT],
        None,
        ["eu-anon"],
    ),
    # A primary's inference-profile ARN of another account: the fallback uses its own copy of the profile.
    (f"arn:aws:bedrock:eu-west-1:{OTHER}:inference-profile/eu.{HAIKU_45}", [EU], None, "another AWS account"),
    # No account in the ARN: nothing to compare.
    (f"arn:aws:bedrock:eu-west-1::foundation-model/{NOVA}", [EU], None, ["eu"]),
    (f"arn:aws:bedrock:eu-west-1::inference-profile/eu.{HAIKU_45}", [EU], ["eu-*"], ["eu"]),
]


@pytest.mark.parametrize(("model", "providers", "regions", "expected"), ACCOUNT_CASES)
def test_an_arn_of_another_account_never_goes_through_a_provider_whose_account_is_known(
    model: str, providers: list[ProviderConfig], regions: list[str] | None, expected: list[str] | str
) -> None:
    key = _key(allowed_regions=regions)
    if isinstance(expected, str):
        with pytest.raises(GatewayError) as caught:
            plan_route(parse_model_id(model), key, providers)
        assert caught.value.kind is ErrorKind.PERMISSION and expected in caught.value.message
    else:
        plan = plan_route(parse_model_id(model), key, providers)
        assert [a.provider.id for a in plan.attempts] == expected


def test_the_assumed_roles_account_is_the_providers_account() -> None:
    provider = _provider(
        "r",
        "eu-west-1",
        auth={"mode": "default_chain", "assume_role": {"role_arn": f"arn:aws:iam::{OTHER}:role/x"}},
    )
    assert provider.known_account == OTHER
    with pytest.raises(GatewayError, match=OTHER):
        plan_route(parse_model_id(arn("provisioned-model", OPAQUE)), _key(), [provider])


@pytest.mark.parametrize(
    "fields",
    [
        {"account_id": "12345"},
        {
            "account_id": ACCOUNT,
            "auth": {"mode": "default_chain", "assume_role": {"role_arn": f"arn:aws:iam::{OTHER}:role/x"}},
        },
        {
            "account_id": ACCOUNT,
            "inference_profile_arn": f"arn:aws:bedrock:eu-west-1:{OTHER}:inference-profile/eu.{HAIKU_45}",
        },
    ],
    ids=["not-12-digits", "role-in-another-account", "profile-in-another-account"],
)
def test_a_provider_account_that_contradicts_the_config_is_a_config_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="account"):
        _provider("p", "eu-west-1", **fields)


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        (arn("imported-model", OPAQUE), "imported-model-arn"),
        (
            arn("custom-model-deployment", OPAQUE),
            "custom-model-deployment-arn",
        ),
        (
            arn("custom-model", "amazon.nova-lite-v1/" + OPAQUE),
            "custom-model-arn",
        ),
    ],
)
def test_imported_and_custom_model_arns_parse_with_their_region_and_account(arn: str, kind: str) -> None:
    ref = parse_model_id(arn)
    assert (ref.kind, ref.region, ref.account, ref.model_id) == (kind, "eu-west-1", ACCOUNT, arn)


@pytest.mark.parametrize(
    "bad",
    [
        f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:custom-model/abc123def456",
        f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:imported-model/a/b",
        f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:provisioned-model/Upper/abc",
    ],
)
def test_malformed_custom_and_imported_arns_are_a_400(bad: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_model_id(bad)
    assert caught.value.kind is ErrorKind.INVALID_REQUEST


def test_an_application_profiles_regions_are_those_of_its_models_arns() -> None:
    us_arn = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/usapp0000001"
    listing = AccountListing(
        application_profiles=[
            {
                "inferenceProfileArn": APP_ARN,
                "models": [{"modelArn": f"arn:aws:bedrock:eu-west-1::foundation-model/{NOVA}"}],
            },
            {
                "inferenceProfileArn": us_arn,
                "models": [
                    {"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{HAIKU_45}"}
                    for region in ("us-east-1", "us-east-2", "us-west-2")
                ],
            },
        ]
    )
    account = AccountModels.from_listing(listing)
    assert account.app_regions == {
        APP_ARN: frozenset({"eu-west-1"}),
        us_arn: frozenset({"us-east-1", "us-east-2", "us-west-2"}),
    }


# -- the coverage rule is sound: a geography judged covered has no region outside the list ----------
_PATTERN = st.one_of(
    st.sampled_from(
        ["*", "*-*", "e*", "eu-*", "us-*", "us-e*", "us-west-*", "ap-*", "a?-*", "ca-*", "ap-northeast-1"]
    ),
    st.text(alphabet="aceinopstuw-1234*?", min_size=1, max_size=12),
)
_SUFFIX = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=14)


@given(
    patterns=st.lists(_PATTERN, min_size=1, max_size=4),
    geo=st.sampled_from(sorted(GEO_SPAN)),
    data=st.data(),
)
def test_a_geography_judged_covered_leaves_no_region_of_it_outside_the_list(
    patterns: list[str], geo: str, data: st.DataObject
) -> None:
    if not geo_covered(patterns, geo):
        return
    for part in GEO_SPAN[geo]:
        # Every region the geography may run in, those AWS opens later included: any suffix of a prefix.
        region = part + data.draw(_SUFFIX) if part == "" or part.endswith("-") else part
        assert region_allowed(patterns, region), (patterns, geo, region)


@pytest.mark.parametrize(
    ("key_fields", "expected"),
    [
        ({}, ("eu", "eu-west-1")),
        ({"default_region": "eu-central-1"}, ("eu", "eu-central-1")),
        ({"allowed_regions": ["eu-*"]}, ("eu", "eu-west-1")),
        ({"allowed_regions": ["us-*"]}, ("us", "us-east-1")),
        ({"allowed_regions": ["us-*"], "default_region": "us-west-2"}, ("eu", "us-west-2")),
        ({"allowed_regions": ["sa-*"]}, ("eu", "eu-west-1")),  # nothing admitted: listings come out empty
    ],
)
def test_a_listing_is_taken_from_the_first_provider_region_the_key_may_reach(
    key_fields: dict[str, Any], expected: tuple[str, str]
) -> None:
    origin = listing_origin(_key(**key_fields), [EU, US])
    assert origin is not None and (origin[0].id, origin[1]) == expected

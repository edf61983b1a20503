"""The model-id grammar, the catalogue, and resolving requested names (aliases, names, ids)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedrock_mw.config import VirtualKeyConfig
from bedrock_mw.errors import ErrorKind, GatewayError
from bedrock_mw.routing.catalogue import KNOWN_MODELS, Catalogue, normalise_model_id
from bedrock_mw.routing.model_ids import geo_serves, parse_model_id, region_geographies, resolve_model
from bedrock_mw.stores import StaticAliasStore

HAIKU_45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET_46 = "anthropic.claude-sonnet-4-6"
ACCOUNT = "123456789012"

# text -> (model_id, base_model_id, region, geo, kind)
PARSE_CASES: list[tuple[str, tuple[str, str, str | None, str | None, str]]] = [
    (
        "anthropic.claude-3-haiku-20240307-v1:0",
        (
            "anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
            None,
            None,
            "foundation",
        ),
    ),
    ("anthropic.claude-haiku-4-5-20251001", (HAIKU_45, HAIKU_45, None, None, "foundation")),
    (SONNET_46, (SONNET_46, SONNET_46, None, None, "foundation")),
    (
        "anthropic.claude-opus-4-6-v1:0",
        ("anthropic.claude-opus-4-6-v1", "anthropic.claude-opus-4-6-v1", None, None, "foundation"),
    ),
    (
        "meta.llama3-1-70b-instruct-v1:0",
        ("meta.llama3-1-70b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0", None, None, "foundation"),
    ),
    (
        "amazon.titan-text-express-v1",
        ("amazon.titan-text-express-v1", "amazon.titan-text-express-v1", None, None, "foundation"),
    ),
    ("bedrock/" + SONNET_46, (SONNET_46, SONNET_46, None, None, "foundation")),
    ("bedrock/eu-west-1/" + SONNET_46, (SONNET_46, SONNET_46, "eu-west-1", None, "foundation")),
    ("eu-central-1/" + SONNET_46, (SONNET_46, SONNET_46, "eu-central-1", None, "foundation")),
    ("us.anthropic.claude-haiku-4-5-20251001", ("us." + HAIKU_45, HAIKU_45, None, "us", "inference-profile")),
    ("eu." + SONNET_46, ("eu." + SONNET_46, SONNET_46, None, "eu", "inference-profile")),
    (
        "apac.anthropic.claude-sonnet-4-20250514-v1:0",
        (
            "apac.anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic.claude-sonnet-4-20250514-v1:0",
            None,
            "apac",
            "inference-profile",
        ),
    ),
    ("global." + SONNET_46, ("global." + SONNET_46, SONNET_46, None, "global", "inference-profile")),
    (
        "jp.anthropic.claude-opus-4-7",
        ("jp.anthropic.claude-opus-4-7", "anthropic.claude-opus-4-7", None, "jp", "inference-profile"),
    ),
    (
        "us-gov.anthropic.claude-3-7-sonnet-20250219-v1:0",
        (
            "us-gov.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            None,
            "us-gov",
            "inference-profile",
        ),
    ),
    (
        "bedrock/eu-west-1/global." + SONNET_46,
        ("global." + SONNET_46, SONNET_46, "eu-west-1", "global", "inference-profile"),
    ),
    (
        "bedrock/ap-northeast-1/jp." + SONNET_46,
        ("jp." + SONNET_46, SONNET_46, "ap-northeast-1", "jp", "inference-profile"),
    ),
    (
        f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU_45}",
        (
            f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU_45}",
            HAIKU_45,
            "us-east-1",
            None,
            "foundation-arn",
        ),
    ),
    (
        f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/eu.{SONNET_46}",
        (
            f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/eu.{SONNET_46}",
            SONNET_46,
            "eu-west-1",
            "eu",
            "inference-profile-arn",
        ),
    ),
    (
        f"arn:aws:bedrock:us-west-2:{ACCOUNT}:application-inference-profile/a1b2c3d4e5",
        (
            f"arn:aws:bedrock:us-west-2:{ACCOUNT}:application-inference-profile/a1b2c3d4e5",
            f"arn:aws:bedrock:us-west-2:{ACCOUNT}:application-inference-profile/a1b2c3d4e5",
            "us-west-2",
            None,
            "application-inference-profile-arn",
        ),
    ),
    (
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc123",
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc123",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc123",
            "us-east-1",
            None,
            "provisioned-model-arn",
        ),
    ),
    (
        f"bedrock/us-east-1/arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc123",
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc123",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc123",
            "us-east-1",
            None,
            "provisioned-model-arn",
        ),
    ),
    (
        f"arn:aws-us-gov:bedrock:us-gov-west-1:{ACCOUNT}:inference-profile/us-gov.{SONNET_46}",
        (
            f"arn:aws-us-gov:bedrock:us-gov-west-1:{ACCOUNT}:inference-profile/us-gov.{SONNET_46}",
            SONNET_46,
            "us-gov-west-1",
            "us-gov",
            "inference-profile-arn",
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES, ids=[case[0] for case in PARSE_CASES])
def test_parse_model_id_golden_cases(
    text: str, expected: tuple[str, str, str | None, str | None, str]
) -> None:
    ref = parse_model_id(text)
    assert (ref.model_id, ref.base_model_id, ref.region, ref.geo, ref.kind) == expected
    assert ref.requested == text
    assert ref.alias is None


def test_parse_model_id_looks_up_the_family_of_the_base_model() -> None:
    assert parse_model_id("us." + SONNET_46).family.needs_inference_profile
    assert parse_model_id("meta.llama3-1-70b-instruct-v1:0").family.name == "meta-llama"
    opaque = parse_model_id(f"arn:aws:bedrock:us-west-2:{ACCOUNT}:application-inference-profile/a1b2")
    assert opaque.family.name == "unknown"


GARBAGE: list[tuple[str, ErrorKind]] = [
    ("", ErrorKind.INVALID_REQUEST),
    ("claude-sonnet-4-5", ErrorKind.NOT_FOUND),
    ("claude-3.5-sonnet", ErrorKind.NOT_FOUND),
    ("gpt-4.1", ErrorKind.NOT_FOUND),
    ("Anthropic.Claude", ErrorKind.NOT_FOUND),
    ("us.", ErrorKind.NOT_FOUND),
    ("global.claude", ErrorKind.NOT_FOUND),
    ("anthropic.", ErrorKind.NOT_FOUND),
    (" anthropic.claude-sonnet-4-6", ErrorKind.NOT_FOUND),
    ("bedrock/", ErrorKind.INVALID_REQUEST),
    ("bedrock/us-east-1/", ErrorKind.INVALID_REQUEST),
    ("bedrock/not-a-region/anthropic.claude-sonnet-4-6", ErrorKind.INVALID_REQUEST),
    ("bedrock/eu-west-1/us.anthropic.claude-sonnet-4-6", ErrorKind.INVALID_REQUEST),
    ("bedrock/sa-east-1/eu.anthropic.claude-sonnet-4-6", ErrorKind.INVALID_REQUEST),
    ("bedrock/us-gov-west-1/global.anthropic.claude-sonnet-4-6", ErrorKind.INVALID_REQUEST),
    ("arn:aws:bedrock", ErrorKind.INVALID_REQUEST),
    (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:custom-model/abc", ErrorKind.INVALID_REQUEST),
    (f"arn:aws:bedrock:moon-1:{ACCOUNT}:provisioned-model/abc", ErrorKind.INVALID_REQUEST),
    (
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/anthropic.claude-sonnet-4-6",
        ErrorKind.INVALID_REQUEST,
    ),
    ("arn:aws:bedrock:us-east-1::foundation-model/us.anthropic.claude-sonnet-4-6", ErrorKind.INVALID_REQUEST),
    (
        f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/us.anthropic.claude-sonnet-4-6",
        ErrorKind.INVALID_REQUEST,
    ),
    (
        f"bedrock/us-west-2/arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc",
        ErrorKind.INVALID_REQUEST,
    ),
    ("a" * 3000, ErrorKind.INVALID_REQUEST),
]


@pytest.mark.parametrize(("text", "kind"), GARBAGE, ids=[case[0][:60] or "<empty>" for case in GARBAGE])
def test_parse_model_id_rejects_garbage_with_a_gateway_error(text: str, kind: ErrorKind) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_model_id(text)
    assert caught.value.kind is kind
    assert caught.value.param == "model"


def test_a_geo_profile_pinned_to_a_foreign_region_says_which_profile_to_use() -> None:
    with pytest.raises(GatewayError) as caught:
        parse_model_id("bedrock/eu-west-1/us.anthropic.claude-sonnet-4-6")
    assert "'eu.anthropic.claude-sonnet-4-6'" in caught.value.message
    assert "eu-west-1" in caught.value.message


@given(st.text(max_size=300))
def test_parse_model_id_raises_nothing_but_gateway_error(text: str) -> None:
    try:
        ref = parse_model_id(text)
    except GatewayError:
        return
    assert ref.requested == text
    assert ref.model_id


_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-.:/"


@given(
    st.sampled_from(
        [
            "",
            "bedrock/",
            "bedrock/us-east-1/",
            "arn:aws:bedrock:us-east-1::foundation-model/",
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/",
            "us.",
            "global.",
        ]
    ),
    st.text(alphabet=_ID_ALPHABET, max_size=60),
)
def test_parse_model_id_on_id_shaped_text_raises_nothing_but_gateway_error(prefix: str, rest: str) -> None:
    with contextlib.suppress(GatewayError):
        parse_model_id(prefix + rest)


@pytest.mark.parametrize(
    ("region", "geos"),
    [
        ("us-east-1", ("us",)),
        ("ca-central-1", ("us", "ca")),
        ("eu-west-3", ("eu",)),
        ("ap-northeast-1", ("apac", "jp")),
        ("ap-southeast-2", ("apac", "au")),
        ("ap-south-1", ("apac",)),
        ("us-gov-west-1", ("us-gov",)),
        ("sa-east-1", ()),
    ],
)
def test_region_geographies(region: str, geos: tuple[str, ...]) -> None:
    assert region_geographies(region) == geos


def test_global_profiles_serve_commercial_regions_only() -> None:
    assert geo_serves("global", "sa-east-1")
    assert not geo_serves("global", "us-gov-east-1")
    assert geo_serves("us", "ca-central-1")
    assert not geo_serves("us", "eu-west-1")


# -- catalogue ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bedrock_id"),
    [
        ("claude-3-haiku-20240307", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("claude-3-5-haiku-20241022", "anthropic.claude-3-5-haiku-20241022-v1:0"),
        ("claude-3-5-haiku-latest", "anthropic.claude-3-5-haiku-20241022-v1:0"),
        ("claude-3-7-sonnet-latest", "anthropic.claude-3-7-sonnet-20250219-v1:0"),
        ("claude-sonnet-4-20250514", "anthropic.claude-sonnet-4-20250514-v1:0"),
        ("claude-sonnet-4-0", "anthropic.claude-sonnet-4-20250514-v1:0"),
        ("claude-opus-4-20250514", "anthropic.claude-opus-4-20250514-v1:0"),
        ("claude-opus-4-1", "anthropic.claude-opus-4-1-20250805-v1:0"),
        ("claude-sonnet-4-5", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("claude-sonnet-4-5-20250929", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("claude-haiku-4-5", HAIKU_45),
        ("claude-haiku-4-5-20251001", HAIKU_45),
        ("Claude-Haiku-4-5", HAIKU_45),
        ("claude-opus-4-5", "anthropic.claude-opus-4-5-20251101-v1:0"),
        ("claude-opus-4-6", "anthropic.claude-opus-4-6-v1"),
        ("claude-sonnet-4-6", SONNET_46),
        ("claude-opus-4-7", "anthropic.claude-opus-4-7"),
    ],
)
def test_catalogue_maps_anthropic_names_to_bedrock_ids(name: str, bedrock_id: str) -> None:
    assert Catalogue().lookup(name) == bedrock_id


def test_catalogue_extra_entries_win_and_come_first() -> None:
    catalogue = Catalogue(
        {"claude-haiku-4-5": "eu.anthropic.claude-haiku-4-5-20251001-v1:0", "house": SONNET_46}
    )
    assert catalogue.lookup("claude-haiku-4-5") == "eu.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert catalogue.names()[:2] == ["claude-haiku-4-5", "house"]
    assert ("house", SONNET_46) in catalogue.items()
    assert "HOUSE" in catalogue
    assert catalogue.lookup("nope") is None


def test_catalogue_normalises_known_short_ids_only() -> None:
    assert Catalogue().normalise("anthropic.claude-haiku-4-5-20251001") == HAIKU_45
    assert normalise_model_id("anthropic.claude-opus-4-6-v1:0") == "anthropic.claude-opus-4-6-v1"
    assert normalise_model_id("vendor.unknown-model") == "vendor.unknown-model"


def test_every_known_model_id_parses_to_itself() -> None:
    for model in KNOWN_MODELS:
        ref = parse_model_id(model.bedrock_id)
        assert ref.base_model_id == model.bedrock_id
        assert model.profile_geos <= {"us", "eu", "apac", "jp", "au", "ca", "us-gov", "global"}


# -- resolve_model -----------------------------------------------------------------------------------


def _key(key_id: str = "team-a", **fields: Any) -> VirtualKeyConfig:
    return VirtualKeyConfig.model_validate(
        {"id": key_id, "key": f"sk-{key_id}", "providers": ["p1"], **fields}
    )


ALIASES = {
    "fast": "claude-haiku-4-5",
    "smart": "bedrock/eu-west-1/anthropic.claude-sonnet-4-6",
    "claude-opus-*": "anthropic.claude-opus-4-7",
    "claude-*": "meta.llama3-1-70b-instruct-v1:0",
    "pinned": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc123",
    "broken": "not-a-model",
}

# requested -> (model_id, region, alias)
RESOLVE_CASES: list[tuple[str, tuple[str, str | None, str | None]]] = [
    ("fast", (HAIKU_45, None, "fast")),
    ("smart", (SONNET_46, "eu-west-1", "smart")),
    ("claude-opus-4-1", ("anthropic.claude-opus-4-7", None, "claude-opus-4-1")),  # glob alias beats catalogue
    ("claude-haiku-9", ("meta.llama3-1-70b-instruct-v1:0", None, "claude-haiku-9")),  # later glob
    ("pinned", (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/abc123", "us-east-1", "pinned")),
    ("bedrock/claude-haiku-4-5-20251001", (HAIKU_45, None, None)),  # aliases match the name as sent only
    ("bedrock/ap-northeast-1/claude-haiku-4-5", (HAIKU_45, "ap-northeast-1", None)),
    ("anthropic.claude-haiku-4-5-20251001", (HAIKU_45, None, None)),
    ("bedrock/eu-west-1/eu.anthropic.claude-sonnet-4-6", ("eu." + SONNET_46, "eu-west-1", None)),
    ("vendor.brand-new-model-v1:0", ("vendor.brand-new-model-v1:0", None, None)),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("requested", "expected"), RESOLVE_CASES, ids=[case[0] for case in RESOLVE_CASES])
async def test_resolve_model_golden_cases(
    requested: str, expected: tuple[str, str | None, str | None]
) -> None:
    key = _key(model_aliases=ALIASES)
    ref = await resolve_model(requested, key, StaticAliasStore(), Catalogue())
    assert (ref.model_id, ref.region, ref.alias) == expected
    assert ref.requested == requested


@pytest.mark.anyio
async def test_catalogue_names_resolve_without_any_alias() -> None:
    ref = await resolve_model("claude-sonnet-4-5", _key(), StaticAliasStore(), Catalogue())
    assert ref.model_id == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert ref.kind == "foundation"
    assert ref.alias is None


@pytest.mark.anyio
async def test_one_key_cannot_see_another_keys_aliases() -> None:
    owner = _key("owner", model_aliases={"secret-sauce": SONNET_46})
    other = _key("other")
    assert (await resolve_model("secret-sauce", owner, StaticAliasStore(), Catalogue())).model_id == SONNET_46
    with pytest.raises(GatewayError) as caught:
        await resolve_model("secret-sauce", other, StaticAliasStore(), Catalogue())
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert "secret-sauce" not in caught.value.message.split("not found")[1]


@pytest.mark.anyio
async def test_unknown_name_is_not_found_listing_aliases_and_catalogue_names() -> None:
    key = _key(model_aliases={"fast": "claude-haiku-4-5", "smart": SONNET_46})
    with pytest.raises(GatewayError) as caught:
        await resolve_model("gpt-4o", key, StaticAliasStore(), Catalogue())
    err = caught.value
    assert err.kind is ErrorKind.NOT_FOUND
    assert err.http_status == 404
    assert "fast, smart" in err.message
    assert "claude-opus-4-7" in err.message
    assert "'gpt-4o'" in err.message


@pytest.mark.anyio
async def test_an_alias_to_garbage_is_not_found_naming_the_alias() -> None:
    key = _key(model_aliases=ALIASES)
    with pytest.raises(GatewayError) as caught:
        await resolve_model("broken", key, StaticAliasStore(), Catalogue())
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert "alias 'broken' points to 'not-a-model'" in caught.value.message


@pytest.mark.anyio
async def test_configured_catalogue_targets_may_pin_a_region() -> None:
    catalogue = Catalogue({"house-model": "bedrock/eu-central-1/anthropic.claude-sonnet-4-6"})
    ref = await resolve_model("house-model", _key(), StaticAliasStore(), catalogue)
    assert (ref.model_id, ref.region) == (SONNET_46, "eu-central-1")
    with pytest.raises(GatewayError) as caught:
        await resolve_model("bedrock/us-east-1/house-model", _key(), StaticAliasStore(), catalogue)
    assert caught.value.kind is ErrorKind.INVALID_REQUEST


APP_PROFILE = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc123"


@pytest.mark.anyio
async def test_a_configured_application_profile_arn_resolves_to_its_models_family() -> None:
    catalogue = Catalogue(arn_models={APP_PROFILE: "anthropic.claude-haiku-4-5-20251001"})
    ref = await resolve_model(APP_PROFILE, _key(), StaticAliasStore(), catalogue)
    assert (ref.model_id, ref.region, ref.kind) == (
        APP_PROFILE,
        "us-east-1",
        "application-inference-profile-arn",
    )
    assert ref.base_model_id == HAIKU_45
    assert ref.family.prompt_caching


@pytest.mark.anyio
async def test_an_unconfigured_application_profile_arn_keeps_the_unknown_family() -> None:
    ref = await resolve_model(APP_PROFILE, _key(), StaticAliasStore(), Catalogue())
    assert ref.base_model_id == APP_PROFILE
    assert ref.family.name == "unknown"


def test_arn_models_must_map_opaque_arns_to_base_ids() -> None:
    from bedrock_mw.config import ConfigError, load_config

    ok = load_config({"providers": [], "arn_models": {APP_PROFILE: "anthropic.claude-haiku-4-5-20251001"}})
    assert ok.arn_models[APP_PROFILE].startswith("anthropic.")
    with pytest.raises(ConfigError, match="arn_models"):
        load_config({"providers": [], "arn_models": {"us.anthropic.claude": "anthropic.claude-haiku-4-5"}})

"""The model-id grammar, region geographies, and resolving what a client asked for to a :class:`ModelRef`.

Grammar (see docs/routing.md)::

    model    := ["bedrock/"] [region "/"] target
    target   := arn | [geo "."] vendor "." model-name [":" version]...
    geo      := "us" | "eu" | "apac" | "global" | "jp" | "au" | "ca" | "us-gov"
    arn      := "arn:" partition ":bedrock:" region ":" [account] ":" resource-type "/" resource

Resolution order: the key's alias (exact, then glob) → strip ``bedrock/`` and ``<region>/`` →
Anthropic API names via the catalogue → Bedrock id forms. Everything here is pure and synchronous
except :func:`resolve_model`, which awaits the (host-implemented) alias store.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, Protocol

from ..config import AliasEntry, alias_model
from ..errors import ErrorKind, GatewayError
from .catalogue import Catalogue, normalise_model_id
from .families import ModelFamily, family_of

if TYPE_CHECKING:
    from ..config import VirtualKeyConfig
    from ..stores import AliasStore

__all__ = [
    "GEOS",
    "OPAQUE_ARN_KINDS",
    "Catalogue",
    "ModelFinder",
    "ModelKind",
    "ModelRef",
    "convention_id",
    "geo_serves",
    "is_claude_name",
    "parse_model_id",
    "region_geographies",
    "resolve_model",
    "split_region_prefix",
]

ModelKind = Literal[
    "foundation",
    "inference-profile",
    "foundation-arn",
    "inference-profile-arn",
    "application-inference-profile-arn",
    "provisioned-model-arn",
    "imported-model-arn",
    "custom-model-arn",
    "custom-model-deployment-arn",
]

# Longest first so the alternation takes "us-gov" before "us".
GEOS: tuple[str, ...] = ("us-gov", "global", "apac", "us", "eu", "jp", "au", "ca")

_MAX_LEN = 2048  # Bedrock's own limit on a modelId
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_GEO_ALT = "|".join(GEOS)
# Vendors are letters and digits ("anthropic", "ai21"), which keeps names like "claude-3.5-sonnet"
# from looking like Bedrock ids.
_ID = re.compile(
    rf"^(?:(?P<geo>{_GEO_ALT})\.)?"
    # Bedrock's ids end in a numeric version and at most one variant (":0", ":0:200k", ":0:mm"), so
    # no second model name can ride along in a ":" segment (see auth.check_model_allowed).
    r"(?P<base>(?P<vendor>[a-z][a-z0-9]*)\.[a-z][a-z0-9._-]*(?::[0-9]+(?::(?:[0-9]+k?|mm))?)?)$"
)
_ARN = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):bedrock:(?P<region>[a-z0-9-]+):(?P<account>\d{12})?:"
    r"(?P<rtype>[a-z-]+)/(?P<resource>[^/\s]+(?:/[a-z0-9]{1,64})?)$"
)
_OPAQUE_RESOURCE = re.compile(r"^[a-z0-9]{1,64}$")
# botocore's InvokeModelIdentifier: a custom model's ARN names its base model, then its own id.
_CUSTOM_RESOURCE = re.compile(r"^[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}/[a-z0-9]{1,64}$")
_ARN_KINDS: dict[str, ModelKind] = {
    "foundation-model": "foundation-arn",
    "inference-profile": "inference-profile-arn",
    "application-inference-profile": "application-inference-profile-arn",
    "provisioned-model": "provisioned-model-arn",
    "imported-model": "imported-model-arn",
    "custom-model": "custom-model-arn",
    "custom-model-deployment": "custom-model-deployment-arn",
}
# ARNs whose text does not say which model they serve (config.arn_models or the account may).
OPAQUE_ARN_KINDS: frozenset[ModelKind] = frozenset(
    {
        "application-inference-profile-arn",
        "provisioned-model-arn",
        "imported-model-arn",
        "custom-model-arn",
        "custom-model-deployment-arn",
    }
)
_CLAUDE_NAME = re.compile(r"^claude-[a-z0-9]+(?:[-.][a-z0-9]+)*$")
# Regions with a country-level profile as well as the general "apac." one.
_JP_REGIONS = frozenset({"ap-northeast-1", "ap-northeast-3"})
_AU_REGIONS = frozenset({"ap-southeast-2", "ap-southeast-4"})


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A resolved model: what the client sent and what Bedrock will be asked for."""

    requested: str
    model_id: str
    base_model_id: str
    region: str | None
    geo: str | None
    kind: ModelKind
    family: ModelFamily
    alias: str | None = None
    # The alias in object form, when it was one: per-alias settings (guardrail, ...) live there.
    alias_entry: AliasEntry | None = None
    # The name asked for when it was one (an alias, a catalogue name or a Claude name), not an id form.
    name: str | None = None
    # The AWS account an ARN names (``None`` for ids and for ARNs with no account, like foundation models).
    account: str | None = None
    # The regions an application inference profile sends requests to, when the account said (its
    # models' ARNs in GetInferenceProfile); ``None`` when unknown or not an application profile.
    profile_regions: frozenset[str] | None = None


class ModelFinder(Protocol):
    """What the provider's account says about models the catalogue does not know (see discovery)."""

    async def model_for_name(self, name: str, region: str | None) -> str | None:
        """The base model id an Anthropic-style name means in the account, if it offers one."""
        ...

    async def model_behind(self, arn: str, region: str) -> str | None:
        """The base model id an application-inference-profile ARN serves, if the account says."""
        ...

    async def regions_behind(self, arn: str, region: str) -> frozenset[str] | None:
        """The regions an application-inference-profile ARN sends requests to, if the account says."""
        ...


def is_claude_name(name: str) -> bool:
    """Whether ``name`` is shaped like an Anthropic model name (``claude-<family>-<version>``)."""
    return bool(_CLAUDE_NAME.match(name))


def convention_id(name: str) -> str:
    """The base id by the undated convention of newer Claude models: ``anthropic.<name>``."""
    return "anthropic." + name.replace(".", "-")


def region_geographies(region: str) -> tuple[str, ...]:
    """The profile geographies whose profiles a region can call, general one first.

    ``ap-northeast-1`` gives ``("apac", "jp")``: ``apac.`` is the general Asia-Pacific profile and
    ``jp.`` the Japan-only one newer models have instead. Canadian regions are sources of the
    ``us.`` profiles. A region in no geography (``sa-east-1``, ``me-central-1``, ...) gives ``()``:
    only ``global.`` profiles serve it.
    """
    if region.startswith("us-gov-"):
        return ("us-gov",)
    if region.startswith("us-"):
        return ("us",)
    if region.startswith("ca-"):
        return ("us", "ca")
    if region.startswith("eu-"):
        return ("eu",)
    if region in _JP_REGIONS:
        return ("apac", "jp")
    if region in _AU_REGIONS:
        return ("apac", "au")
    if region.startswith("ap-"):
        return ("apac",)
    return ()


def geo_serves(geo: str, region: str) -> bool:
    """Whether a ``geo.`` inference profile can be called from ``region``.

    ``global.`` profiles serve the commercial partition only (not GovCloud, ISO or China).
    """
    if geo == "global":
        return not region.startswith(("us-gov-", "cn-")) and "-iso" not in region
    return geo in region_geographies(region)


def _error(kind: ErrorKind, message: str) -> GatewayError:
    return GatewayError(kind, message, param="model")


def _shown(text: str) -> str:
    # Model strings are not secrets, but they are client input: keep messages bounded.
    return repr(text if len(text) <= 120 else text[:117] + "...")


def split_region_prefix(text: str) -> tuple[str | None, str]:
    """Strip ``bedrock/`` and an optional ``<region>/``: ``(region or None, rest)``."""
    prefixed = text.startswith("bedrock/")
    rest = text[len("bedrock/") :] if prefixed else text
    if prefixed and not rest:
        raise _error(ErrorKind.INVALID_REQUEST, "model 'bedrock/' names no model")
    if rest.startswith("arn:"):
        return None, rest
    head, sep, tail = rest.partition("/")
    if not sep:
        return None, rest
    if _REGION.match(head):
        if not tail:
            raise _error(ErrorKind.INVALID_REQUEST, f"model {_shown(text)} names a region but no model")
        return head, tail
    if prefixed:
        raise _error(
            ErrorKind.INVALID_REQUEST,
            f"model {_shown(text)}: {_shown(head)} is not an AWS region; "
            "the form is 'bedrock/<region>/<model id>' (like bedrock/us-east-1/anthropic.claude-...)",
        )
    return None, rest


def _geo_mismatch(model_id: str, geo: str, region: str, base: str) -> GatewayError:
    geos = region_geographies(region)
    use = f"'{geos[0]}.{base}' or 'global.{base}'" if geos else f"'global.{base}'"
    return _error(
        ErrorKind.INVALID_REQUEST,
        f"model {_shown(model_id)} is a '{geo}.' inference profile, which does not serve region "
        f"'{region}'; for that region use {use}, or ask for a region in the '{geo}' geography",
    )


def _parse_arn(text: str, pinned: str | None) -> ModelRef:
    match = _ARN.match(text)
    if match is None:
        raise _error(
            ErrorKind.INVALID_REQUEST,
            f"model {_shown(text)} is not a Bedrock ARN (arn:aws:bedrock:<region>:<account>:<type>/<id>)",
        )
    region, rtype, resource = match["region"], match["rtype"], match["resource"]
    kind = _ARN_KINDS.get(rtype)
    if kind is None:
        raise _error(
            ErrorKind.INVALID_REQUEST,
            f"ARN resource type {rtype!r} is not supported; use a foundation-model, inference-profile, "
            "application-inference-profile, provisioned-model, imported-model, custom-model or "
            "custom-model-deployment ARN",
        )
    if not _REGION.match(region):
        raise _error(ErrorKind.INVALID_REQUEST, f"ARN region {region!r} is not an AWS region name")
    if pinned is not None and pinned != region:
        raise _error(
            ErrorKind.INVALID_REQUEST,
            f"model names region '{pinned}' but its ARN is in '{region}'; drop the prefix or use one region",
        )
    geo: str | None = None
    if kind in OPAQUE_ARN_KINDS:
        shape = _CUSTOM_RESOURCE if kind == "custom-model-arn" else _OPAQUE_RESOURCE
        if not shape.match(resource):
            raise _error(ErrorKind.INVALID_REQUEST, f"model {_shown(text)} has a malformed {rtype} id")
        # The ARN does not say which model it serves: family lookup falls back to "unknown".
        base = text
    else:
        id_match = _ID.match(resource)
        if id_match is None or (kind == "foundation-arn") != (id_match["geo"] is None):
            want = "a base model id" if kind == "foundation-arn" else "a geo-prefixed profile id"
            raise _error(ErrorKind.INVALID_REQUEST, f"model {_shown(text)}: {rtype} ARN must end in {want}")
        geo = id_match["geo"]
        base = normalise_model_id(id_match["base"])
        if geo is not None and not geo_serves(geo, region):
            raise _geo_mismatch(text, geo, region, base)
    return ModelRef(text, text, base, region, geo, kind, family_of(base), account=match["account"])


def _parse_id(text: str, region: str | None) -> ModelRef | None:
    """A bare or geo-prefixed Bedrock id, or ``None`` when ``text`` is not shaped like one."""
    match = _ID.match(text)
    if match is None or match["vendor"] in GEOS:
        return None
    geo = match["geo"]
    base = normalise_model_id(match["base"])
    if geo is None:
        return ModelRef(text, base, base, region, None, "foundation", family_of(base))
    if region is not None and not geo_serves(geo, region):
        raise _geo_mismatch(text, geo, region, base)
    return ModelRef(text, f"{geo}.{base}", base, region, geo, "inference-profile", family_of(base))


# Pure (the same text and region always parse to the same frozen ModelRef, or raise), and asked on
# every request: remembered for the model strings in use. Refusals are not cached (they raise).
@functools.lru_cache(maxsize=1024)
def _parse_target(text: str, region: str | None) -> ModelRef | None:
    if not text:
        raise _error(ErrorKind.INVALID_REQUEST, "model must not be empty")
    if len(text) > _MAX_LEN:
        raise _error(ErrorKind.INVALID_REQUEST, f"model is longer than {_MAX_LEN} characters")
    if text.startswith("arn:"):
        return _parse_arn(text, region)
    return _parse_id(text, region)


def parse_model_id(text: str) -> ModelRef:
    """Parse a Bedrock model string (any id form, ``bedrock/`` and region prefixes allowed)."""
    if len(text) > _MAX_LEN:
        raise _error(ErrorKind.INVALID_REQUEST, f"model is longer than {_MAX_LEN} characters")
    region, rest = split_region_prefix(text)
    ref = _parse_target(rest, region)
    if ref is None:
        raise _error(
            ErrorKind.NOT_FOUND,
            f"model {_shown(text)} is not a Bedrock model id (like 'anthropic.claude-sonnet-4-6', "
            "'us.anthropic.claude-sonnet-4-6' or an ARN)",
        )
    return replace(ref, requested=text)


async def _not_found(
    requested: str, alias_target: str | None, key: VirtualKeyConfig, aliases: AliasStore, catalogue: Catalogue
) -> GatewayError:
    alias_names = sorted(await aliases.list_aliases(key))
    shown_aliases = ", ".join(alias_names[:20]) + (", ..." if len(alias_names) > 20 else "")
    names = ", ".join(catalogue.names()[:8])
    if alias_target is not None:
        head = (
            f"alias {_shown(requested)} points to {_shown(alias_target)}, which is not a model name "
            "or a Bedrock model id"
        )
    else:
        head = (
            f"model {_shown(requested)} not found: it is not an alias of this key, an Anthropic model "
            "name, or a Bedrock model id (vendor.model)"
        )
    return _error(
        ErrorKind.NOT_FOUND,
        f"{head}. Aliases of this key: {shown_aliases or '(none)'}. Model names include: {names}, ...",
    )


async def resolve_model(
    requested: str,
    key: VirtualKeyConfig,
    aliases: AliasStore,
    catalogue: Catalogue,
    finder: ModelFinder | None = None,
) -> ModelRef:
    """Resolve what the client asked for: key alias, catalogue name, Bedrock id form, then Claude name.

    A ``claude-...`` name the catalogue lacks is what the account offers under that name (``finder``),
    else ``anthropic.<name>``, the id convention of newer Claude models.
    """
    if len(requested) > _MAX_LEN:
        raise _error(ErrorKind.INVALID_REQUEST, f"model is longer than {_MAX_LEN} characters")
    entry = await aliases.resolve_alias(key, requested)
    target = None if entry is None else alias_model(entry)
    text = requested if target is None else target
    region, rest = split_region_prefix(text)
    name = requested if target is not None else None
    named = catalogue.lookup(rest)
    if named is not None:
        name = name or rest
    if named is not None:
        # A configured catalogue target may carry its own region; two different ones conflict.
        named_region, rest = split_region_prefix(named)
        if region is not None and named_region is not None and region != named_region:
            raise _error(
                ErrorKind.INVALID_REQUEST,
                f"model {_shown(text)} names region '{region}' but its catalogue entry pins '{named_region}'",
            )
        region = region or named_region
    ref = _parse_target(rest, region)
    if ref is None and named is None and is_claude_name(rest.lower()):
        name = name or rest
        offered = await finder.model_for_name(rest.lower(), region) if finder is not None else None
        ref = _parse_target(offered or convention_id(rest.lower()), region)
    if ref is None:
        raise await _not_found(requested, target, key, aliases, catalogue)
    if ref.kind in OPAQUE_ARN_KINDS:
        behind = catalogue.model_behind(ref.model_id)
        app_profile = ref.kind == "application-inference-profile-arn"
        arn_region = ref.region
        assert arn_region is not None  # every ARN names its region
        if behind is None and finder is not None and app_profile:
            behind = await finder.model_behind(ref.model_id, arn_region)
        if behind is not None:
            ref = replace(ref, base_model_id=behind, family=family_of(behind))
        if app_profile and finder is not None and key.allowed_regions is not None:
            # Only data residency needs where the profile runs: one (cached) control-plane lookup.
            ref = replace(ref, profile_regions=await finder.regions_behind(ref.model_id, arn_region))
    return replace(
        ref,
        requested=requested,
        alias=None if target is None else requested,
        alias_entry=entry if isinstance(entry, AliasEntry) else None,
        name=name,
    )

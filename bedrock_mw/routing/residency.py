"""Where one Bedrock call may run, and whether a key's ``allowed_regions`` and its provider's account hold it.

A call is sent to one region's endpoint, but the model id decides where Bedrock runs it:

* a base id, a foundation-model ARN, a provisioned, imported or custom model ARN runs in the region
  called (the ARN's own region, which routing always calls it in);
* a ``geo.`` inference profile (id or ARN) may run in any region of its geography: ``us.`` in any
  ``us-east-*``/``us-west-*`` region, ``eu.`` in any ``eu-*``, ``global.`` anywhere in the commercial
  partition. Bedrock adds destination regions to a geography over time, so a geography is allowed
  only when one ``allowed_regions`` glob covers all of it (``eu-*`` covers ``eu.``; a list of today's
  EU regions does not);
* an application inference profile runs where its source does: one region when it was made from a
  foundation model, a geography when made from a system profile. Only the account can say which
  (GetInferenceProfile lists its models' ARNs, one per region); when that is unknown, a key with
  ``allowed_regions`` is refused the profile rather than trusting it.

An ARN also names an account. The gateway knows a provider's account only from the config (its
``account_id``, or the account in its ``assume_role.role_arn``); it never guesses it from access keys.
When known, an ARN of another account is not sent through that provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from ..config import ProviderConfig
from .model_ids import ModelRef

__all__ = [
    "GEO_SPAN",
    "Reach",
    "foreign_account",
    "geo_covered",
    "outside_regions",
    "reach_of",
    "region_allowed",
]

# The regions each profile geography may run a request in: a trailing "-" is a prefix (regions AWS
# opens later included), anything else one region; "" is every region.
GEO_SPAN: dict[str, tuple[str, ...]] = {
    "us": ("us-east-", "us-west-"),
    "us-gov": ("us-gov-",),
    "eu": ("eu-",),
    "apac": ("ap-",),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "ca": ("ca-",),
    "global": ("",),
}


@dataclass(frozen=True, slots=True)
class Reach:
    """Where one call may run: the region called, a geography Bedrock may move it within, other regions."""

    region: str
    geo: str | None = None
    regions: frozenset[str] = frozenset()
    # Why the gateway cannot tell where the call runs (an application profile it could not look up).
    unknown: str | None = None


def reach_of(ref: ModelRef, region: str) -> Reach:
    """Where Bedrock may run ``ref`` called from ``region`` (``ref`` is the id actually sent)."""
    if ref.kind == "application-inference-profile-arn":
        if ref.profile_regions is None:
            return Reach(
                region,
                unknown=f"the regions application inference profile {ref.model_id} sends requests to are "
                "unknown (the gateway reads them with bedrock:GetInferenceProfile; see model_discovery)",
            )
        return Reach(region, regions=ref.profile_regions)
    return Reach(region, geo=ref.geo)


def region_allowed(patterns: Sequence[str], region: str) -> bool:
    """Whether ``region`` matches one of the ``allowed_regions`` globs."""
    return any(fnmatchcase(region, pattern) for pattern in patterns)


def _covers_prefix(pattern: str, prefix: str) -> bool:
    # "A*" matches every string starting with ``prefix`` when A matches some start of ``prefix``:
    # A takes that start and "*" the rest. Conservative: other shapes are taken as not covering.
    if not pattern.endswith("*"):
        return False
    head = pattern[:-1]
    return any(fnmatchcase(prefix[:cut], head) for cut in range(len(prefix) + 1))


def geo_covered(patterns: Sequence[str], geo: str) -> bool:
    """Whether the ``allowed_regions`` globs cover every region a ``geo.`` profile may run in."""
    span = GEO_SPAN.get(geo, ("",))
    for part in span:
        if part == "" or part.endswith("-"):
            if not any(_covers_prefix(pattern, part) for pattern in patterns):
                return False
        elif not region_allowed(patterns, part):
            return False
    return True


def _span_text(geo: str) -> str:
    if geo == "global":
        return "any commercial region"
    return "any of " + ", ".join(f"{part}*" if part.endswith("-") else part for part in GEO_SPAN[geo])


def outside_regions(patterns: Sequence[str], reach: Reach) -> str | None:
    """Why a call that may run in ``reach`` breaks ``allowed_regions``, or ``None`` when it keeps them."""
    if not region_allowed(patterns, reach.region):
        return f"{reach.region} is not in the key's allowed_regions"
    if reach.geo is not None and not geo_covered(patterns, reach.geo):
        return (
            f"a '{reach.geo}.' inference profile may run in {_span_text(reach.geo)}, "
            "which the key's allowed_regions do not cover"
        )
    if reach.unknown is not None:
        return reach.unknown
    for region in sorted(reach.regions):
        if not region_allowed(patterns, region):
            return (
                f"the application inference profile sends requests to {region}, "
                "outside the key's allowed_regions"
            )
    return None


def foreign_account(ref: ModelRef, provider: ProviderConfig) -> str | None:
    """Why ``ref`` (the id actually sent) may not go through ``provider``: an ARN of another account."""
    account = provider.known_account
    if ref.account is None or account is None or ref.account == account:
        return None
    return f"the ARN is in AWS account {ref.account}, but the provider calls Bedrock as account {account}"

"""The emulator's knowledge of Bedrock model ids: grammar, capabilities, and regional rules.

Data-driven: `MODEL_RULES` is an ordered table (first match wins) of regexes over the bare model
id (`vendor.model[:N]`), and `GEO_PREFIXES` says which regions each inference-profile geography
contains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import INVALID_MODEL_MESSAGE, BedrockError, validation_error

Family = Literal[
    "anthropic", "nova", "titan-text", "llama", "mistral", "chat",
    "titan-embed-v1", "titan-embed-v2", "cohere-embed",
]  # fmt: skip

VENDORS = frozenset(
    {"anthropic", "amazon", "meta", "mistral", "cohere", "deepseek", "openai", "ai21", "writer", "qwen"}
)
# Model an opaque ARN (application inference profile, provisioned model) stands for.
OPAQUE_ARN_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@dataclass(frozen=True)
class ModelRule:
    """Capabilities of the models whose bare id matches `pattern`."""

    pattern: str
    family: Family
    on_demand: bool = True
    prompt_cache: bool = False
    thinking: bool = False
    system: bool = True
    tools: bool = True
    tools_in_stream: bool = True
    # temperature and top_p are mutually exclusive (Claude Opus 4.1, the 4.5 generation and later)
    sampling_exclusive: bool = False

    @property
    def embedding(self) -> bool:
        return self.family in ("titan-embed-v1", "titan-embed-v2", "cohere-embed")


_NEW_CLAUDE = r"anthropic\.claude-(?:3-7-|(?:sonnet|opus|haiku)-(?:4|[5-9]|\d\d)|(?:[5-9]|\d\d)-)"
_EXCLUSIVE_SAMPLING_CLAUDE = (
    r"anthropic\.claude-(?:opus-4-1|(?:sonnet|opus|haiku)-(?:4-[5-9]|[5-9]|\d\d)|(?:[5-9]|\d\d)-)"
)

MODEL_RULES: tuple[ModelRule, ...] = (
    ModelRule(
        _EXCLUSIVE_SAMPLING_CLAUDE,
        "anthropic",
        on_demand=False,
        prompt_cache=True,
        thinking=True,
        sampling_exclusive=True,
    ),
    ModelRule(_NEW_CLAUDE, "anthropic", on_demand=False, prompt_cache=True, thinking=True),
    ModelRule(r"anthropic\.claude-3-5-haiku", "anthropic", prompt_cache=True),
    ModelRule(r"anthropic\.", "anthropic"),
    ModelRule(r"amazon\.nova-premier", "nova", on_demand=False, prompt_cache=True),
    ModelRule(r"amazon\.nova-(?:micro|lite|pro)", "nova", prompt_cache=True),
    ModelRule(r"amazon\.nova-", "nova"),
    ModelRule(r"amazon\.titan-embed-text-v1", "titan-embed-v1"),
    ModelRule(r"amazon\.titan-embed-text-v2", "titan-embed-v2"),
    ModelRule(r"amazon\.titan-", "titan-text", system=False, tools=False),
    ModelRule(r"meta\.llama4", "llama", on_demand=False, tools_in_stream=False),
    # Llama 3.2 and 3.3 are served through inference profiles only: Bedrock's reply for the bare
    # Llama 3.2 id is quoted in langchain-ai/langchain-aws#258 and konveyor/kai#411; AWS's
    # cross-region inference page lists only profile ids for 3.3 as well.
    ModelRule(r"meta\.llama3-[23]-", "llama", on_demand=False, tools_in_stream=False),
    ModelRule(r"meta\.llama", "llama", tools_in_stream=False),
    ModelRule(r"mistral\.", "mistral"),
    ModelRule(r"cohere\.embed-(?:english|multilingual)-v3", "cohere-embed"),
    ModelRule(r"deepseek\.r1", "chat", on_demand=False, tools=False),
    ModelRule(r"[a-z0-9-]+\.", "chat"),
)
_COMPILED = tuple((re.compile(rule.pattern), rule) for rule in MODEL_RULES)


GEO_PREFIXES: dict[str, tuple[str, ...]] = {
    # geography -> region prefixes it contains ("" = every region)
    "us": ("us-east-", "us-west-"),
    "us-gov": ("us-gov-",),
    "eu": ("eu-",),
    "apac": ("ap-",),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "ca": ("ca-",),
    "global": ("",),
}

ArnKind = Literal[
    "foundation-model", "inference-profile", "application-inference-profile", "provisioned-model",
    "imported-model", "custom-model", "custom-model-deployment",
]  # fmt: skip
# ARNs that do not name their model: the emulator serves OPAQUE_ARN_MODEL behind each.
OPAQUE_KINDS: tuple[ArnKind, ...] = (
    "application-inference-profile", "provisioned-model", "imported-model", "custom-model",
    "custom-model-deployment",
)  # fmt: skip
_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]+):(?P<account>\d*):"
    r"(?P<kind>foundation-model|inference-profile|application-inference-profile|provisioned-model"
    r"|imported-model|custom-model-deployment|custom-model)/(?P<rest>.+)$"
)


@dataclass(frozen=True)
class ResolvedModel:
    """A model id as sent, understood."""

    sent_id: str
    base_id: str
    vendor: str
    rule: ModelRule
    geo: str | None = None
    arn_kind: ArnKind | None = None

    @property
    def via_profile(self) -> bool:
        """True when invoked through an inference profile or provisioned throughput."""
        return self.geo is not None or self.arn_kind in OPAQUE_KINDS


def geo_contains(geo: str, region: str) -> bool:
    """Whether the inference-profile geography `geo` serves `region`."""
    return any(region.startswith(prefix) for prefix in GEO_PREFIXES[geo])


def suggested_geo(region: str) -> str:
    """The geography prefix to suggest for a region in error messages."""
    for geo in ("us-gov", "us", "eu", "apac", "ca"):
        if geo_contains(geo, region):
            return geo
    return "global"


def rule_for(base_id: str) -> ModelRule | None:
    """The first capability rule matching a bare model id."""
    for regex, rule in _COMPILED:
        if regex.match(base_id):
            return rule
    return None


def _split_geo(model_id: str) -> tuple[str | None, str]:
    head, _, rest = model_id.partition(".")
    if head in GEO_PREFIXES and rest:
        return head, rest
    return None, model_id


def _bare(model_id: str, geo: str | None, arn_kind: ArnKind | None, sent: str) -> ResolvedModel:
    vendor = model_id.partition(".")[0]
    rule = rule_for(model_id) if vendor in VENDORS and "." in model_id else None
    if rule is None:
        raise validation_error(INVALID_MODEL_MESSAGE)
    return ResolvedModel(sent_id=sent, base_id=model_id, vendor=vendor, rule=rule, geo=geo, arn_kind=arn_kind)


def parse_model_id(model_id: str, region: str) -> ResolvedModel:
    """Understand any accepted id form; raise the ValidationException Bedrock would."""
    arn = _ARN.match(model_id)
    if arn is None:
        geo, bare = _split_geo(model_id)
        resolved = _bare(bare, geo, None, model_id)
    else:
        if arn["region"] != region:
            raise validation_error(
                f"{INVALID_MODEL_MESSAGE} The ARN's region {arn['region']} does not match "
                f"the request's region {region}."
            )
        kind: ArnKind = arn["kind"]  # type: ignore[assignment]
        if kind in OPAQUE_KINDS:
            return _bare(OPAQUE_ARN_MODEL, None, kind, model_id)
        geo, bare = _split_geo(arn["rest"])
        if (kind == "foundation-model") != (geo is None):
            raise validation_error(INVALID_MODEL_MESSAGE)
        resolved = _bare(bare, geo, kind, model_id)
    if resolved.geo is not None and not geo_contains(resolved.geo, region):
        raise validation_error(
            f"{INVALID_MODEL_MESSAGE} Inference profile {resolved.geo}.{resolved.base_id} "
            f"is not available in region {region}."
        )
    return resolved


def check_on_demand(model: ResolvedModel, region: str) -> None:
    """Reject bare ids of models that are only served through inference profiles."""
    if model.rule.on_demand or model.via_profile:
        return
    raise validation_error(
        f"Invocation of model ID {model.base_id} with on-demand throughput isn\u2019t supported. "
        "Retry your request with the ID or ARN of an inference profile that contains this model. "
        f"Suggested inference profile ID for {region}: {suggested_geo(region)}.{model.base_id}"
    )


def resolve_model(model_id: str, region: str, require_profile_rule: bool = True) -> ResolvedModel:
    """Parse a model id and apply the on-demand rule (CountTokens skips the latter)."""
    model = parse_model_id(model_id, region)
    if require_profile_rule:
        check_on_demand(model, region)
    return model


def ensure_supported(condition: bool, message: str) -> None:
    """Raise a ValidationException with `message` unless `condition` holds."""
    if not condition:
        raise BedrockError("ValidationException", message)

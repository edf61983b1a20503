"""The declarative gateway configuration: pydantic models, file loading and ``${VAR}`` expansion.

Secrets are :class:`pydantic.SecretStr`, so they never show in ``repr``, logs or validation errors.
The models are validated once, at start-up; the request path reads plain attributes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "AccessKeysAuth",
    "AliasEntry",
    "AliasTarget",
    "ApiKeyAuth",
    "AssumeRole",
    "BudgetConfig",
    "BudgetGroupConfig",
    "ConfigError",
    "DefaultChainAuth",
    "GatewayConfig",
    "GuardrailConfig",
    "KeyLimits",
    "LimitsConfig",
    "MessagesApi",
    "ModelDiscoveryConfig",
    "ObservabilityConfig",
    "PriceConfig",
    "ProbesConfig",
    "ProviderAuth",
    "ProviderConfig",
    "ResponsesConfig",
    "TimeoutConfig",
    "VirtualKeyConfig",
    "alias_model",
    "load_config",
]

MessagesApi = Literal["auto", "invoke", "converse"]
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_REGION_PATTERN = re.compile(r"^[a-z0-9*?-]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/")
_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:(\d{12}):")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# What Bedrock accepts (botocore's GuardrailIdentifier / GuardrailVersion patterns).
GUARDRAIL_ID = re.compile(
    r"^([a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+)$"
)
GUARDRAIL_VERSION = re.compile(r"^([1-9][0-9]{0,7}|DRAFT)$")


class ConfigError(ValueError):
    """The configuration cannot be loaded; the message says where and why, never a secret value."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssumeRole(_Model):
    """Assume this role (STS) with the provider's base credentials before calling Bedrock."""

    role_arn: str
    external_id: SecretStr | None = None
    session_name: str = "bedrock-mw"
    duration_s: int = Field(3600, ge=900, le=43200)
    sts_region: str | None = None
    sts_endpoint_url: str | None = None


class AccessKeysAuth(_Model):
    """Static IAM access keys, with an optional session token."""

    mode: Literal["access_keys"]
    access_key_id: str = Field(min_length=1, max_length=128)
    secret_access_key: SecretStr
    session_token: SecretStr | None = None
    assume_role: AssumeRole | None = None


class ApiKeyAuth(_Model):
    """A Bedrock API key, sent as ``Authorization: Bearer``."""

    mode: Literal["api_key"]
    api_key: SecretStr


class DefaultChainAuth(_Model):
    """botocore's default credential chain: env, profiles, container, IRSA web identity, IMDS."""

    mode: Literal["default_chain"]
    profile: str | None = None
    assume_role: AssumeRole | None = None


ProviderAuth = Annotated[AccessKeysAuth | ApiKeyAuth | DefaultChainAuth, Field(discriminator="mode")]


class TimeoutConfig(_Model):
    """Per-provider timeouts in seconds. First byte is generous: Bedrock has cold starts."""

    connect_s: float = Field(5.0, gt=0)
    first_byte_s: float = Field(120.0, gt=0)
    idle_s: float = Field(60.0, gt=0)
    total_s: float = Field(900.0, gt=0)


class GuardrailConfig(_Model):
    """A Bedrock guardrail to attach to model calls (or, with only ``required``, a demand for one)."""

    identifier: str | None = None
    version: str | None = None
    trace: Literal["disabled", "enabled", "enabled_full"] = "disabled"
    stream_mode: Literal["sync", "async"] | None = None
    required: bool = False

    @field_validator("identifier")
    @classmethod
    def _identifier_shape(cls, value: str | None) -> str | None:
        if value is not None and not GUARDRAIL_ID.match(value):
            raise ValueError("must be a guardrail id (lowercase letters and digits) or a guardrail ARN")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version_shape(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is not None and (not isinstance(value, str) or not GUARDRAIL_VERSION.match(value)):
            raise ValueError("must be a version number (1, 2, ...) or 'DRAFT'")
        return value

    @model_validator(mode="after")
    def _complete(self) -> GuardrailConfig:
        if (self.identifier is None) != (self.version is None):
            raise ValueError("give both 'identifier' and 'version'")
        if self.identifier is None and not self.required:
            raise ValueError("give 'identifier' and 'version' (or 'required': true to demand one)")
        return self


class AliasEntry(_Model):
    """An alias in object form: the target model plus settings that apply when it is used."""

    model: str = Field(min_length=1)
    # Explicit ``null`` switches an inherited guardrail off; absent means inherit (model_fields_set).
    guardrail: GuardrailConfig | None = None
    # The upstream API /v1/messages uses through this alias (most specific: alias > key > provider).
    messages_api: MessagesApi | None = None


AliasTarget = str | AliasEntry


def alias_model(target: AliasTarget) -> str:
    """The model string an alias entry points to, whichever form it has."""
    return target if isinstance(target, str) else target.model


class PriceConfig(_Model):
    """USD per million tokens of one model."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float | None = Field(None, ge=0)
    cache_read: float | None = Field(None, ge=0)
    regional_premium: float = Field(0.0, ge=0)


class BudgetConfig(_Model):
    """A dollar budget for a period (UTC): a calendar day, a calendar month, or for ever."""

    usd: float = Field(gt=0)
    period: Literal["day", "month", "total"]


class BudgetGroupConfig(BudgetConfig):
    """A dollar budget shared by several virtual keys (a team)."""

    id: str = Field(min_length=1, max_length=128)
    keys: list[str] = Field(min_length=1)


class ProviderConfig(_Model):
    """One AWS account/credential the gateway can call Bedrock with."""

    id: str = Field(min_length=1, max_length=128)
    auth: ProviderAuth
    region: str
    endpoint_url: str | None = None
    inference_profile_arn: str | None = None
    messages_api: MessagesApi = "auto"
    timeouts: TimeoutConfig = TimeoutConfig()
    max_connections: int = Field(64, ge=1, le=10_000)
    transport: Literal["lean", "aiobotocore"] = "lean"
    http_client: Literal["aiohttp", "pyreqwest", "auto"] = "aiohttp"
    ca_bundle: str | None = Field(None, min_length=1)
    guardrail: GuardrailConfig | None = None
    account_id: str | None = None

    @field_validator("region")
    @classmethod
    def _region_shape(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region name (like 'us-east-1')")
        return value

    @field_validator("http_client")
    @classmethod
    def _http_client_installed(cls, value: str) -> str:
        if value == "pyreqwest" and importlib.util.find_spec("pyreqwest") is None:
            raise ValueError("http_client 'pyreqwest' needs the fast extra: pip install 'bedrock-mw[fast]'")
        return value

    @field_validator("account_id")
    @classmethod
    def _account_shape(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT.match(value):
            raise ValueError(f"{value!r} is not an AWS account id (12 digits)")
        return value

    @property
    def role_account(self) -> str | None:
        """The account of the role the provider assumes, read from its ARN (its calls are that account's)."""
        role = self.auth.assume_role if not isinstance(self.auth, ApiKeyAuth) else None
        match = _ROLE_ACCOUNT.match(role.role_arn) if role is not None else None
        return match[1] if match else None

    @property
    def known_account(self) -> str | None:
        """The AWS account Bedrock sees this provider's calls from, when the config says; never guessed."""
        return self.account_id or self.role_account

    @model_validator(mode="after")
    def _one_account(self) -> ProviderConfig:
        role = self.role_account
        if self.account_id is not None and role is not None and role != self.account_id:
            raise ValueError(f"account_id {self.account_id} differs from the assumed role's account {role}")
        profile = _ARN_ACCOUNT.match(self.inference_profile_arn or "")
        known = self.known_account
        if profile is not None and known is not None and profile[1] != known:
            raise ValueError(
                f"inference_profile_arn is in account {profile[1]}, "
                f"but this provider calls Bedrock as account {known}"
            )
        return self

    @field_validator("inference_profile_arn")
    @classmethod
    def _profile_arn_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(
            r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:(application-)?inference-profile/.+$", value
        ):
            raise ValueError("must be an inference-profile or application-inference-profile ARN")
        return value


class KeyLimits(_Model):
    """Per-virtual-key limits; ``None`` means unlimited."""

    max_concurrent: int | None = Field(None, ge=1)
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)


class VirtualKeyConfig(_Model):
    """A key the gateway's callers present, bound to an ordered chain of providers."""

    id: str = Field(min_length=1, max_length=128)
    key: SecretStr | None = None
    key_sha256: str | None = None
    providers: list[str] = Field(min_length=1)
    default_region: str | None = None
    model_aliases: dict[str, AliasTarget] = Field(default_factory=dict)
    allowed_models: list[str] | None = None
    allowed_regions: list[str] | None = None
    disabled: bool = False
    limits: KeyLimits = KeyLimits()
    guardrail: GuardrailConfig | None = None
    allow_request_guardrail: bool = False
    budget: BudgetConfig | None = None
    drop_unsupported_params: bool | None = None
    messages_api: MessagesApi | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("key_sha256")
    @classmethod
    def _digest_shape(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256_HEX.match(value.lower()):
            raise ValueError("must be 64 hex characters (the SHA-256 of the key)")
        return None if value is None else value.lower()

    @field_validator("default_region")
    @classmethod
    def _region_shape(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region name (like 'us-east-1')")
        return value

    @field_validator("allowed_regions")
    @classmethod
    def _region_patterns(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or ():
            if not _REGION_PATTERN.match(pattern):
                raise ValueError(
                    f"{pattern!r} is not an AWS region name or glob (like 'eu-west-1' or 'eu-*')"
                )
        return value

    @model_validator(mode="after")
    def _one_key_form(self) -> VirtualKeyConfig:
        # Neither is allowed only for keys a host's key_resolver hands out (no presentable secret);
        # GatewayConfig requires one of them for every key in a config file.
        if self.key is not None and self.key_sha256 is not None:
            raise ValueError("give only one of 'key' and 'key_sha256'")
        return self

    @property
    def digest(self) -> str:
        """The SHA-256 hex digest the key is stored and compared as ("" for a key with no secret)."""
        if self.key_sha256 is not None:
            return self.key_sha256
        if self.key is None:
            return ""
        return hashlib.sha256(self.key.get_secret_value().encode()).hexdigest()


class LimitsConfig(_Model):
    """Process-wide request limits and where per-key counters live."""

    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    body_idle_timeout_s: float = Field(5.0, gt=0)
    body_timeout_s: float = Field(30.0, gt=0)
    max_json_depth: int = Field(128, ge=16, le=200)
    redis_url: SecretStr | None = None
    redis_prefix: str = "bedrock-mw"
    redis_lease_ttl_s: float = Field(30.0, ge=1.0)


class ProbesConfig(_Model):
    """Health endpoints, outside virtual-key auth."""

    readyz_path: str = "/readyz"
    livez_path: str = "/livez"
    warmup: bool = False
    warmup_timeout_s: float = Field(30.0, gt=0)
    warmup_model: str | None = None

    @model_validator(mode="after")
    def _warmup_needs_model(self) -> ProbesConfig:
        if self.warmup and not self.warmup_model:
            raise ValueError("warmup is on but warmup_model is not set (name the model to call)")
        return self


class ObservabilityConfig(_Model):
    """Logs, metrics and traces."""

    access_log: bool = True
    log_bodies: bool = False
    metrics: bool = False
    metrics_path: str = "/metrics"
    tracing: bool = True


class ResponsesConfig(_Model):
    """The OpenAI Responses route: the reasoning seal and the default response store."""

    reasoning_key: SecretStr | None = None
    store: Literal["memory", "redis"] = "memory"
    store_max_responses: int = Field(10_000, ge=1)
    store_ttl_s: float = Field(86_400.0, gt=0)


class BedrockApiConfig(_Model):
    """Bedrock's own API (Runtime and ListInferenceProfiles) served under a path prefix."""

    enabled: bool = True
    prefix: str = Field("/bedrock", pattern=r"^/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$")


class ModelDiscoveryConfig(_Model):
    """Reading what each provider's account offers from Bedrock's control plane (see docs/routing.md)."""

    enabled: bool = True
    ttl_s: float = Field(3600.0, gt=0)
    wait_s: float = Field(3.0, ge=0)


class GatewayConfig(_Model):
    """The whole gateway configuration."""

    providers: list[ProviderConfig] = Field(default_factory=list)
    virtual_keys: list[VirtualKeyConfig] = Field(default_factory=list)
    store_cache_ttl_s: float = Field(30.0, ge=0)
    drop_unsupported_params: bool = False
    reject_unknown_fields: bool = False
    allow_url_fetch: bool = False
    url_fetch_allowed_hosts: list[str] | None = None
    url_fetch_max_urls: int = Field(20, ge=1)
    url_fetch_max_total_bytes: int = Field(20_971_520, ge=1024)
    supported_betas: list[str] | None = None
    model_catalogue: dict[str, str] = Field(default_factory=dict)
    arn_models: dict[str, str] = Field(default_factory=dict)
    model_discovery: ModelDiscoveryConfig = ModelDiscoveryConfig()
    max_cache_points: int = Field(4, ge=0)
    usage_hook: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    guardrail: GuardrailConfig | None = None
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    budget_groups: list[BudgetGroupConfig] = Field(default_factory=list)
    limits: LimitsConfig = LimitsConfig()
    probes: ProbesConfig = ProbesConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    responses: ResponsesConfig = ResponsesConfig()
    bedrock_api: BedrockApiConfig = BedrockApiConfig()

    @field_validator("arn_models")
    @classmethod
    def _arn_models_shape(cls, value: dict[str, str]) -> dict[str, str]:
        for arn, model in value.items():
            if not re.match(
                r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:(application-inference-profile|provisioned-model"
                r"|imported-model|custom-model|custom-model-deployment)/.+$",
                arn,
            ):
                raise ValueError(
                    f"{arn!r} is not an application-inference-profile, provisioned-model, imported-model, "
                    "custom-model or custom-model-deployment ARN"
                )
            if not re.match(r"^[a-z0-9-]+\.[A-Za-z0-9._:-]+$", model):
                raise ValueError(
                    f"{model!r} (for {arn}) is not a base Bedrock model id like 'anthropic.claude-...'"
                )
        return value

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        provider_ids = [p.id for p in self.providers]
        dupes = {p for p in provider_ids if provider_ids.count(p) > 1}
        if dupes:
            raise ValueError(f"duplicate provider ids: {sorted(dupes)}")
        key_ids = [k.id for k in self.virtual_keys]
        dupes = {k for k in key_ids if key_ids.count(k) > 1}
        if dupes:
            raise ValueError(f"duplicate virtual key ids: {sorted(dupes)}")
        known = set(provider_ids)
        for vk in self.virtual_keys:
            if vk.key is None and vk.key_sha256 is None:
                raise ValueError(f"virtual key {vk.id!r} needs 'key' or 'key_sha256'")
            missing = [p for p in vk.providers if p not in known]
            if missing and self.providers:
                raise ValueError(f"virtual key {vk.id!r} names unknown providers {missing}")
        holders: dict[str, list[str]] = {}
        for vk in self.virtual_keys:
            holders.setdefault(vk.digest.lower(), []).append(vk.id)
        shared = [ids for ids in holders.values() if len(ids) > 1]
        if shared:
            # Only the first would ever authenticate; name the ids, never the secret or its digest.
            raise ValueError(
                "virtual keys share one secret (a 'key', or a 'key' and the 'key_sha256' of it): "
                + "; ".join(", ".join(repr(i) for i in ids) for ids in shared)
            )
        if self.responses.store == "redis" and self.limits.redis_url is None:
            raise ValueError("responses.store is 'redis' but limits.redis_url is not set")
        group_ids = [g.id for g in self.budget_groups]
        dupes = {g for g in group_ids if group_ids.count(g) > 1}
        if dupes:
            raise ValueError(f"duplicate budget group ids: {sorted(dupes)}")
        return self

    def budget_groups_of(self, key_id: str) -> list[BudgetGroupConfig]:
        """The budget groups ``key_id`` belongs to."""
        return [g for g in self.budget_groups if key_id in g.keys]

    def provider(self, provider_id: str) -> ProviderConfig | None:
        """The provider with this id, if any."""
        for p in self.providers:
            if p.id == provider_id:
                return p
        return None


def expand_env(value: Any, environ: Mapping[str, str] | None = None, *, where: str = "") -> Any:
    """Replace ``${VAR}`` (or ``${VAR:-default}``) in every string of ``value`` from the environment."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set (referenced at {where or '<root>'})")

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, where=f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, where=f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(text)
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError("YAML config files need PyYAML: pip install 'bedrock-mw[yaml]'") from None
            return yaml.safe_load(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid {suffix[1:].upper()}: {exc}") from None
    raise ConfigError(f"unknown config file type {suffix!r} (use .json, .toml, .yaml or .yml)")


def _describe(exc: ValidationError) -> str:
    # Errors name the field path and the problem, never the input value (it may be a secret).
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        lines.append(f"  {loc or '<root>'}: {err['msg']}")
    return "invalid gateway config:\n" + "\n".join(lines)


def load_config(
    source: GatewayConfig | Mapping[str, Any] | str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
) -> GatewayConfig:
    """Load and validate a config from a validated object, a dict, or a JSON/TOML/YAML file path."""
    if isinstance(source, GatewayConfig):
        return source
    raw = _read_file(Path(source)) if isinstance(source, str | os.PathLike) else dict(source)
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping at the top level")
    expanded = expand_env(raw, environ)
    try:
        return GatewayConfig.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None

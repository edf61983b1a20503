"""The built-in table of known models: Anthropic API names, Bedrock ids, and where profiles exist.

Data only, in one place. Each row is one foundation model: its canonical Bedrock id, the Anthropic
API names that mean it (so an Anthropic SDK works with no configuration), and the geographies in
which Bedrock offers an inference profile for it (``us.``, ``eu.``, ... and ``global.``). Routing
uses the geographies to choose or rewrite a profile prefix and to skip a fallback that would land
where the model is not offered. A model missing from this table is assumed offered everywhere:
Bedrock then decides, and its answer is mapped and explained.

Sources: AWS Bedrock model cards and the supported-models table (checked 2026); where AWS lists a
geography only for some source regions we keep the geography, Bedrock refuses the odd region itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["KNOWN_MODELS", "Catalogue", "KnownModel", "known_model", "normalise_model_id"]


@dataclass(frozen=True, slots=True)
class KnownModel:
    """One foundation model the gateway knows by name."""

    bedrock_id: str
    api_names: tuple[str, ...]
    profile_geos: frozenset[str]


def _geos(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


# Newest first: the first names appear in "model not found" messages.
KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel("anthropic.claude-opus-4-7", ("claude-opus-4-7",), _geos("us eu jp au global")),
    KnownModel("anthropic.claude-sonnet-4-6", ("claude-sonnet-4-6",), _geos("us eu jp au global")),
    KnownModel("anthropic.claude-opus-4-6-v1", ("claude-opus-4-6",), _geos("us eu au global")),
    KnownModel(
        "anthropic.claude-opus-4-5-20251101-v1:0",
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        _geos("us eu global"),
    ),
    KnownModel(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        _geos("us eu jp au global"),
    ),
    KnownModel(
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        _geos("us eu jp au us-gov global"),
    ),
    KnownModel(
        "anthropic.claude-opus-4-1-20250805-v1:0",
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        _geos("us"),
    ),
    KnownModel(
        "anthropic.claude-opus-4-20250514-v1:0",
        ("claude-opus-4-20250514", "claude-opus-4-0", "claude-opus-4", "claude-4-opus-20250514"),
        _geos("us"),
    ),
    KnownModel(
        "anthropic.claude-sonnet-4-20250514-v1:0",
        ("claude-sonnet-4-20250514", "claude-sonnet-4-0", "claude-sonnet-4", "claude-4-sonnet-20250514"),
        _geos("us eu apac global"),
    ),
    KnownModel(
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet"),
        _geos("us eu apac us-gov"),
    ),
    KnownModel(
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        _geos("us"),
    ),
    KnownModel(
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        _geos("us apac"),
    ),
    KnownModel(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        ("claude-3-5-sonnet-20240620",),
        _geos("us eu apac us-gov"),
    ),
    KnownModel(
        "anthropic.claude-3-opus-20240229-v1:0",
        ("claude-3-opus-20240229", "claude-3-opus"),
        _geos("us"),
    ),
    KnownModel(
        "anthropic.claude-3-haiku-20240307-v1:0",
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        _geos("us eu apac us-gov"),
    ),
)

_DATED = re.compile(r"-\d{8}$")
_VERSIONED = re.compile(r"-v\d+:\d+$")
_VERSION_NO_MINOR = re.compile(r"-v\d+$")


def _short_forms(bedrock_id: str) -> Iterator[str]:
    """Spellings of ``bedrock_id`` people write that Bedrock itself does not accept."""
    if _VERSIONED.search(bedrock_id):
        # AWS's own pages list "anthropic.claude-haiku-4-5-20251001" without "-v1:0".
        yield _VERSIONED.sub("", bedrock_id)
    elif _VERSION_NO_MINOR.search(bedrock_id):
        # "anthropic.claude-opus-4-6-v1:0" is a common guess; Bedrock only knows "-v1".
        yield bedrock_id + ":0"


_BY_ID: dict[str, KnownModel] = {m.bedrock_id: m for m in KNOWN_MODELS}
_SHORT: dict[str, str] = {short: m.bedrock_id for m in KNOWN_MODELS for short in _short_forms(m.bedrock_id)}


def _builtin_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for model in KNOWN_MODELS:
        for name in model.api_names:
            names.setdefault(name, model.bedrock_id)
        for name in model.api_names:
            if not _DATED.search(name):
                # Anthropic's "-latest" aliases (claude-3-5-haiku-latest, ...), for every undated name.
                names.setdefault(f"{name}-latest", model.bedrock_id)
    return names


_BUILTIN_NAMES = _builtin_names()


def known_model(base_model_id: str) -> KnownModel | None:
    """The table row of a canonical base model id, if the gateway knows the model."""
    return _BY_ID.get(base_model_id)


def normalise_model_id(base_model_id: str) -> str:
    """The canonical Bedrock id of a known short spelling; any other id unchanged."""
    return _SHORT.get(base_model_id, base_model_id)


class Catalogue:
    """Anthropic API model names → Bedrock model strings, built in and extended by the config."""

    __slots__ = ("_arn_models", "_names")

    def __init__(
        self, extra: Mapping[str, str] | None = None, arn_models: Mapping[str, str] | None = None
    ) -> None:
        # Names compare case-insensitively; ``extra`` (config.model_catalogue) wins over built-ins.
        # Its targets may be any model string the router accepts: bare ids, profiles, ARNs, and
        # "bedrock/<region>/..." forms.
        names = {name.lower(): target for name, target in (extra or {}).items()}
        for name, target in _BUILTIN_NAMES.items():
            names.setdefault(name, target)
        self._names = names
        # Application-inference-profile and provisioned-model ARNs do not name their model: the
        # config says which one each serves (config.arn_models), for the family table and CountTokens.
        self._arn_models = {arn: normalise_model_id(model) for arn, model in (arn_models or {}).items()}

    def model_behind(self, arn: str) -> str | None:
        """The base model an opaque (application profile, provisioned) ARN serves, when configured."""
        return self._arn_models.get(arn)

    def lookup(self, name: str) -> str | None:
        """The Bedrock model string an API model name stands for, if it is a catalogue name."""
        return self._names.get(name.lower())

    def normalise(self, base_model_id: str) -> str:
        """The canonical id of a known short Bedrock id (no ``-v1:0``); any other id unchanged."""
        return normalise_model_id(base_model_id)

    def names(self) -> list[str]:
        """Every catalogue name: configured ones first, then built-ins newest model first."""
        return list(self._names)

    def items(self) -> list[tuple[str, str]]:
        """Every ``(name, Bedrock model string)`` pair, in :meth:`names` order."""
        return list(self._names.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

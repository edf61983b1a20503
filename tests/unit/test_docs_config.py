"""docs/configuration.md documents every config model, every field and every default.

The walker starts at :class:`GatewayConfig` and follows field annotations (unions, discriminated
unions, ``list``, ``dict``, ``Annotated``) to every reachable pydantic model. Each model needs a
``## ModelName`` section in the doc holding a table row per field::

    | `field` | type | `default` | meaning |

so a field added to ``config.py`` without a row (or with a stale default) fails here.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, SecretStr, create_model
from pydantic.fields import FieldInfo

from bedrock_mw.config import GatewayConfig, ProbesConfig, VirtualKeyConfig, load_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

_HEADING = re.compile(r"^## `?([A-Za-z_][A-Za-z0-9_]*)`?", re.MULTILINE)
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_RECIPE = re.compile(r"print\(hashlib\.sha256\(b'(vk-[^']+)'\)\.hexdigest\(\)\)\"\s+([0-9a-f]{64})")
_EXAMPLE = re.compile(r"<!-- validated-example -->\s*```(json|toml|yaml)\n(.*?)```", re.DOTALL)


def reachable_models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every pydantic model reachable from ``root`` through field annotations, root first."""
    found: list[type[BaseModel]] = []

    def visit_type(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp not in found:
                found.append(tp)
                for field in tp.model_fields.values():
                    visit_type(field.annotation)
            return
        for arg in typing.get_args(tp):  # Union, X | Y, Annotated, list[...], dict[..., ...]
            visit_type(arg)

    visit_type(root)
    return found


def doc_sections(text: str) -> dict[str, str]:
    """``## Name`` heading → the text up to the next ``## `` heading."""
    matches = list(_HEADING.finditer(text))
    sections: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        sections[match.group(1)] = text[match.end() : end]
    return sections


def table_rows(section: str) -> dict[str, list[str]]:
    """Field name → its table cells (name, type, default, meaning), for rows starting with `` `name` ``."""
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        line = line.strip()
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in _CELL_SPLIT.split(line)[1:-1]]
        name = cells[0].strip("`")
        rows[name] = cells
    return rows


def shown_default(field: FieldInfo) -> str:
    """How the doc must show a field's default: ``required``, or the JSON value in backticks."""
    if field.is_required():
        return "required"
    factory = field.default_factory
    value = factory() if factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        # A nested model defaulting to all of its own defaults, documented in its own section.
        assert value == type(value)(), f"{type(value).__name__} default is not all-defaults"
        return "`{}`"
    if isinstance(value, SecretStr):
        raise AssertionError("a secret must not have a default value")
    return f"`{json.dumps(value)}`"


def documentation_problems(root: type[BaseModel], doc_text: str) -> list[str]:
    """Every model without a section, field without a row, or default shown wrongly."""
    sections = doc_sections(doc_text)
    problems: list[str] = []
    for model in reachable_models(root):
        name = model.__name__
        section = sections.get(name)
        if section is None:
            problems.append(f"{name}: no '## {name}' section")
            continue
        rows = table_rows(section)
        for field_name, field in model.model_fields.items():
            if f"`{field_name}`" not in section:
                problems.append(f"{name}.{field_name}: not documented")
                continue
            row = rows.get(field_name)
            if row is None or len(row) < 4:
                problems.append(f"{name}.{field_name}: no row '| `{field_name}` | type | default | ... |'")
                continue
            expected = shown_default(field)
            if row[2] != expected:
                problems.append(f"{name}.{field_name}: default shown as {row[2]!r}, config has {expected!r}")
            if not row[1] or not row[3]:
                problems.append(f"{name}.{field_name}: type or meaning is empty")
    return problems


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_walker_reaches_every_config_model() -> None:
    names = {m.__name__ for m in reachable_models(GatewayConfig)}
    assert names == {
        "GatewayConfig",
        "ProviderConfig",
        "AccessKeysAuth",
        "ApiKeyAuth",
        "DefaultChainAuth",
        "AssumeRole",
        "TimeoutConfig",
        "VirtualKeyConfig",
        "AliasEntry",
        "GuardrailConfig",
        "BudgetConfig",
        "PriceConfig",
        "BudgetGroupConfig",
        "KeyLimits",
        "LimitsConfig",
        "ModelDiscoveryConfig",
        "ProbesConfig",
        "ObservabilityConfig",
        "ResponsesConfig",
        "BedrockApiConfig",
    }


def test_every_config_field_is_documented_with_its_default(doc_text: str) -> None:
    assert documentation_problems(GatewayConfig, doc_text) == []


class _Gadget(BaseModel):
    brand_new_option: int = 7


class _Widget(BaseModel):
    mode: Literal["widget"]
    gadgets: dict[str, list[_Gadget]] = Field(default_factory=dict)


class _Sprocket(BaseModel):
    mode: Literal["sprocket"]


class _FakeRoot(BaseModel):
    part: Annotated[_Widget | _Sprocket, Field(discriminator="mode")]
    spare: _Gadget | None = None


def test_walker_follows_unions_discriminators_lists_and_dicts() -> None:
    assert reachable_models(_FakeRoot) == [_FakeRoot, _Widget, _Gadget, _Sprocket]


def test_an_undocumented_model_and_field_are_reported(doc_text: str) -> None:
    problems = documentation_problems(_FakeRoot, doc_text)
    assert "_Gadget: no '## _Gadget' section" in problems
    patched = doc_text + "\n## _Gadget\n\n| field | type | default | meaning |\n|---|---|---|---|\n"
    problems = documentation_problems(_FakeRoot, patched)
    assert "_Gadget.brand_new_option: not documented" in problems


def test_a_field_added_to_an_existing_model_fails_the_check(doc_text: str) -> None:
    grown_probes = create_model("ProbesConfig", __base__=ProbesConfig, shiny_new_knob=(int, 3))
    grown_root = create_model("GatewayConfig", __base__=GatewayConfig, probes=(grown_probes, grown_probes()))
    assert documentation_problems(grown_root, doc_text) == ["ProbesConfig.shiny_new_knob: not documented"]


def test_a_stale_default_is_reported(doc_text: str) -> None:
    stale = doc_text.replace("| `connect_s` | float | `5.0` |", "| `connect_s` | float | `10.0` |")
    assert stale != doc_text, "the TimeoutConfig.connect_s row changed shape; update this test"
    problems = documentation_problems(GatewayConfig, stale)
    assert problems == ["TimeoutConfig.connect_s: default shown as '`10.0`', config has '`5.0`'"]


def _examples(doc_text: str) -> dict[str, str]:
    found = {lang: body for lang, body in _EXAMPLE.findall(doc_text)}
    assert set(found) == {"json", "toml", "yaml"}, "expected one validated example per format"
    return found


_EXAMPLE_ENV = {
    "PROD_AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE01",
    "PROD_AWS_SECRET_ACCESS_KEY": "example-secret",
    "BEDROCK_API_KEY": "example-bedrock-api-key",
    "TEAM_A_KEY": "vk-team-a-example",
}


def test_the_documented_examples_load_and_say_the_same_thing(doc_text: str, tmp_path: Path) -> None:
    examples = _examples(doc_text)
    parsed = {"json": json.loads(examples["json"]), "toml": tomllib.loads(examples["toml"])}
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        parsed["yaml"] = yaml.safe_load(examples["yaml"])
    assert parsed["json"] == parsed["toml"]
    if "yaml" in parsed:
        assert parsed["json"] == parsed["yaml"]
    for lang, raw in parsed.items():
        cfg = load_config(raw, _EXAMPLE_ENV)
        assert [p.id for p in cfg.providers], lang
    path = tmp_path / "gateway.toml"
    path.write_text(examples["toml"], encoding="utf-8")
    assert load_config(path, _EXAMPLE_ENV) == load_config(parsed["json"], _EXAMPLE_ENV)


def test_the_documented_digest_recipe_gives_the_digest_the_gateway_compares(doc_text: str) -> None:
    recipe = re.search(_RECIPE, doc_text)
    assert recipe is not None, "the key_sha256 recipe and its output are missing from the doc"
    key, shown = recipe.groups()
    assert hashlib.sha256(key.encode()).hexdigest() == shown
    by_plaintext = VirtualKeyConfig(id="a", key=SecretStr(key), providers=["p"])
    by_digest = VirtualKeyConfig(id="b", key_sha256=shown.upper(), providers=["p"])
    assert by_plaintext.digest == by_digest.digest == shown


def test_the_error_table_in_errors_md_lists_every_guidance_rule_in_order() -> None:
    from bedrock_mw.errors import GatewayError
    from bedrock_mw.guidance import RULES

    text = doc_sections((DOC.parent / "errors.md").read_text(encoding="utf-8"))["Bedrock"]
    rows = [
        [c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]]
        for line in text.splitlines()
        if re.match(r"^\| \d+ \| `", line)
    ]
    documented = [(r[1].strip("`"), r[3].strip("`"), r[4].split()[0], r[5].split()[0]) for r in rows]
    expected = [
        (
            rule.code,
            rule.kind.value,
            str(GatewayError(rule.kind, "").status_for("anthropic")),
            str(GatewayError(rule.kind, "").status_for("openai")),
        )
        for rule in RULES
    ]
    assert documented == expected

"""A deterministic example value for a JSON schema: how the emulator fills tool inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SCALARS: dict[str, Any] = {"string": "example", "integer": 1, "number": 1, "boolean": True, "null": None}


def _type_of(schema: Mapping[str, Any]) -> str | None:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), "null")
    if declared is None and "properties" in schema:
        return "object"
    return declared if isinstance(declared, str) else None


def example_for_schema(schema: Any) -> Any:
    """strings → "example", numbers → 1, booleans → true, enums → first, objects → required props."""
    if not isinstance(schema, Mapping):
        return "example"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return example_for_schema(options[0])
    kind = _type_of(schema)
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example_for_schema(properties.get(name)) for name in schema.get("required") or []}
    if kind == "array":
        items = schema.get("items")
        return [example_for_schema(items)] if isinstance(items, Mapping) else []
    return _SCALARS.get(kind or "string", "example")

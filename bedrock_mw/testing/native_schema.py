"""JSON-schema checks of InvokeModel native bodies, in the wording Bedrock's schema validator uses.

Bedrock validates a native body against the model family's JSON schema and answers
``ValidationException: Malformed input request: <violation>, please reformat your input and try
again.``, or "N schema violations found" when there are several (wording quoted in
sigoden/aichat#543, diffbot/code-gpt-docs#300 and truera/trulens#609). Violations read like the
everit validator's: ``#/path: expected type: JSONArray, found: String``, ``#: required key [k] not
found``, ``#: extraneous key [k] is not permitted``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import BedrockError, validation_error

_MALFORMED_SUFFIX = ", please reformat your input and try again."


def malformed(message: str) -> BedrockError:
    """Bedrock's ValidationException for a native body that breaks its schema."""
    return validation_error(f"Malformed input request: {message}{_MALFORMED_SUFFIX}")


def json_type(value: Any) -> str:
    """The type name the schema validator reports for a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "BigDecimal"
    if isinstance(value, str):
        return "String"
    return "JSONArray" if isinstance(value, list) else "JSONObject"


@dataclass(frozen=True)
class Schema:
    """A small JSON-schema subset: one or more types and their constraints."""

    types: tuple[str, ...]  # "object", "array", "string", "integer", "number", "boolean", "any"
    properties: Mapping[str, Schema] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    closed: bool = False  # additionalProperties: false
    items: Schema | None = None
    min_items: int = 0
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


def obj(
    properties: Mapping[str, Schema] | None = None, required: Sequence[str] = (), closed: bool = False
) -> Schema:
    return Schema(("object",), properties or {}, tuple(required), closed)


def arr(items: Schema, min_items: int = 0) -> Schema:
    return Schema(("array",), items=items, min_items=min_items)


def string(*enum: str) -> Schema:
    return Schema(("string",), enum=enum)


def integer(minimum: float | None = None, maximum: float | None = None) -> Schema:
    return Schema(("integer",), minimum=minimum, maximum=maximum)


def number(minimum: float | None = None, maximum: float | None = None) -> Schema:
    return Schema(("number",), minimum=minimum, maximum=maximum)


def string_or_list(items: Schema) -> Schema:
    """A string, or an array of `items` (Anthropic's `content` and `system`)."""
    return Schema(("string", "array"), items=items)


BOOLEAN = Schema(("boolean",))
ANY = Schema(("any",))
STRINGS = arr(string())
_TYPE_NAMES = {"object": "JSONObject", "array": "JSONArray", "string": "String", "integer": "Integer",
               "number": "Number", "boolean": "Boolean"}  # fmt: skip


def _fits(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def violations(value: Any, schema: Schema, path: str = "#") -> list[str]:
    """Every way `value` breaks `schema`, in the validator's wording."""
    kind = next((t for t in schema.types if _fits(value, t)), None)
    if kind is None:
        expected = " or ".join(_TYPE_NAMES[t] for t in schema.types)
        return [f"{path}: expected type: {expected}, found: {json_type(value)}"]
    found: list[str] = []
    if kind == "object":
        found += [f"{path}: required key [{k}] not found" for k in schema.required if k not in value]
        for key, item in value.items():
            child = schema.properties.get(key)
            if child is not None:
                found += violations(item, child, f"{path}/{key}")
            elif schema.closed:
                found.append(f"{path}: extraneous key [{key}] is not permitted")
    elif kind == "array":
        if len(value) < schema.min_items:
            found.append(f"{path}: expected minimum item count: {schema.min_items}, found: {len(value)}")
        if schema.items is not None:
            for index, item in enumerate(value):
                found += violations(item, schema.items, f"{path}/{index}")
    elif kind == "string" and schema.enum and value not in schema.enum:
        found.append(f"{path}: {value} is not a valid enum value")
    elif kind in ("integer", "number"):
        if schema.minimum is not None and value < schema.minimum:
            found.append(f"{path}: {value} is not greater or equal to {schema.minimum:g}")
        if schema.maximum is not None and value > schema.maximum:
            found.append(f"{path}: {value} is not less or equal to {schema.maximum:g}")
    return found


def check_native(body: Any, schema: Schema, path: str = "#") -> Mapping[str, Any]:
    """The body as a mapping, or Bedrock's "Malformed input request" for its first violations."""
    found = violations(body, schema, path)
    if len(found) == 1:
        raise malformed(found[0])
    if found:
        raise malformed(f"{len(found)} schema violations found")
    assert isinstance(body, dict)
    return body

"""Bedrock's request-shape checks for Converse, ConverseStream and CountTokens, from botocore's model.

Bedrock's front end deserialises a request against the same Smithy model botocore ships, before any
model is looked at. Two kinds of failure, as every Smithy/Coral restJson1 service answers them:

* the body cannot be read as the shape (a JSON type that does not fit, a union with no or several
  members, a blob that is not base64): ``400 SerializationException``. Smithy's restJson1
  malformed-request protocol tests (``smithy-aws-protocol-tests``, ``malformedRequests``) expect
  exactly this type; the message text is the emulator's own (Bedrock's wording is unpublished);
* the shape is read but breaks a constraint (required, length, range, enum, pattern):
  ``400 ValidationException`` "N validation error(s) detected: Value '<v>' at '<path>' failed to
  satisfy constraint: Member must …", paths with 1-based list indexes and ``.member``. Wording seen
  in Bedrock replies quoted in genkit-ai/aws-bedrock-js-plugin#43, Portkey-AI/gateway#1124 and
  BerriAI/litellm#19384/#24668.

Members that the model does not define are ignored here, as Smithy servers ignore them (the top-level
Converse check in converse_rules is stricter on purpose).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from typing import Any

import botocore.loaders

from .errors import BedrockError

Shape = Mapping[str, Any]
OPERATION_SHAPES = {
    "converse": "ConverseRequest",
    "converse-stream": "ConverseStreamRequest",
    "count-tokens": "CountTokensRequest",
}
_MAX_REPORTED = 10
_JSON_KIND = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


@functools.cache
def _shapes() -> Mapping[str, Shape]:
    model: Mapping[str, Any] = botocore.loaders.create_loader().load_service_model(
        "bedrock-runtime", "service-2"
    )
    shapes: Mapping[str, Shape] = model["shapes"]
    return shapes


@functools.cache
def _pattern(source: str) -> re.Pattern[str] | None:
    try:
        return re.compile(source)
    except re.error:  # a Java-only construct: leave the pattern unchecked rather than guess
        return None


def _kind(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return _JSON_KIND.get(type(value), "a value")


def _malformed(path: str, expected: str, value: Any) -> BedrockError:
    where = f" at '{path}'" if path else ""
    return BedrockError("SerializationException", f"Expected {expected}{where}, found {_kind(value)}.")


def _shown(value: Any) -> str:
    if value is None:
        return "Value null"
    if isinstance(value, dict | list):
        return "Value"
    if isinstance(value, bool):
        return f"Value '{str(value).lower()}'"
    return f"Value '{value}'"


class _Checker:
    """One walk over a request: raises on the first unreadable part, collects constraint failures."""

    def __init__(self) -> None:
        self.shapes = _shapes()
        self.failures: list[str] = []

    def fail(self, value: Any, path: str, constraint: str) -> None:
        self.failures.append(
            f"{_shown(value)} at '{path}' failed to satisfy constraint: Member must {constraint}"
        )

    def check(self, value: Any, name: str, path: str) -> None:
        shape = self.shapes[name]
        kind = shape["type"]
        if kind == "structure":
            if shape.get("document"):
                return
            self.structure(value, shape, path)
        elif kind == "list":
            self.sequence(value, shape, path)
        elif kind == "map":
            self.mapping(value, shape, path)
        else:
            self.scalar(value, shape, path)

    def structure(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, dict):
            raise _malformed(path, "an object", value)
        members: Mapping[str, Any] = shape["members"]
        if shape.get("union"):
            present = [k for k, v in value.items() if v is not None]
            unknown = [k for k in present if k not in members]
            if unknown or len(present) != 1:
                detail = f"unknown member {unknown[0]}" if unknown else f"{len(present)} members set"
                raise BedrockError(
                    "SerializationException",
                    f"A union at '{path or 'body'}' must have exactly one known member set ({detail}).",
                )
        for member in shape.get("required", ()):
            if value.get(member) is None and not members[member].get("location"):
                self.fail(None, f"{path}.{member}" if path else member, "not be null")
        # Walk the members sent (unknown ones are ignored), not every member the shape defines.
        for member, item in value.items():
            spec = members.get(member)
            if spec is None or item is None or spec.get("location"):  # location: URI or header
                continue
            self.check(item, spec["shape"], f"{path}.{member}" if path else member)

    def sequence(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, list):
            raise _malformed(path, "an array", value)
        self.length(value, len(value), shape, path)
        for index, item in enumerate(value, start=1):
            child = f"{path}.{index}.member"
            if item is None:
                self.fail(None, child, "not be null")
                continue
            self.check(item, shape["member"]["shape"], child)

    def mapping(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, dict):
            raise _malformed(path, "an object", value)
        self.length(value, len(value), shape, path)
        for key, item in value.items():
            self.check(key, shape["key"]["shape"], path)
            if item is not None:
                self.check(item, shape["value"]["shape"], f"{path}.{key}")

    def length(self, value: Any, size: int, shape: Shape, path: str) -> None:
        if "min" in shape and size < shape["min"]:
            self.fail(value, path, f"have length greater than or equal to {shape['min']}")
        if "max" in shape and size > shape["max"]:
            self.fail(value, path, f"have length less than or equal to {shape['max']}")

    def scalar(self, value: Any, shape: Shape, path: str) -> None:
        kind = shape["type"]
        if kind == "string":
            if not isinstance(value, str):
                raise _malformed(path, "a string", value)
            self.length(value, len(value), shape, path)
            if "enum" in shape and value not in shape["enum"]:
                self.fail(value, path, f"satisfy enum value set: [{', '.join(shape['enum'])}]")
            pattern = _pattern(shape["pattern"]) if "pattern" in shape else None
            if pattern is not None and not pattern.fullmatch(value):
                self.fail(value, path, f"satisfy regular expression pattern: {shape['pattern']}")
        elif kind == "blob":
            self.blob(value, shape, path)
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise _malformed(path, "a boolean", value)
        elif kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise _malformed(path, "an integer", value)
            self.range(value, shape, path)
        elif kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _malformed(path, "a number", value)
            self.range(value, shape, path)
        elif kind == "timestamp" and (isinstance(value, bool) or not isinstance(value, int | float | str)):
            raise _malformed(path, "a timestamp", value)

    def blob(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, str):
            raise _malformed(path, "a base64 string", value)
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BedrockError(
                "SerializationException", f"The value at '{path}' is not valid base64."
            ) from None
        self.length(value, len(raw), shape, path)

    def range(self, value: float, shape: Shape, path: str) -> None:
        if "min" in shape and value < shape["min"]:
            self.fail(value, path, f"have value greater than or equal to {shape['min']}")
        if "max" in shape and value > shape["max"]:
            self.fail(value, path, f"have value less than or equal to {shape['max']}")


def check_request_shape(operation: str, body: Any) -> None:
    """Raise the SerializationException or ValidationException Bedrock's front end would."""
    name = OPERATION_SHAPES.get(operation)
    if name is None:
        return
    checker = _Checker()
    checker.check(body, name, "")
    failures = checker.failures
    if failures:
        count = len(failures)
        noun = "error" if count == 1 else "errors"
        shown = "; ".join(failures[:_MAX_REPORTED])
        raise BedrockError("ValidationException", f"{count} validation {noun} detected: {shown}")

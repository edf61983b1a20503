"""The public API: one export list, and every type a public signature takes is exported with it."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

import bedrock_mw


def test_every_public_name_resolves_to_the_object_its_module_defines() -> None:
    for name, module in bedrock_mw._PUBLIC.items():
        assert getattr(bedrock_mw, name) is getattr(importlib.import_module(module, "bedrock_mw"), name)
    assert sorted(bedrock_mw.__all__) == sorted(["__version__", *bedrock_mw._PUBLIC])


def test_type_checkers_see_exactly_the_export_list() -> None:
    tree = ast.parse(Path(bedrock_mw.__file__).read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen = {}
    for node in guarded.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            assert alias.asname == alias.name, "re-export explicitly: 'import X as X'"
            seen[alias.name] = "." * node.level + (node.module or "")
    assert seen == bedrock_mw._PUBLIC


def _signature_hints(obj: Any) -> Iterator[Any]:
    """The annotations a host meets using ``obj``: a function's, a constructor's, a protocol's methods'."""
    if typing.get_origin(obj) is not None or not callable(obj):  # a type alias: its own members
        yield obj
        return
    if not inspect.isclass(obj):
        yield from typing.get_type_hints(obj).values()
        return
    if issubclass(obj, pydantic.BaseModel):
        return  # config models take plain data (dicts, strings), validated
    targets: list[Any] = [obj.__init__]
    if getattr(obj, "_is_protocol", False):  # the host implements these: every method counts
        targets += [v for k, v in vars(obj).items() if (k == "__call__" or k[0] != "_") and callable(v)]
    if dataclasses.is_dataclass(obj):
        targets.append(obj)
    for target in targets:
        yield from typing.get_type_hints(target).values()


def _package_types(hint: Any) -> Iterator[type]:
    if isinstance(hint, list):  # a Callable's parameter list
        for item in hint:
            yield from _package_types(item)
        return
    for arg in typing.get_args(hint):
        yield from _package_types(arg)
    origin = typing.get_origin(hint) or hint
    if isinstance(origin, type) and origin.__module__.startswith("bedrock_mw"):
        yield origin


@pytest.mark.parametrize("name", sorted(bedrock_mw._PUBLIC))
def test_every_package_type_in_a_public_signature_is_exported(name: str) -> None:
    for hint in _signature_hints(getattr(bedrock_mw, name)):
        for used in _package_types(hint):
            assert getattr(bedrock_mw, used.__name__, None) is used, f"{name} takes {used!r}"

"""The models a key may use (``GET /v1/models``), in the caller's dialect."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from ..config import VirtualKeyConfig, alias_model
from ..stores import AliasStore
from .discovery import AccountModels
from .model_ids import GEOS, Catalogue, split_region_prefix


def _allowed(key: VirtualKeyConfig, name: str, target: str) -> bool:
    if key.allowed_models is None:
        return True
    candidates = (name, target, target.removeprefix("bedrock/"))
    return any(fnmatchcase(c, p) for p in key.allowed_models for c in candidates)


def _base_of(target: str) -> str:
    rest = split_region_prefix(target)[1] if not target.startswith("arn:") else target
    head, dot, tail = rest.partition(".")
    return tail if dot and head in GEOS else rest


async def list_models_payload(
    key: VirtualKeyConfig,
    aliases: AliasStore,
    catalogue: Catalogue,
    *,
    anthropic_shape: bool,
    account: AccountModels | None = None,
) -> dict[str, Any]:
    """Aliases (concrete names only), catalogue names, then the account's; filtered by ``allowed_models``.

    With the primary provider's ``account`` known, catalogue names of models it does not offer are
    left out and the Claude models it offers under names the catalogue lacks are added.
    """
    entries: dict[str, str] = {}
    for name, entry in (await aliases.list_aliases(key)).items():
        target = alias_model(entry)
        if not any(ch in name for ch in "*?[") and _allowed(key, name, target):
            entries[name] = target
    for name, target in catalogue.items():
        offered = account is None or _base_of(target) in account.base_ids or target.startswith("arn:")
        if name not in entries and offered and _allowed(key, name, target):
            entries[name] = target
    if account is not None:
        for name in account.names():
            base = account.model_for_name(name)
            if base is not None and name not in entries and _allowed(key, name, base):
                entries[name] = base
    if anthropic_shape:
        data = [
            {"type": "model", "id": name, "display_name": name, "created_at": "2024-01-01T00:00:00Z"}
            for name in entries
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "bedrock", "bedrock_model_id": target}
            for name, target in entries.items()
        ],
    }

"""The models a key may use (``GET /v1/models``), in the caller's dialect."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from ..config import VirtualKeyConfig
from ..stores import AliasStore
from .model_ids import Catalogue


def _allowed(key: VirtualKeyConfig, name: str, target: str) -> bool:
    if key.allowed_models is None:
        return True
    candidates = (name, target, target.removeprefix("bedrock/"))
    return any(fnmatchcase(c, p) for p in key.allowed_models for c in candidates)


async def list_models_payload(
    key: VirtualKeyConfig, aliases: AliasStore, catalogue: Catalogue, *, anthropic_shape: bool
) -> dict[str, Any]:
    """Aliases (concrete names only) first, then the catalogue's names, filtered by ``allowed_models``."""
    entries: dict[str, str] = {}
    for name, target in (await aliases.list_aliases(key)).items():
        if not any(ch in name for ch in "*?[") and _allowed(key, name, target):
            entries[name] = target
    for name, target in catalogue.items():
        if name not in entries and _allowed(key, name, target):
            entries[name] = target
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

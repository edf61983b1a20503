"""``GET /v1/models``: the models a key may use, in the caller's dialect."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from .config import VirtualKeyConfig
from .gateway import Gateway, RequestContext
from .stores import resolve_alias_store


def _allowed(key: VirtualKeyConfig, name: str, target: str) -> bool:
    if key.allowed_models is None:
        return True
    candidates = (name, target, target.removeprefix("bedrock/"))
    return any(fnmatchcase(c, p) for p in key.allowed_models for c in candidates)


async def list_models_payload(gw: Gateway, ctx: RequestContext, key: VirtualKeyConfig) -> dict[str, Any]:
    """Aliases (concrete names only) first, then the catalogue's names, filtered by ``allowed_models``."""
    aliases = await resolve_alias_store(gw.alias_source, ctx.request)
    entries: dict[str, str] = {}
    for name, target in (await aliases.list_aliases(key)).items():
        if not any(ch in name for ch in "*?[") and _allowed(key, name, target):
            entries[name] = target
    for name, target in gw.catalogue.items():
        if name not in entries and _allowed(key, name, target):
            entries[name] = target
    if "anthropic-version" in ctx.request.headers or "x-api-key" in ctx.request.headers:
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

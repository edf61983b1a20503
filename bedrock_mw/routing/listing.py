"""The models a key may use (``GET /v1/models``), in the caller's dialect.

A name is listed only when the request path would serve it (:func:`.access.callable_plan`: the same
resolution, ``allowed_models`` match on the parsed identity, and plan under ``allowed_regions``), so
every listed id can be called and every refused one is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import ProviderConfig, VirtualKeyConfig, alias_model
from ..stores import AliasStore
from .access import callable_plan
from .discovery import AccountModels
from .model_ids import Catalogue, ModelFinder, ModelRef

__all__ = ["list_models_payload"]


def _offered(ref: ModelRef, account: AccountModels | None) -> bool:
    # An ARN is the account's own resource; an id is offered when the account lists its base model.
    return account is None or ref.kind.endswith("-arn") or ref.base_model_id in account.base_ids


async def list_models_payload(
    key: VirtualKeyConfig,
    aliases: AliasStore,
    catalogue: Catalogue,
    *,
    anthropic_shape: bool,
    providers: Sequence[ProviderConfig],
    finder: ModelFinder | None = None,
    account: AccountModels | None = None,
) -> dict[str, Any]:
    """Aliases (concrete names only), catalogue names, then the account's: those the key can call.

    With the primary provider's ``account`` known, catalogue names of models it does not offer are
    left out and the Claude models it offers under names the catalogue lacks are added.
    """

    async def plan_for(name: str) -> ModelRef | None:
        plan = await callable_plan(name, key, aliases, catalogue, finder, providers)
        return None if plan is None else plan.model

    entries: dict[str, str] = {}
    for name, entry in (await aliases.list_aliases(key)).items():
        if not any(ch in name for ch in "*?[") and await plan_for(name) is not None:
            entries[name] = alias_model(entry)
    for name, target in catalogue.items():
        if name in entries:
            continue
        ref = await plan_for(name)
        if ref is not None and _offered(ref, account):
            # A glob alias of the key may take the name over: then it means the alias's target.
            entries[name] = target if ref.alias is None else ref.model_id
    if account is not None:
        for name in account.names():
            if name in entries:
                continue
            ref = await plan_for(name)
            if ref is not None:
                entries[name] = ref.model_id
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

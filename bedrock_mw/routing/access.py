"""What a virtual key may call: the one decision the request path and every model listing share.

A model string is callable by a key when it resolves (alias, catalogue name, Claude name, Bedrock id
form), its parsed identity matches the key's ``allowed_models``, and the plan for it keeps at least one
attempt inside the key's ``allowed_regions`` and its providers' accounts. ``Gateway.route`` refuses
with the error :func:`admit` raises; ``GET /v1/models`` and ``ListInferenceProfiles`` list a model
only when :func:`callable_plan` finds a plan for it, so a listed id is exactly one the key can call.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from ..config import ProviderConfig, VirtualKeyConfig
from ..errors import ErrorKind, GatewayError
from .model_ids import Catalogue, ModelFinder, ModelRef, resolve_model
from .plan import RoutePlan, plan_route
from .residency import region_allowed

if TYPE_CHECKING:
    from ..stores import AliasStore

__all__ = ["admit", "callable_plan", "check_model_allowed", "listing_origin", "model_allowed"]


def model_allowed(key: VirtualKeyConfig, ref: ModelRef) -> bool:
    """Whether ``key.allowed_models`` matches the model's parsed identity.

    That is the name asked for when it was a name (alias, catalogue or Claude name), the resolved
    Bedrock id and its base model id; never the raw string, which may carry prefixes and segments.
    """
    patterns = key.allowed_models
    if patterns is None:
        return True
    candidates = tuple(c for c in (ref.name, ref.model_id, ref.base_model_id) if c is not None)
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in candidates)


def check_model_allowed(key: VirtualKeyConfig, ref: ModelRef) -> None:
    """A 403 ``GatewayError`` unless ``key.allowed_models`` matches the model's parsed identity."""
    if model_allowed(key, ref):
        return
    patterns = key.allowed_models or []
    shown = ", ".join(patterns[:10]) + (", ..." if len(patterns) > 10 else "")
    raise GatewayError(
        ErrorKind.PERMISSION,
        f"model {ref.requested!r} is not allowed for this API key (allowed: {shown or 'none'})",
        param="model",
    )


def admit(ref: ModelRef, key: VirtualKeyConfig, providers: Sequence[ProviderConfig]) -> RoutePlan:
    """The plan for a resolved model, or the error refusing it (403, 404, 502) in the gateway's terms."""
    check_model_allowed(key, ref)
    if not providers:
        raise GatewayError(
            ErrorKind.BAD_GATEWAY, f"virtual key {key.id!r} has no configured provider available"
        )
    plan = plan_route(ref, key, providers)
    if not plan.attempts:
        raise GatewayError(
            ErrorKind.NOT_FOUND,
            f"model {ref.requested!r} is not offered in any region this key can reach: "
            + "; ".join(plan.skipped),
            param="model",
        )
    return plan


async def callable_plan(
    requested: str,
    key: VirtualKeyConfig,
    aliases: AliasStore,
    catalogue: Catalogue,
    finder: ModelFinder | None,
    providers: Sequence[ProviderConfig],
) -> RoutePlan | None:
    """The plan the request path would make for ``requested``, or ``None`` when it would refuse it."""
    try:
        ref = await resolve_model(requested, key, aliases, catalogue, finder)
        return admit(ref, key, providers)
    except GatewayError:
        return None


def listing_origin(
    key: VirtualKeyConfig, providers: Sequence[ProviderConfig]
) -> tuple[ProviderConfig, str] | None:
    """The provider and region a model listing takes its view from: the first the key may reach.

    That is the primary in the key's ``default_region`` (or its own region), unless the key's
    ``allowed_regions`` leave it out; then the first fallback whose region they admit, since that is
    where the key's requests are served.
    """
    origins = [(p, (key.default_region or p.region) if i == 0 else p.region) for i, p in enumerate(providers)]
    if key.allowed_regions is not None:
        for provider, region in origins:
            if region_allowed(key.allowed_regions, region):
                return provider, region
    return origins[0] if origins else None

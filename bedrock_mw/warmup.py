"""Warm-up for Bedrock's cold starts: one tiny call per primary provider before /readyz says ready."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .dispatch import Destination, UpstreamError
from .routing.model_ids import parse_model_id
from .routing.plan import profile_id_for

if TYPE_CHECKING:
    from .gateway import Gateway
    from .translate.types import ConverseParams


async def warm_up(gateway: Gateway) -> list[str]:
    """Call ``probes.warmup_model`` once through each key's primary provider; the problems found."""
    cfg = gateway.config
    model = cfg.probes.warmup_model
    if model is None:
        return []
    ref = parse_model_id(model.removeprefix("bedrock/"))
    # Each key's primary provider, in the region that key's requests go to (its default_region).
    primaries = {(vk.providers[0], vk.default_region) for vk in cfg.virtual_keys if not vk.disabled}
    problems: list[str] = []

    async def one(provider_id: str, default_region: str | None) -> None:
        provider = cfg.provider(provider_id)
        assert provider is not None
        region = ref.region or default_region or provider.region
        model_id = ref.model_id
        if ref.kind == "foundation" and ref.family.needs_inference_profile:
            model_id = profile_id_for(ref.base_model_id, region)
        request: ConverseParams = {
            "messages": [{"role": "user", "content": [{"text": "ping"}]}],
            "inferenceConfig": {"maxTokens": 1},
        }
        target = Destination(provider, region, model_id)
        try:
            with anyio.fail_after(cfg.probes.warmup_timeout_s):
                await gateway.dispatcher.converse(target, request)
        except UpstreamError as err:
            problems.append(f"warm-up of {model_id} via {provider.id} in {region} failed: {err.code}")
        except TimeoutError:
            problems.append(f"warm-up of {model_id} via {provider.id} in {region} timed out")

    async with anyio.create_task_group() as tg:
        for provider_id, default_region in primaries:
            tg.start_soon(one, provider_id, default_region)
    return problems

"""``/livez`` and ``/readyz``: probes for Kubernetes, outside virtual-key auth.

``/readyz`` answers 503 until the credential store answers for every configured provider and
every provider's credentials resolve (and, when configured, a warm-up call per primary provider
has returned, for Bedrock's cold starts). Once ready, the result is kept for a short while so a
probe every second does not become a credential lookup every second.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from .dispatch import UpstreamError
from .http import json_response
from .stores import resolve_store
from .warmup import warm_up

if TYPE_CHECKING:
    from .gateway import Gateway

_READY_FOR_S = 10.0


class Readiness:
    """Computes and caches the gateway's readiness."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._ready_until = 0.0
        self._lock = anyio.Lock()
        self._warmed = False

    async def livez(self, request: Request) -> Response:
        """The process is up and serving."""
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """200 when stores answer and every credential resolves; 503 with the reasons otherwise."""
        if time.monotonic() < self._ready_until:
            return json_response({"status": "ready"})
        async with self._lock:
            problems = await self._check(request)
            if not problems:
                self._ready_until = time.monotonic() + _READY_FOR_S
                return json_response({"status": "ready"})
        return json_response({"status": "not ready", "problems": problems}, status=503)

    async def _check(self, request: Request) -> list[str]:
        gw = self._gateway
        problems: list[str] = []
        try:
            store = await resolve_store(gw.credential_source, request)
        except Exception as exc:
            return [f"credential store unavailable: {type(exc).__name__}"]
        checks: list[Any] = []
        for configured in gw.config.providers:
            try:
                provider = await store.get_provider(configured.id)
            except Exception as exc:
                problems.append(f"credential store failed for provider {configured.id}: {type(exc).__name__}")
                continue
            checks.append(provider or configured)

        async def check(provider: Any) -> None:
            try:
                with anyio.fail_after(gw.config.probes.warmup_timeout_s):
                    await gw.dispatcher.pool.check_credentials(provider)
            except UpstreamError as err:
                problems.append(f"provider {provider.id}: credentials do not resolve ({err.code})")
            except TimeoutError:
                problems.append(f"provider {provider.id}: credentials did not resolve in time")

        async with anyio.create_task_group() as tg:
            for provider in checks:
                tg.start_soon(check, provider)
        if not problems and gw.config.probes.warmup and not self._warmed:
            problems.extend(await warm_up(gw))
            self._warmed = not problems
        return problems

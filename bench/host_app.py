"""The gateway in a host app, as the README and docs/integration.md show it: FastAPI under uvicorn.

Run as ``python -m bench.host_app CONFIG HOST PORT [--form mount|wrap|bare] [--freeze] [--clock]``.

- ``--form mount`` (the default): ``app.mount(HOST_PREFIX, gateway)``, the README's form. Every
  gateway request goes through FastAPI's app, its middleware and its router first.
- ``--form wrap``: ``GatewayMiddleware(app, gateway=..., prefix=HOST_PREFIX)`` in front of the same
  FastAPI app (docs/integration.md); a request under the prefix goes to the gateway without entering
  FastAPI, everything else goes to FastAPI untouched.
- ``--form bare``: no host at all, the gateway under the prefix alone; only with ``--clock``, as the
  clock's own baseline.
- ``--freeze``: ``gc.collect(); gc.freeze()`` once built, as ``serve`` does and docs/deploy.md advises.
- ``--clock``: time the host's own layers in place (:class:`LayerClock`), read at ``CLOCK_PATH``.

uvicorn is started with what ``bedrock-mw serve`` gives it (uvloop and httptools when installed, one
worker, no access log), so the difference the bench measures between this process and ``serve`` is
the host app. Nothing else is tuned.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import bedrock_mw
from bench.names import CLOCK_PATH, HOST_PREFIX

FORMS = ("mount", "wrap", "bare")
_KEY = "bench.layer_clock"


class LayerClock:
    """The time a host app's own layers run per request, measured in place under real load.

    Measured alone, in a tight loop (:func:`bench.mount.host_dispatch`), a framework's code runs with
    its caches warm; between real requests the server, the gateway and the upstream client run in
    between, so the same code runs colder. This clock times it where it runs: :meth:`outside` wraps
    the whole host app and :meth:`inside` the gateway where the host hands it the request. Per
    request it adds up the way in (host entered to gateway entered), the way out (gateway returned
    to host returned) and, for each ``send`` the gateway makes, the time in the host's wrappers
    (the ``send`` the gateway was given, minus the server's own ``send`` under it). None of these
    spans waits on I/O: the host's layers do not await the network on the way to a mounted app.

    The clock costs a little itself (a few ``perf_counter_ns`` calls and closures per request); the
    same clock with no host between its two halves (``--form bare``) is its baseline.
    """

    def __init__(self) -> None:
        self.samples: list[int] = []

    def outside(self, app: ASGIApp) -> ASGIApp:
        async def clocked(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            if scope["path"] == CLOCK_PATH:
                await self._answer(send)
                return
            marks: dict[str, int] = {"send": 0, "server_send": 0}

            async def server_send(message: Message) -> None:
                start = time.perf_counter_ns()
                await send(message)
                marks["server_send"] = time.perf_counter_ns() - start

            scope[_KEY] = marks
            marks["entered"] = time.perf_counter_ns()
            await app(scope, receive, server_send)
            left = time.perf_counter_ns()
            if "returned" in marks:  # the request reached the gateway
                self.samples.append(marks["in"] + (left - marks["returned"]) + marks["send"])

        return clocked

    @staticmethod
    def inside(gateway: ASGIApp) -> ASGIApp:
        async def clocked(scope: Scope, receive: Receive, send: Send) -> None:
            marks: dict[str, int] | None = scope.get(_KEY)
            if marks is None:
                await gateway(scope, receive, send)
                return
            marks["in"] = time.perf_counter_ns() - marks["entered"]

            async def host_send(message: Message) -> None:
                start = time.perf_counter_ns()
                await send(message)
                marks["send"] += time.perf_counter_ns() - start - marks["server_send"]

            await gateway(scope, receive, host_send)
            marks["returned"] = time.perf_counter_ns()

        return clocked

    def summary(self) -> dict[str, Any]:
        """Median and quartiles in µs over the requests since the last summary, then a new count."""
        samples, self.samples = self.samples, []
        if len(samples) < 4:
            return {"requests": len(samples)}
        q1, median, q3 = statistics.quantiles(samples, n=4)
        return {"requests": len(samples), "median_us": median / 1e3, "q1_us": q1 / 1e3, "q3_us": q3 / 1e3}

    async def _answer(self, send: Send) -> None:
        body = orjson.dumps(self.summary())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _fastapi() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def build(config: str, form: str = "mount", clock: LayerClock | None = None) -> ASGIApp:
    """A FastAPI app with one route of its own and the gateway under ``HOST_PREFIX`` in ``form``."""
    gateway: ASGIApp = bedrock_mw.create_gateway(config)
    if clock is not None:
        gateway = clock.inside(gateway)
    app: ASGIApp
    if form == "mount":
        host = _fastapi()
        host.mount(HOST_PREFIX, gateway)
        app = host
    elif form == "wrap":
        app = bedrock_mw.GatewayMiddleware(_fastapi(), gateway=gateway, prefix=HOST_PREFIX)  # type: ignore[arg-type]
    elif form == "bare" and clock is not None:

        async def prefixed(scope: Scope, receive: Receive, send: Send) -> None:
            await gateway({**scope, "root_path": HOST_PREFIX}, receive, send)

        app = prefixed
    else:
        raise ValueError(f"form {form!r}: one of mount, wrap (or bare, with a clock)")
    return app if clock is None else clock.outside(app)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.host_app")
    parser.add_argument("config")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--form", choices=FORMS, default="mount")
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--clock", action="store_true")
    args = parser.parse_args(argv[1:])
    app = build(args.config, args.form, LayerClock() if args.clock else None)
    if args.freeze:
        # What the host's own start-up would end with: everything alive now lives as long as the
        # process, so the collector need not walk it again (serve does the same).
        gc.collect()
        gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

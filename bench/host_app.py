"""The gateway mounted in a host app, as the README shows it: FastAPI, ``app.mount``, uvicorn.

Run as ``python -m bench.host_app CONFIG HOST PORT [--freeze]``. uvicorn is started with what
``bedrock-mw serve`` gives it (uvloop and httptools when installed, one worker, no access log), so the
difference the bench measures between this process and ``serve`` is the host app: FastAPI's router
and the mount. Nothing else is tuned: no ``gc.freeze`` (``serve`` does it; a host app decides for
itself), unless ``--freeze`` asks for it, as docs/deploy.md advises a host to do after start-up.
"""

from __future__ import annotations

import gc
import sys

import uvicorn
from fastapi import FastAPI

import bedrock_mw
from bench.names import HOST_PREFIX


def build(config: str) -> FastAPI:
    """A FastAPI app with one route of its own and the gateway mounted under ``HOST_PREFIX``."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.mount(HOST_PREFIX, bedrock_mw.create_gateway(config))
    return app


def main(argv: list[str]) -> int:
    config, host, port = argv[1], argv[2], int(argv[3])
    app = build(config)
    if "--freeze" in argv[4:]:
        # What the host's own start-up would end with: everything alive now lives as long as the
        # process, so the collector need not walk it again (serve does the same).
        gc.collect()
        gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

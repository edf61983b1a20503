"""The example host: a FastAPI app with its own pages and the gateway mounted at ``/llm``.

    app = create_app(default_provider=emulator_provider(emu.endpoint_url))
    uvicorn.run(app)

Virtual keys and providers live in SQL tables (see :mod:`example_app.stores`); each gateway
request is written to the ``usage`` table, shown at ``/usage`` and ``/api/usage``.
"""

from __future__ import annotations

import contextlib
import html
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse

from bedrock_mw import CachingCredentialStore, create_gateway, gateway_lifespan
from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY

from .stores import Database, DemoSeed, SqlAliasStore, SqlCredentialStore, SqlResponseStore, UsageRecorder

__all__ = [
    "AWS_CREDENTIAL_ENV_VARS",
    "aws_credentials_available",
    "bedrock_provider",
    "create_app",
    "emulator_provider",
]

GATEWAY_PREFIX = "/llm"
AWS_CREDENTIAL_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def emulator_provider(endpoint_url: str, *, region: str = "us-east-1") -> dict[str, Any]:
    """A provider pointing at a Bedrock emulator, signed with its built-in test key pair."""
    return {
        "id": "emulator",
        "auth": {
            "mode": "access_keys",
            "access_key_id": EMULATOR_ACCESS_KEY_ID,
            "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
        },
        "region": region,
        "endpoint_url": endpoint_url,
    }


def bedrock_provider(region: str | None = None) -> dict[str, Any]:
    """A provider for real Bedrock through botocore's default credential chain."""
    return {
        "id": "bedrock",
        "auth": {"mode": "default_chain"},
        "region": region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
    }


def _botocore_chain_has_credentials() -> bool:
    import botocore.session

    session = botocore.session.get_session()
    # Keep an absent instance-metadata service from stalling start-up.
    session.set_config_variable("metadata_service_timeout", 1)
    session.set_config_variable("metadata_service_num_attempts", 1)
    try:
        return session.get_credentials() is not None
    except Exception:
        return False


async def aws_credentials_available(
    environ: Mapping[str, str] | None = None, *, timeout_s: float = 5.0
) -> bool:
    """True when AWS credentials are configured: the usual env vars, else botocore's chain (off-thread)."""
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in AWS_CREDENTIAL_ENV_VARS):
        return True
    with anyio.move_on_after(timeout_s):
        return await anyio.to_thread.run_sync(_botocore_chain_has_credentials, abandon_on_cancel=True)
    return False


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>bedrock-mw example</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
pre{{background:#f4f4f4;padding:1rem;overflow-x:auto}}</style></head>
<body><h1>bedrock-mw example host</h1>
<p>This FastAPI app serves its own routes and mounts an Anthropic- and OpenAI-compatible gateway onto
AWS Bedrock at <code>{prefix}</code>. Upstream: <b>{upstream}</b>.</p>
<ul><li><a href="/api/hello">/api/hello</a> — a host route</li>
<li><a href="/usage">/usage</a> — recent gateway usage (<a href="/api/usage">JSON</a>)</li>
<li><a href="{prefix}/livez">{prefix}/livez</a>, <a href="{prefix}/readyz">{prefix}/readyz</a></li></ul>
<pre>curl -s {base}{prefix}/v1/messages -H 'x-api-key: vk-demo' -H 'content-type: application/json' \\
  -d '{{"model": "claude-haiku-4-5", "max_tokens": 100,
       "messages": [{{"role": "user", "content": "Hello"}}]}}'</pre>
</body></html>"""

_USAGE_COLUMNS = (
    "id",
    "created_at",
    "key_id",
    "endpoint",
    "model",
    "model_id",
    "provider_id",
    "region",
    "status",
    "stream",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "attempts",
    "error_type",
)


def _usage_page(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _USAGE_COLUMNS)
    body = (
        "".join(
            "<tr>"
            + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>" for c in _USAGE_COLUMNS)
            + "</tr>"
            for r in rows
        )
        or f'<tr><td colspan="{len(_USAGE_COLUMNS)}">no requests yet</td></tr>'
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Gateway usage</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.25rem .5rem;font-size:.9rem}</style></head>"
        f'<body><h1>Recent gateway usage</h1><p><a href="/">home</a></p><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></body></html>"
    )


def create_app(
    *,
    default_provider: Mapping[str, Any],
    db_url: str | None = None,
    demo_key: str = "vk-demo",
    key_cache_ttl_s: float = 5.0,
    public_base_url: str = "http://127.0.0.1:8000",
) -> FastAPI:
    """Build the host app; the database is created and seeded with ``default_provider`` on first use.

    ``db_url`` is any SQLAlchemy async URL (default: ``$EXAMPLE_DB_URL`` or SQLite ``example_app.db``).
    """
    db = Database(db_url, seed=DemoSeed(default_provider, demo_key=demo_key))
    credentials = SqlCredentialStore(db)
    gateway = create_gateway(
        # The config names the providers the readiness probe checks; keys and providers are
        # looked up in the database (a short cache keeps the key lookup off the hot path).
        {"providers": [dict(default_provider)], "virtual_keys": []},
        credential_store=CachingCredentialStore(credentials, key_cache_ttl_s),
        alias_store=SqlAliasStore(db),
        usage_hook=UsageRecorder(db),
        response_store=SqlResponseStore(db),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.ready()
        try:
            # app.mount() does not run a sub-app's lifespan: this closes the gateway's clients.
            async with gateway_lifespan(gateway):
                yield
        finally:
            await db.dispose()

    app = FastAPI(title="bedrock-mw example host", lifespan=lifespan)
    app.state.db = db
    app.state.gateway = gateway
    upstream = (
        f"the Bedrock emulator at {default_provider.get('endpoint_url')}"
        if default_provider.get("endpoint_url")
        else f"AWS Bedrock in {default_provider.get('region')}"
    )

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return _PAGE.format(prefix=GATEWAY_PREFIX, upstream=html.escape(upstream), base=public_base_url)

    @app.get("/api/hello")
    async def hello() -> dict[str, str]:
        return {"message": "hello from the host app", "gateway": GATEWAY_PREFIX}

    @app.get("/api/usage")
    async def usage_json(limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        rows = await db.recent_usage(limit)
        return {"data": [row.to_json() for row in rows]}

    @app.get("/usage", response_class=HTMLResponse)
    async def usage_html(limit: int = Query(50, ge=1, le=1000)) -> str:
        rows = await db.recent_usage(limit)
        return _usage_page([row.to_json() for row in rows])

    app.mount(GATEWAY_PREFIX, gateway)
    return app

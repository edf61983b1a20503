"""ASGI entry point: Django, with the bedrock-mw gateway served beside it under ``/llm``.

application = GatewayMiddleware(
    get_asgi_application(),
    gateway=create_gateway(config, credential_store=DjangoCredentialStore()),
    prefix="/llm",
)
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_app.django_site.settings")
django_application = get_asgi_application()  # sets Django up: import models only after this

from django.conf import settings  # noqa: E402

from bedrock_mw import GatewayConfig, GatewayMiddleware, create_gateway  # noqa: E402

from .gatewaykeys.stores import DjangoAliasStore, DjangoCredentialStore  # noqa: E402


def default_gateway_config() -> dict[str, Any] | str:
    """``settings.BEDROCK_MW_CONFIG`` if set, else one provider from the environment."""
    if settings.BEDROCK_MW_CONFIG:
        return str(settings.BEDROCK_MW_CONFIG)
    endpoint = os.environ.get("BEDROCK_ENDPOINT_URL")
    if endpoint:
        from bedrock_mw.testing import EMULATOR_ACCESS_KEY_ID, EMULATOR_SECRET_ACCESS_KEY

        provider: dict[str, Any] = {
            "id": "emulator",
            "auth": {
                "mode": "access_keys",
                "access_key_id": EMULATOR_ACCESS_KEY_ID,
                "secret_access_key": EMULATOR_SECRET_ACCESS_KEY,
            },
            "region": os.environ.get("AWS_REGION", "us-east-1"),
            "endpoint_url": endpoint,
        }
    else:
        provider = {
            "id": "bedrock",
            "auth": {"mode": "default_chain"},
            "region": os.environ.get("AWS_REGION", "us-east-1"),
        }
    return {"providers": [provider], "virtual_keys": []}


def build_application(
    config: GatewayConfig | dict[str, Any] | str | None = None, **gateway_options: Any
) -> Any:
    """Django plus the gateway; ``config`` names the providers the readiness probe checks."""
    gateway = create_gateway(
        config if config is not None else default_gateway_config(),
        credential_store=DjangoCredentialStore(),
        alias_store=DjangoAliasStore(),
        **gateway_options,
    )
    return GatewayMiddleware(django_application, gateway=gateway, prefix=settings.BEDROCK_MW_PREFIX)


application = build_application()

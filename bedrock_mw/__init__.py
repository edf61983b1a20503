"""bedrock-mw: an ASGI plugin giving any web app an Anthropic- and OpenAI-compatible gateway onto Bedrock.

Public API::

    app.mount("/llm", bedrock_mw.create_gateway("gateway.json"))
    app = bedrock_mw.GatewayMiddleware(app, gateway=bedrock_mw.create_gateway(cfg), prefix="/llm")

Names are imported on first use, so ``bedrock_mw.testing`` (and its pytest plugin) can be loaded
without building the whole gateway.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_gateway
    from .config import ConfigError, GatewayConfig, ProviderConfig, VirtualKeyConfig, load_config
    from .errors import ErrorKind, GatewayError
    from .lifespan import gateway_lifespan
    from .middleware import GatewayMiddleware
    from .stores import (
        AliasStore,
        CachingAliasStore,
        CachingCredentialStore,
        CredentialStore,
        StaticAliasStore,
        StaticCredentialStore,
    )
    from .translate.types import TokenUsage
    from .usage import KeyResolver, UsageHook, UsageRecord

__version__ = "0.1.0"

_PUBLIC = {
    "create_gateway": ".app",
    "ConfigError": ".config",
    "GatewayConfig": ".config",
    "ProviderConfig": ".config",
    "VirtualKeyConfig": ".config",
    "load_config": ".config",
    "ErrorKind": ".errors",
    "GatewayError": ".errors",
    "KeyResolver": ".usage",
    "UsageHook": ".usage",
    "UsageRecord": ".usage",
    "gateway_lifespan": ".lifespan",
    "GatewayMiddleware": ".middleware",
    "AliasStore": ".stores",
    "CachingAliasStore": ".stores",
    "CachingCredentialStore": ".stores",
    "CredentialStore": ".stores",
    "StaticAliasStore": ".stores",
    "StaticCredentialStore": ".stores",
    "TokenUsage": ".translate.types",
}

__all__ = [
    "AliasStore",
    "CachingAliasStore",
    "CachingCredentialStore",
    "ConfigError",
    "CredentialStore",
    "ErrorKind",
    "GatewayConfig",
    "GatewayError",
    "GatewayMiddleware",
    "KeyResolver",
    "ProviderConfig",
    "StaticAliasStore",
    "StaticCredentialStore",
    "TokenUsage",
    "UsageHook",
    "UsageRecord",
    "VirtualKeyConfig",
    "__version__",
    "create_gateway",
    "gateway_lifespan",
    "load_config",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'bedrock_mw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

"""bedrock-mw: an ASGI plugin that gives any web app an Anthropic- and OpenAI-compatible gateway onto AWS Bedrock.

Public API::

    app.mount("/llm", bedrock_mw.create_gateway("gateway.json"))
    app = bedrock_mw.GatewayMiddleware(app, gateway=bedrock_mw.create_gateway(cfg), prefix="/llm")
"""

from .app import create_gateway
from .config import ConfigError, GatewayConfig, ProviderConfig, VirtualKeyConfig, load_config
from .errors import ErrorKind, GatewayError
from .gateway import KeyResolver, UsageHook, UsageRecord
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

__version__ = "0.1.0"

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

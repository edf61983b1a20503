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

# The one export list: public name -> the module that defines it (imported on first use).
_PUBLIC = {
    "create_gateway": ".app",
    "budget_status": ".app",
    "AliasEntry": ".config",
    "ConfigError": ".config",
    "GatewayConfig": ".config",
    "GuardrailConfig": ".config",
    "ProviderConfig": ".config",
    "VirtualKeyConfig": ".config",
    "load_config": ".config",
    "ClientPool": ".dispatch",
    "Dispatcher": ".dispatch",
    "ErrorKind": ".errors",
    "GatewayError": ".errors",
    "gateway_lifespan": ".lifespan",
    "BudgetHold": ".limits",
    "BudgetLedger": ".limits",
    "BudgetScope": ".limits",
    "BudgetStatus": ".limits",
    "Lease": ".limits",
    "Limiter": ".limits",
    "GatewayMiddleware": ".middleware",
    "MemoryResponseStore": ".response_store",
    "RedisResponseStore": ".response_store",
    "ResponseStore": ".response_store",
    "StoredResponse": ".response_store",
    "AliasStore": ".stores",
    "AliasStoreSource": ".stores",
    "CachingAliasStore": ".stores",
    "CachingCredentialStore": ".stores",
    "CredentialStore": ".stores",
    "CredentialStoreSource": ".stores",
    "StaticAliasStore": ".stores",
    "StaticCredentialStore": ".stores",
    "TokenUsage": ".translate.types",
    "KeyResolver": ".usage",
    "UsageHook": ".usage",
    "UsageRecord": ".usage",
}

__all__ = ["__version__", *_PUBLIC]

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names for type checkers (tests/unit/test_public_api.py keeps them equal)
    from .app import budget_status as budget_status
    from .app import create_gateway as create_gateway
    from .config import AliasEntry as AliasEntry
    from .config import ConfigError as ConfigError
    from .config import GatewayConfig as GatewayConfig
    from .config import GuardrailConfig as GuardrailConfig
    from .config import ProviderConfig as ProviderConfig
    from .config import VirtualKeyConfig as VirtualKeyConfig
    from .config import load_config as load_config
    from .dispatch import ClientPool as ClientPool
    from .dispatch import Dispatcher as Dispatcher
    from .errors import ErrorKind as ErrorKind
    from .errors import GatewayError as GatewayError
    from .lifespan import gateway_lifespan as gateway_lifespan
    from .limits import BudgetHold as BudgetHold
    from .limits import BudgetLedger as BudgetLedger
    from .limits import BudgetScope as BudgetScope
    from .limits import BudgetStatus as BudgetStatus
    from .limits import Lease as Lease
    from .limits import Limiter as Limiter
    from .middleware import GatewayMiddleware as GatewayMiddleware
    from .response_store import MemoryResponseStore as MemoryResponseStore
    from .response_store import RedisResponseStore as RedisResponseStore
    from .response_store import ResponseStore as ResponseStore
    from .response_store import StoredResponse as StoredResponse
    from .stores import AliasStore as AliasStore
    from .stores import AliasStoreSource as AliasStoreSource
    from .stores import CachingAliasStore as CachingAliasStore
    from .stores import CachingCredentialStore as CachingCredentialStore
    from .stores import CredentialStore as CredentialStore
    from .stores import CredentialStoreSource as CredentialStoreSource
    from .stores import StaticAliasStore as StaticAliasStore
    from .stores import StaticCredentialStore as StaticCredentialStore
    from .translate.types import TokenUsage as TokenUsage
    from .usage import KeyResolver as KeyResolver
    from .usage import UsageHook as UsageHook
    from .usage import UsageRecord as UsageRecord


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'bedrock_mw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

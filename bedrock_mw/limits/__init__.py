"""Per-virtual-key limits: the :class:`Limiter` protocol, an in-process and a Redis implementation.

A request takes a :class:`Lease` before it is dispatched and releases it when it is recorded.
``docs/limits.md`` has the semantics.
"""

from __future__ import annotations

from ..config import ConfigError, LimitsConfig
from .base import NOOP_LEASE, WINDOW_S, Lease, Limiter, LimitName, has_limits, rate_limited
from .budgets import (
    BudgetHold,
    BudgetLedger,
    BudgetScope,
    BudgetStatus,
    InProcessBudgets,
    scopes_for,
)
from .memory import InProcessLimiter

__all__ = [
    "NOOP_LEASE",
    "WINDOW_S",
    "BudgetHold",
    "BudgetLedger",
    "BudgetScope",
    "BudgetStatus",
    "InProcessBudgets",
    "InProcessLimiter",
    "Lease",
    "LimitName",
    "Limiter",
    "create_budgets",
    "create_limiter",
    "has_limits",
    "rate_limited",
    "scopes_for",
]


def create_limiter(config: LimitsConfig) -> Limiter:
    """A :class:`RedisLimiter` when ``redis_url`` is set (shared by every worker), else in-process."""
    if config.redis_url is None:
        return InProcessLimiter()
    try:
        from .redis_limiter import RedisLimiter
    except ImportError:
        raise ConfigError(
            "limits.redis_url is set but the redis client is not installed: pip install 'bedrock-mw[redis]'"
        ) from None
    return RedisLimiter(
        config.redis_url.get_secret_value(), config.redis_prefix, lease_ttl_s=config.redis_lease_ttl_s
    )


def create_budgets(config: LimitsConfig) -> BudgetLedger:
    """A :class:`RedisBudgets` when ``redis_url`` is set (shared by every worker), else in-process."""
    if config.redis_url is None:
        return InProcessBudgets()
    try:
        from .redis_budgets import RedisBudgets
    except ImportError:
        raise ConfigError(
            "limits.redis_url is set but the redis client is not installed: pip install 'bedrock-mw[redis]'"
        ) from None
    return RedisBudgets(config.redis_url.get_secret_value(), config.redis_prefix)

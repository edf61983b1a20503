"""What a request cost: a dated price table shipped with the package, extended by the config's ``prices``.

Prices are USD per million tokens, keyed by base model id (inference profiles and ARNs are priced
through their base model). Input, output, prompt-cache writes and prompt-cache reads are priced
separately, because Bedrock bills them separately. From the Claude 4.5 generation on, AWS prices
geographic profiles (``us.``, ``eu.``, ...) and in-Region calls about 10% above global profiles:
``regional_premium`` says how much, and a ``global.`` model id pays the listed price. A model with no
known price costs ``None`` (and is named in one warning), never a guess.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

from .config import PriceConfig
from .translate.types import TokenUsage

__all__ = ["PRICES_FILE", "PriceTable", "load_shipped_prices"]

log = logging.getLogger("bedrock_mw")
PRICES_FILE: Final = "data/prices.json"
_PER: Final = 1_000_000


def load_shipped_prices() -> tuple[str, dict[str, PriceConfig]]:
    """The date and the prices of the table shipped with the package."""
    raw: dict[str, Any] = json.loads(resources.files("bedrock_mw").joinpath(PRICES_FILE).read_text("utf-8"))
    return str(raw["date"]), {model: PriceConfig.model_validate(p) for model, p in raw["models"].items()}


def _is_global(model_id: str) -> bool:
    return model_id.startswith("global.") or ":inference-profile/global." in model_id


class PriceTable:
    """The shipped prices with the config's on top (a configured model replaces the shipped entry)."""

    __slots__ = ("_warned", "date", "prices")

    def __init__(self, overrides: Mapping[str, PriceConfig] | None = None) -> None:
        self.date, shipped = load_shipped_prices()
        self.prices: dict[str, PriceConfig] = {**shipped, **(overrides or {})}
        self._warned: set[str] = set()

    def price_of(self, base_model_id: str) -> PriceConfig | None:
        """The price of a base model id, if one is known."""
        return self.prices.get(base_model_id)

    def cost(self, base_model_id: str, served_model_id: str, usage: TokenUsage) -> float | None:
        """USD for ``usage`` on this model (``served_model_id`` says global or regional), or ``None``."""
        price = self.prices.get(base_model_id)
        if price is None:
            self._warn_unknown(base_model_id, "it has no price")
            return None
        total = usage.input_tokens * price.input + usage.output_tokens * price.output
        for tokens, rate, what in (
            (usage.cache_write_input_tokens, price.cache_write, "cache_write"),
            (usage.cache_read_input_tokens, price.cache_read, "cache_read"),
        ):
            if tokens:
                if rate is None:
                    self._warn_unknown(base_model_id, f"its price has no {what} rate")
                    return None
                total += tokens * rate
        return round(total * self._factor(price, served_model_id) / _PER, 10)

    def max_cost(
        self, base_model_id: str, served_model_id: str, input_tokens: int, output_tokens: int
    ) -> float | None:
        """The most a request can cost: every input token at the dearer of input and cache-write rates."""
        price = self.prices.get(base_model_id)
        if price is None:
            return None
        per_input = max(price.input, price.cache_write or 0.0)
        total = input_tokens * per_input + output_tokens * price.output
        return round(total * self._factor(price, served_model_id) / _PER, 10)

    @staticmethod
    def _factor(price: PriceConfig, served_model_id: str) -> float:
        return 1.0 if _is_global(served_model_id) else 1.0 + price.regional_premium

    def _warn_unknown(self, model: str, why: str) -> None:
        if model not in self._warned:
            self._warned.add(model)
            log.warning(
                "cost of %s is unknown (%s in the %s price table or the config's prices); "
                "usage records carry cost_usd=null for it",
                model,
                why,
                self.date,
            )

"""What an LLM call cost, in USD: the user's own prices, else the genai-prices table.

genai-prices (pydantic's price table, kept up to date with the providers' prices) decides how
each kind of token is priced: cached input, cache writes, reasoning output, tiers. Asking it
costs about 100 us a call, too much for every LLM call, so for a model whose prices have no
tiers the per-token rates are read from it once (by pricing one million tokens of each kind)
and a call's cost is then four multiplications. Tiered models are priced by genai-prices on
every call. The table (a large data module) is imported on first use, in a background thread
started by the first LLM request, so the import overlaps that request's wait for the server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Optional

__all__ = ["Cost", "PriceTable", "warm"]

logger = logging.getLogger("sessionkit")

Cost = tuple[float, float, float]
"""(input, output, total) in USD."""

_MILLION = 1_000_000

# sessionkit's provider names (gen_ai.provider.name) as genai-prices' provider ids.
_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "google": "google",
    "aws.bedrock": "aws",
    "mistral_ai": "mistral",
    "mistral": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
    "together": "together",
    "fireworks": "fireworks",
}

_MISSING = object()


class _Rates:
    """Per-token USD rates of a model without tiers: (input, cache_read, cache_write, output)."""

    __slots__ = ("input", "cache_read", "cache_write", "output")

    def __init__(self, input: float, cache_read: float, cache_write: float, output: float) -> None:
        self.input = input
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.output = output

    def cost(self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> Cost:
        # input_tokens counts every input token; the cached and cache-written ones are priced at
        # their own rate instead of the plain input rate.
        plain = max(input_tokens - cache_read - cache_write, 0)
        cost_in = plain * self.input + cache_read * self.cache_read + cache_write * self.cache_write
        cost_out = output_tokens * self.output
        return cost_in, cost_out, cost_in + cost_out


class _Tiered:
    """A model genai-prices prices by tiers: asked on every call."""

    __slots__ = ("model_price",)

    def __init__(self, model_price: Any) -> None:
        self.model_price = model_price

    def cost(self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> Cost:
        from genai_prices import Usage

        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read or None,
            cache_write_tokens=cache_write or None,
        )
        price = self.model_price.calc_price(usage)
        return float(price["input_price"]), float(price["output_price"]), float(price["total_price"])


# (model, provider id) -> _Rates | _Tiered | None (unknown), for the process: the table is the
# same for every client.
_found: dict[tuple[str, Optional[str]], Any] = {}
_import_lock = threading.Lock()
_warming: list[threading.Thread] = []


def warm() -> None:
    """Start importing the price table in the background (once per process)."""
    if _warming:
        return
    with _import_lock:
        if _warming:
            return
        thread = threading.Thread(target=_load_table, name="sessionkit-prices", daemon=True)
        _warming.append(thread)
        thread.start()


def _load_table() -> None:
    try:
        from genai_prices import data_snapshot

        data_snapshot.get_snapshot()
    except Exception:
        logger.debug("sessionkit: could not load the genai-prices table", exc_info=True)


def _look_up(model: str, provider: Optional[str]) -> Any:
    """Rates (or a tiered price) for ``model`` from genai-prices; None when it does not know it."""
    try:
        from genai_prices import Usage, calc_price
        from genai_prices.types import TieredPrices
    except Exception:
        logger.warning("sessionkit: genai-prices is not importable; LLM calls get no cost")
        return None

    def price(**tokens: int) -> Any:
        return calc_price(Usage(**tokens), model, provider_id=provider)

    try:
        base = price(input_tokens=_MILLION, output_tokens=_MILLION)
    except LookupError:
        return None
    model_price = base.model_price
    if any(isinstance(value, TieredPrices) for value in vars(model_price).values()):
        return _Tiered(model_price)
    only_in = float(price(input_tokens=_MILLION).total_price) / _MILLION
    read = float(price(input_tokens=_MILLION, cache_read_tokens=_MILLION).total_price) / _MILLION
    write = float(price(input_tokens=_MILLION, cache_write_tokens=_MILLION).total_price) / _MILLION
    output = float(base.total_price) / _MILLION - only_in
    return _Rates(only_in, read, write, output)


_windows: dict[tuple[str, Optional[str]], Optional[int]] = {}


def context_window(model: str, provider: Optional[str]) -> Optional[int]:
    """The model's context window in tokens from genai-prices, or None (unknown). Never raises."""
    key = (model, _PROVIDERS.get(provider or ""))
    if key in _windows:
        return _windows[key]
    found: Optional[int] = None
    try:
        from genai_prices import Usage, calc_price

        window = calc_price(Usage(input_tokens=1), model, provider_id=key[1]).model.context_window
        found = int(window) if window else None
    except Exception:
        found = None
    if len(_windows) < 1024:
        _windows[key] = found
    return found


class PriceTable:
    """A client's prices: its ``prices`` setting first, then genai-prices."""

    def __init__(self, custom: Mapping[str, Mapping[str, float]]) -> None:
        self._custom: dict[str, _Rates] = {
            model: _Rates(
                p["input"] / _MILLION,
                p.get("cache_read", p["input"]) / _MILLION,
                p.get("cache_write", p["input"]) / _MILLION,
                p["output"] / _MILLION,
            )
            for model, p in custom.items()
        }

    def cost(
        self,
        model: Optional[str],
        provider: Optional[str],
        input_tokens: Optional[int],
        output_tokens: Optional[int],
        cache_read: Optional[int] = None,
        cache_write: Optional[int] = None,
    ) -> Optional[Cost]:
        """The call's cost, or None: no usage, or a model nobody has prices for. Never raises."""
        if not model or model == "unknown" or (input_tokens is None and output_tokens is None):
            return None
        try:
            rates = self._custom.get(model)
            if rates is None:
                key = (model, _PROVIDERS.get(provider or ""))
                rates = _found.get(key, _MISSING)
                if rates is _MISSING:
                    rates = _found[key] = _look_up(*key)
                if rates is None:
                    return None
            return rates.cost(input_tokens or 0, output_tokens or 0, cache_read or 0, cache_write or 0)
        except Exception:
            logger.debug("sessionkit: could not price a call to %s", model, exc_info=True)
            return None

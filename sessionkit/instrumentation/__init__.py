"""LLM calls at the HTTP layer, for every SDK built on httpx or httpx2.

``LLMHttpInstrumentor`` follows the OpenTelemetry instrumentor conventions (idempotent
``instrument()`` / ``uninstrument()``, an ``opentelemetry_instrumentor`` entry point); a
sessionkit ``Client`` with ``instrument_llm_calls=True`` (the default) turns it on for itself.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .patch import patch_all, registry, unpatch_all

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["LLMHttpInstrumentor", "instrument_client", "uninstrument_client"]


def __getattr__(name: str) -> Any:
    # The instrumentor class pulls in opentelemetry-instrumentation's machinery; load it only
    # when asked for (the entry point, or a user), not on every import of sessionkit.
    if name == "LLMHttpInstrumentor":
        from .instrumentor import LLMHttpInstrumentor

        return LLMHttpInstrumentor
    raise AttributeError(name)


def instrument_client(client: Client) -> None:
    """Record ``client``'s LLM calls (patching httpx / httpx2 once per process)."""
    registry.add(client)
    patch_all()


def uninstrument_client(client: Client) -> None:
    """Stop recording for ``client``; the last client to stop restores the original methods."""
    if registry.remove(client):
        instrumentor = sys.modules.get(__name__ + ".instrumentor")  # loaded only if someone used it
        if instrumentor is None or not instrumentor.instrumented_by_entry_point():
            unpatch_all()

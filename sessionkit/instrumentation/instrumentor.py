"""``LLMHttpInstrumentor``: the OpenTelemetry-style instrumentor (``instrument()`` / ``uninstrument()``,
the ``opentelemetry_instrumentor`` entry point). Imported only when asked for."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from .patch import patch_all, registry, unpatch_all


class LLMHttpInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Patches ``send`` of httpx and httpx2 clients so LLM calls become spans.

    Spans go to the sessionkit client of the current session, else the default client. Used
    through an entry point without any sessionkit client, it creates one on the given (or
    global) tracer provider.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # httpx and httpx2 are each optional; whichever is installed is patched

    def _instrument(self, **kwargs: Any) -> None:
        if registry.pick() is None:
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider

            from ..client import Client

            provider = kwargs.get("tracer_provider") or trace.get_tracer_provider()
            if isinstance(provider, TracerProvider):
                self._own_client = Client(tracer_provider=provider, instrument_llm_calls=False)
                registry.add(self._own_client)
        patch_all()

    def _uninstrument(self, **kwargs: Any) -> None:
        own = getattr(self, "_own_client", None)
        if own is not None:
            registry.remove(own)
            self._own_client = None
        unpatch_all()


def instrumented_by_entry_point() -> bool:
    """Whether someone turned the instrumentor on (so the last client leaving must not unpatch)."""
    return bool(LLMHttpInstrumentor().is_instrumented_by_opentelemetry)

"""``LLMHttpInstrumentor``: sessionkit's LLM-call hook as an OpenTelemetry instrumentor.

It follows the OpenTelemetry instrumentor conventions (idempotent ``instrument()`` /
``uninstrument()``, the ``opentelemetry_instrumentor`` entry point). A sessionkit ``Client``
with ``instrument_llm_calls=True`` (the default) needs none of this: it turns the hook on for
itself. ``import sessionkit`` never imports this module.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Optional

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from ._client import Client
from ._wire import patch_all, registry, unpatch_all

__all__ = ["LLMHttpInstrumentor"]


class LLMHttpInstrumentor(BaseInstrumentor):
    """Patches ``send`` of httpx and httpx2 clients so LLM calls become spans.

    Spans go to the sessionkit client of the current session, else the default client. Used
    without any sessionkit client (through the entry point, say), it creates one on the given
    (or global) tracer provider; ``instrument(tracer_provider=..., **settings)`` passes other
    sessionkit settings (``llm_base_urls``, ``capture_content``, ...) to that client.
    """

    _own_client: Optional[Client] = None

    @property
    def client(self) -> Optional[Client]:
        """The client the instrumentor made for itself, if it made one."""
        return self._own_client

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # httpx and httpx2 are each optional; whichever is installed is patched

    def _instrument(self, **kwargs: Any) -> None:
        registry.held_by_instrumentor = True
        if registry.pick() is None:
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider

            settings = dict(kwargs)
            provider = settings.pop("tracer_provider", None) or trace.get_tracer_provider()
            if isinstance(provider, TracerProvider):
                settings.update(tracer_provider=provider, instrument_llm_calls=False)
                self._own_client = Client(**settings)
                registry.add(self._own_client)
        patch_all()

    def _uninstrument(self, **kwargs: Any) -> None:
        registry.held_by_instrumentor = False
        own = self._own_client
        if own is not None:
            registry.remove(own)
            self._own_client = None
        unpatch_all()

"""The global OpenTelemetry tracer provider: how other libraries' spans reach the session.

Libraries that trace through OpenTelemetry (anthropic, mcp, the opentelemetry-instrumentation-*
packages, a user's own ``trace.get_tracer(...)``) take their tracers from the global provider.
With ``set_global="auto"`` (the default) or ``True``, sessionkit makes sure those spans are
stamped with their session:

- when no global provider is set, it sets one, once per process: ``GlobalProvider``, whose
  tracers hand every span to the provider of the client a call belongs to (the current
  session's client, else the default client, else the newest; see ``ClientSet``). Re-running
  ``init`` only changes where they go: the global is never set twice (no "Overriding of current
  TracerProvider is not allowed" warning), and every span goes to one client (no duplicates);
- when the program set its own SDK provider first, sessionkit adds a processor to it that
  stamps and counts the spans of sessions (``AttachedProcessor``) and leaves their export to
  that provider; it never replaces it.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Optional, Protocol

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.trace import NoOpTracer, Tracer

from ._client_set import ClientSet
from ._errors import internal_errors

__all__ = ["AttachedProcessor", "GlobalProvider", "Stamping", "Target", "registry", "serve", "stop_serving"]

logger = logging.getLogger("sessionkit")


class Target(Protocol):
    """What the global provider needs of a client. Implemented by ``Client``."""

    @property
    def closed(self) -> bool: ...

    @property
    def recording(self) -> bool: ...

    @property
    def tracer_provider(self) -> Optional[Any]:
        """The client's SDK provider (None while tracing is off)."""
        ...


class Stamping(Protocol):
    """What an attached processor needs of a client's session processor. Implemented by ``SessionSpanProcessor``."""

    def apply_stamp(self, span: Span, parent_context: Any) -> None: ...

    def count(self, span: ReadableSpan) -> object:
        """Count an ended span into its session (what it returns is not used here)."""
        ...


registry: ClientSet[Target] = ClientSet()
_NOOP = NoOpTracer()


class GlobalTracer(Tracer):
    """A tracer of the global provider: each span goes to the tracer of the same name on the
    provider of the client the call belongs to (made once per provider, then kept)."""

    __slots__ = ("_args", "_cached")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self._args = args
        self._cached: tuple[Any, Tracer] = (None, _NOOP)

    def _target(self) -> Tracer:
        client = registry.pick()
        provider = client.tracer_provider if client is not None and client.recording else None
        if provider is None:
            return _NOOP
        cached = self._cached
        if cached[0] is provider:
            return cached[1]
        tracer: Tracer = provider.get_tracer(*self._args)
        self._cached = (provider, tracer)
        return tracer

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._target().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._target().start_as_current_span(*args, **kwargs)


class GlobalProvider(SDKTracerProvider):
    """The global provider sessionkit sets when the program set none (see the module's
    docstring). It is an SDK ``TracerProvider`` for libraries that look for one before building
    their own (litellm's OpenTelemetry callback, and others built the same way): they take their
    tracers from it, and those spans land in the session. It exports nothing itself: a span
    processor a library adds to it is added to the provider of each client it serves."""

    def __init__(self) -> None:
        super().__init__(shutdown_on_exit=False)
        self._added: list[SpanProcessor] = []
        self._given: weakref.WeakKeyDictionary[Any, set[int]] = weakref.WeakKeyDictionary()

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        with _lock:
            self._added.append(span_processor)
            clients = registry.clients()
        for client in clients:
            self.share_with(client)

    def share_with(self, client: Target) -> None:
        """Give ``client``'s provider the processors libraries added here (each once)."""
        provider = client.tracer_provider
        if provider is None or not self._added:
            return
        given = self._given.setdefault(provider, set())
        for added in list(self._added):
            if id(added) not in given:
                provider.add_span_processor(added)
                given.add(id(added))

    def shutdown(self) -> None:
        pass  # (the clients' providers shut down with their clients)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: Optional[str] = None,
        schema_url: Optional[str] = None,
        attributes: Optional[Any] = None,
    ) -> Tracer:
        return GlobalTracer((instrumenting_module_name, instrumenting_library_version, schema_url, attributes))


class AttachedProcessor(SpanProcessor):
    """Added to a provider the program set as global: stamps its spans with their session and
    counts them into it; their export stays the provider's own. Shutting that provider down
    does not shut the client down."""

    def __init__(self, processor: Stamping) -> None:
        self._processor = processor

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self._processor.apply_stamp(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self._processor.count(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_lock = threading.Lock()
_installed: Optional[GlobalProvider] = None
_attached: weakref.WeakKeyDictionary[Any, set[int]] = weakref.WeakKeyDictionary()


def serve(client: Target, processor: Stamping, mode: Any) -> str:
    """Let the global provider serve ``client`` (``mode``: ``"auto"`` or ``True``). Returns what
    was done: ``"installed"`` (sessionkit's global provider serves it), ``"attached"`` (the
    program's own global provider stamps for it) or ``"none"`` (a global provider sessionkit
    cannot add a processor to)."""
    global _installed
    with _lock:
        found = trace.get_tracer_provider()
        if _installed is None and isinstance(found, trace.ProxyTracerProvider):
            _installed = GlobalProvider()
            trace.set_tracer_provider(_installed)
            found = _installed
        installed = _installed if found is _installed else None
        if installed is not None:
            registry.add(client)
        elif isinstance(found, SDKTracerProvider):
            done = _attached.setdefault(found, set())
            if id(processor) not in done:
                found.add_span_processor(AttachedProcessor(processor))
                done.add(id(processor))
            return "attached"
    if installed is not None:
        with internal_errors("giving the global provider's processors to a client"):
            installed.share_with(client)
        return "installed"
    if mode is True:
        logger.warning(
            "sessionkit: set_global=True, but the global tracer provider is a %s, which takes no "
            "span processors: other libraries' spans will not carry the session",
            type(found).__name__,
        )
    return "none"


def stop_serving(client: Target) -> None:
    registry.remove(client)

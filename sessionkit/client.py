"""Client: owns a TracerProvider, its export pipeline and its sessions.

The default-client slot at the bottom is the only module-level state in sessionkit. It is
guarded by a lock and survives ``importlib.reload``, so re-running ``init`` in a notebook
returns the same client instead of stacking a second pipeline on the first.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Meter, NoOpMeter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import NoOpTracer, Span, Tracer
from typing_extensions import Unpack

from . import semconv
from ._errors import SessionStateError
from .channels import ChannelError, ChannelRegistry
from .config import Config, Options
from .context import current, install_propagation, pid
from .decorators import SpanDecorator, session_decorator
from .export import build_exporter, build_metric_reader
from .export import resolve as resolve_exporter
from .history import HistoryTracker, history_loader
from .instrumentation import instrument_client, uninstrument_client
from .instrumentation.metrics import record_llm_metrics
from .export.pipeline import ExportPipeline, run_bounded
from ._spans import set_clean_attributes
from ._tally import Tally
from .processor import SESSION_ROOT_PARENT, SessionSpanProcessor
from .redact import Redactor
from .session import EndState, Session

if TYPE_CHECKING:
    from .models import ClientStats, OpenChannel

logger = logging.getLogger("sessionkit")

F = TypeVar("F", bound=Callable[..., Any])

_MARKER_ATTRIBUTES = {semconv.SPAN_TYPE: semconv.SPAN_TYPE_SESSION_START}

_VERSION = "0.1.0"

# Settings that need a new export pipeline when they change; the rest are read at use.
_PIPELINE_FIELDS = (
    "exporter", "endpoint", "headers", "protocol", "export_timeout", "file_dir",
    "max_queue_size", "max_export_batch_size", "export_interval",
)  # fmt: skip
_PROVIDER_FIELDS = (
    "service_name", "project_name", "resource_attributes", "enabled", "tracer_provider", "meter_provider",
    "export_metrics", "exporter", "endpoint", "headers", "protocol",
)  # fmt: skip


class Client:
    """An independent sessionkit instance: its own provider, exporter and sessions.

    Takes the same keyword arguments as :func:`sessionkit.init`. Two clients in one process
    never see each other's spans.
    """

    def __init__(self, **options: Unpack[Options]) -> None:
        self._config = Config.resolve(**options)
        self._lock = threading.RLock()
        self._processor = SessionSpanProcessor(self._fallback_session, self._derive_metrics)
        self._provider: Optional[TracerProvider] = None
        self._tracer: Tracer = NoOpTracer()
        self._ambient: list[Session] = []  # sessions started imperatively on the main thread
        self._active: dict[str, Session] = {}
        self._auto_session: Optional[Session] = None
        self._sessions_started = Tally()
        self._closed = False
        self._atexit_registered = False
        self._global_set = False
        self._meter_provider: Any = None
        self._meter: Optional[Meter] = None
        self._instruments: dict[str, Any] = {}
        self._metric_reader: Any = None
        self._meter_resource: Optional[Resource] = None
        self._redactor = Redactor(self._config.redact, self._config.redact_defaults)
        self._announcer = _Announcer(self)
        self._channels = ChannelRegistry(self)
        self._history = HistoryTracker(self)
        self._build_provider()
        self._processor.pipeline = self._build_pipeline()
        self.history_loader = history_loader(self._itself)
        """``@client.history_loader(source="redis")``: each call is a ``history.load`` span."""
        self.agent = SpanDecorator("agent", self._itself)
        """``@client.agent``: an ``invoke_agent {name}`` span per call."""
        self.tool = SpanDecorator("tool", self._itself)
        """``@client.tool``: an ``execute_tool {name}`` span per call."""
        self.task = SpanDecorator("task", self._itself)
        """``@client.task``: a workflow step span per call."""
        self.llm = SpanDecorator("llm", self._itself)
        """``@client.llm(model=...)``: a ``chat {model}`` span per call."""
        self.trace = SpanDecorator("trace", self._itself)
        """``@client.trace``: a plain span per call."""
        install_propagation()
        _live_clients.add(self)
        if self._config.handle_sigterm:
            _install_sigterm_handler()
        self._instrumented = False
        self._apply_instrumentation()
        self._register_atexit()
        if self._config.auto_start_session:
            self._start_auto_session()

    def _itself(self) -> Client:
        return self

    def redact(self, text: str) -> str:
        """Captured content as it will be recorded: the default patterns, then ``redact``."""
        return self._redactor(text)

    # -- configuration ---------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config

    @property
    def tracer(self) -> Tracer:
        """The tracer sessionkit's own spans come from (a no-op tracer when disabled)."""
        return self._tracer

    @property
    def tracer_provider(self) -> Optional[TracerProvider]:
        """The SDK provider spans go through; None when tracing is disabled."""
        return self._provider

    @property
    def exporter(self) -> Optional[SpanExporter]:
        """The exporter spans go to (None when tracing is off or an attached provider exports)."""
        pipeline = self._processor.pipeline
        return resolve_exporter(pipeline.exporter) if pipeline is not None else None

    def configure(self, **options: Unpack[Options]) -> Client:
        """Apply new settings in place, keeping open sessions. Unchanged settings cost nothing."""
        new = Config.resolve(**options)
        with self._lock:
            if self._closed:
                raise SessionStateError("sessionkit: this client was shut down; call sessionkit.init() for a new one")
            old = self._config
            if new.comparable() == old.comparable():
                return self
            changed = {f for f in Config.names() if _differs(getattr(new, f), getattr(old, f))}
            self._config = new
            self._redactor = Redactor(new.redact, new.redact_defaults)
            if changed & set(_PROVIDER_FIELDS):
                self._build_provider()
            if changed & set(_PIPELINE_FIELDS) or "enabled" in changed or "tracer_provider" in changed:
                self._swap_pipeline(self._build_pipeline())
            self._apply_instrumentation()
            if new.auto_start_session and (self._auto_session is None or not self._auto_session.is_active):
                self._start_auto_session()
            logger.info("sessionkit: reconfigured (%s)", ", ".join(sorted(changed)))
            return self

    def _build_provider(self) -> None:
        config = self._config
        if not config.tracing_enabled:
            self._provider = None
            self._tracer = NoOpTracer()
            self._build_meter(None)  # type: ignore[arg-type]
            return
        if config.tracer_provider is not None:
            provider: TracerProvider = config.tracer_provider
            if getattr(provider, "_sessionkit_processor", None) is not self._processor:
                provider.add_span_processor(self._processor)
                provider._sessionkit_processor = self._processor  # type: ignore[attr-defined]
        else:
            attributes: dict[str, Any] = dict(config.resource_attributes)
            attributes[semconv.SERVICE_NAME] = config.service_name
            attributes[semconv.OPENINFERENCE_PROJECT_NAME] = config.effective_project_name
            # An earlier provider (before re-init) keeps the same processor, so spans from
            # tracers that libraries cached from it still reach the current exporter.
            provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
            provider.add_span_processor(self._processor)
        self._provider = provider
        self._tracer = provider.get_tracer("sessionkit", _VERSION)
        self._build_meter(provider.resource)
        if config.set_global and not self._global_set:
            trace.set_tracer_provider(provider)
            self._global_set = True

    def _build_meter(self, resource: Optional[Resource]) -> None:
        """Forget the current meter; the next use of ``meter`` builds one for the new settings."""
        with self._lock:
            old = self._meter_provider
            self._meter, self._meter_provider, self._metric_reader = None, None, None
            self._instruments = {}
            self._meter_resource = resource
        if old is not None and old is not self._config.meter_provider:
            threading.Thread(target=old.shutdown, name="sessionkit-old-meter", daemon=True).start()

    @property
    def meter(self) -> Meter:
        """The meter sessionkit's metrics come from (channels open, history loads, LLM calls).
        Made on first use, so a program that records no metric never loads the metrics SDK."""
        meter = self._meter
        if meter is not None:
            return meter
        with self._lock:
            if self._meter is None:
                self._meter = self._new_meter()
            return self._meter

    def instruments(self, name: str, build: Callable[[Meter], Any]) -> Any:
        """The instrument(s) ``build(meter)`` makes, made once per meter and kept under ``name``
        (a new meter after re-init makes new ones)."""
        cache = self._instruments
        found = cache.get(name)
        if found is None:
            found = cache[name] = build(self.meter)
        return found

    def _derive_metrics(self, spans: Sequence[Any]) -> None:
        """Metrics computed from ended spans: the export pipeline calls it from its thread, the
        processor directly when an attached provider exports instead."""
        record_llm_metrics(self, spans)

    @property
    def metric_reader(self) -> Any:
        """With ``exporter="memory"``: an ``InMemoryMetricReader`` of the client's metrics, for tests."""
        self.meter  # noqa: B018 - builds it
        return self._metric_reader

    def _new_meter(self) -> Meter:
        config = self._config
        if config.meter_provider is not None:
            provider = config.meter_provider
        elif self._meter_resource is None:
            return NoOpMeter("sessionkit")  # tracing is off
        else:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader

            readers: list[Any] = []
            if config.exporter == "memory":
                self._metric_reader = InMemoryMetricReader()
                readers.append(self._metric_reader)
            elif config.export_metrics and config.exporter in ("otlp", "otlp-grpc"):
                readers.append(build_metric_reader(config))
            provider = MeterProvider(resource=self._meter_resource, metric_readers=readers, shutdown_on_exit=False)
        self._meter_provider = provider
        return provider.get_meter("sessionkit", _VERSION)

    def _build_pipeline(self) -> Optional[ExportPipeline]:
        config = self._config
        if not config.tracing_enabled or config.exporter is None:
            return None  # disabled, or attached to a provider that exports on its own
        exporter = build_exporter(config)
        return ExportPipeline(
            exporter,
            max_queue_size=config.max_queue_size,
            max_export_batch_size=config.max_export_batch_size,
            export_interval=config.export_interval,
            synchronous=config.exporter == "memory",
            observe=self._derive_metrics,
        )

    def _swap_pipeline(self, pipeline: Optional[ExportPipeline]) -> None:
        old = self._processor.pipeline
        self._processor.pipeline = pipeline
        if old is not None:
            # Drain the old exporter in the background: a dead old collector must not make
            # re-init slow. Its shutdown is bounded by shutdown_timeout.
            timeout = self._config.shutdown_timeout
            threading.Thread(
                target=old.shutdown, args=(timeout,), name="sessionkit-old-pipeline", daemon=True
            ).start()

    def _apply_instrumentation(self) -> None:
        want = self._config.instrument_llm_calls and self._config.tracing_enabled and not self._closed
        if want and not self._instrumented:
            try:
                instrument_client(self)
                self._instrumented = True
            except Exception:
                logger.exception("sessionkit: could not instrument LLM calls (continuing without)")
        elif not want and self._instrumented:
            self.uninstrument()

    def instrument(self) -> None:
        """Record LLM calls for this client again after :meth:`uninstrument`."""
        if not self._instrumented and self._config.tracing_enabled and not self._closed:
            instrument_client(self)
            self._instrumented = True

    def uninstrument(self) -> None:
        """Stop recording LLM calls for this client; the last client to stop restores the
        original httpx / httpx2 methods."""
        uninstrument_client(self)
        self._instrumented = False

    # -- sessions -------------------------------------------------------------------------------
    def start_session(
        self,
        name: str = "session",
        *,
        thread_id: Optional[str] = None,
        user_id: Optional[str] = None,
        tags: Union[None, str, Iterable[str]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Session:
        """Start a session and make it current here, until it ends.

        Started on the main thread, it also becomes the client's default session for code that
        runs outside any session context (later notebook cells, callbacks).
        """
        session = self._open(name, thread_id=thread_id, user_id=user_id, tags=tags, metadata=metadata)
        session._previous = current.get()
        session._previous_otel = otel_context.get_current()
        current.set(session)
        otel_context.attach(session._context())
        if threading.current_thread() is threading.main_thread():
            with self._lock:
                self._ambient.append(session)
        return session

    def session(
        self,
        name: str = "session",
        *,
        thread_id: Optional[str] = None,
        user_id: Optional[str] = None,
        tags: Union[None, str, Iterable[str]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> SessionScope:
        """A session for a ``with`` / ``async with`` block; it ends when the block exits
        (``fail`` if by exception, which propagates unchanged)."""
        return SessionScope(self, name, dict(thread_id=thread_id, user_id=user_id, tags=tags, metadata=metadata))

    def end_session(
        self,
        state: Union[EndState, str] = EndState.SUCCESS,
        reason: Optional[str] = None,
        *,
        session: Optional[Session] = None,
    ) -> Optional[Session]:
        """End ``session``, or the current one. With no session to end: a warning, or
        :class:`SessionStateError` when the client is strict."""
        target = session if session is not None else self.current_session()
        if target is None or not target.is_active:
            message = (
                "sessionkit: end_session() found no active session to end. Start one with "
                "client.start_session(), or pass session=..."
            )
            if self._config.strict:
                raise SessionStateError(message)
            logger.warning(message)
            return None
        target.end(state, reason)
        return target

    def current_session(self) -> Optional[Session]:
        """The session code running here belongs to: the context's, else the default one."""
        session = current.get()
        if session is not None and session._client is self and session.end_state is None:
            return session
        return self._fallback_session()

    def open_channels(self) -> list[OpenChannel]:
        """Channels open now across all sessions, oldest first: what a cleanup job should delete
        if they are not in use (channels past ``channel_ttl`` are marked leaked first)."""
        return self._channels.listing()

    def close_channel(self, platform: str, channel_id: Any, reason: Optional[str] = None) -> None:
        """Close an open channel of any session (after deleting it on the platform).
        :class:`ChannelError` if no such channel is open."""
        channel = self._channels.get(platform, str(channel_id))
        if channel is None:
            raise ChannelError(f"sessionkit: no open {platform} channel {str(channel_id)!r}; see client.open_channels()")
        channel.close(reason)

    def sessions(self) -> list[Session]:
        """The client's active sessions."""
        with self._lock:
            return list(self._active.values())

    def _fallback_session(self) -> Optional[Session]:
        session = current.get()
        if session is not None and session._client is self and session.end_state is None:
            return session
        for candidate in reversed(self._ambient):
            if candidate.end_state is None:
                return candidate
        auto = self._auto_session
        return auto if auto is not None and auto.end_state is None else None

    def _open(self, name: str, **fields: Any) -> Session:
        if self._closed:
            message = "sessionkit: this client was shut down; call sessionkit.init() for a new one"
            if self._config.strict:
                raise SessionStateError(message)
            logger.warning(message)
        session = Session(self, name, **fields)
        self._active[session.id] = session  # (one dict operation: atomic, no lock needed)
        self._sessions_started.add()
        if self._provider is not None:
            self._processor.register(session, session._trace_id)
            self._announcer.add(session)
        return session

    def _start_root(self, session: Session) -> Span:
        # An empty parent context: the session is always a new trace, even inside another span.
        root = self._tracer.start_span(session.name, context=SESSION_ROOT_PARENT)
        set_clean_attributes(root, session.root_attributes(), fresh=True)
        return root

    def _start_auto_session(self) -> None:
        session = self._open(self._config.auto_session_name)
        self._auto_session = session

    def _session_ended(self, session: Session) -> None:
        self._announcer.discard(session)
        self._active.pop(session.id, None)
        if self._ambient:  # sessions started imperatively: rare, and a list, so under the lock
            with self._lock:
                if session in self._ambient:
                    self._ambient.remove(session)
        if current.get() is session and session._previous_otel is not None:
            # Ending an imperatively started session where it was started: restore what was
            # current before it. (Context-manager sessions restore in _deactivate.)
            previous = session._previous
            current.set(previous if previous is not None and previous.is_active else None)
            if trace.get_current_span() is session._root:
                otel_context.attach(session._previous_otel)

    def _activate(self, session: Session) -> None:
        session._tokens.append((current.set(session), otel_context.attach(session._context())))

    def _deactivate(self, session: Session) -> None:
        if not session._tokens:
            return
        session_token, otel_token = session._tokens.pop()
        try:
            current.reset(session_token)
            otel_context.detach(otel_token)
        except ValueError:
            logger.debug("sessionkit: session %s exited in another context than it entered", session.id)

    def span_parent(self, context: Optional[otel_context.Context] = None) -> otel_context.Context:
        """The parent context for a new sessionkit span: ``context`` (default: the current one)
        when it holds a span, else the root of the session the code belongs to."""
        if context is None:
            context = otel_context.get_current()
        if trace.get_current_span(context).get_span_context().is_valid:
            return context
        session = self._fallback_session()
        if session is None:
            return context
        root = session._root_context
        return root if root is not None else session._context()

    # -- export control ---------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Export what is queued, waiting at most ``timeout`` seconds. True if all went out."""
        pipeline = self._processor.pipeline
        return True if pipeline is None else pipeline.flush(timeout)

    def shutdown(self, timeout: Optional[float] = None) -> bool:
        """End the sessions still open (as ``indeterminate``), export what is left within
        ``timeout`` seconds, and stop."""
        return self._shutdown(timeout, "the client shut down before the session ended")

    def _shutdown(self, timeout: Optional[float], reason: str) -> bool:
        timeout = self._config.shutdown_timeout if timeout is None else timeout
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        self._announcer.stop()
        this_process = pid()
        for session in self.sessions():
            if session._pid == this_process:  # a forked child leaves its parent's sessions alone
                session.end(EndState.INDETERMINATE, reason)
        if self._instrumented:
            self.uninstrument()
        pipeline = self._processor.pipeline
        ok = True if pipeline is None else pipeline.shutdown(timeout)
        meter_provider = self._meter_provider
        if meter_provider is not None and meter_provider is not self._config.meter_provider:
            run_bounded(meter_provider.shutdown, min(timeout, 1.0), "metrics shutdown")
        if pipeline is not None and (pipeline.dropped_spans or pipeline.spans_failed):
            logger.warning(
                "sessionkit: %d spans dropped and %d failed to export in this process",
                pipeline.dropped_spans,
                pipeline.spans_failed,
            )
        return ok

    def stats(self) -> ClientStats:
        """Every span's fate so far: started, ended, exported, failed, dropped, queued."""
        from .models import ClientStats

        processor = self._processor
        pipeline = processor.pipeline
        return ClientStats(
            spans_started=processor.spans_started,
            spans_ended=processor.spans_ended,
            spans_exported=pipeline.spans_exported if pipeline else 0,
            spans_failed_export=pipeline.spans_failed if pipeline else 0,
            dropped_spans=pipeline.dropped_spans if pipeline else 0,
            export_errors=pipeline.export_errors if pipeline else 0,
            spans_without_session=processor.spans_without_session,
            queue_size=pipeline.queue_size if pipeline else 0,
            spans_in_flight=pipeline.in_flight if pipeline else 0,
            sessions_started=self._sessions_started.value,
            sessions_active=len(self._active),
        )

    def _register_atexit(self) -> None:
        if not self._atexit_registered:
            atexit.register(self._at_exit)
            self._atexit_registered = True

    def _at_exit(self) -> None:
        try:
            self._shutdown(None, "the process exited before the session ended")
        except Exception:
            logger.exception("sessionkit: error during exit")

    def _repr_html_(self) -> str:
        from .notebook import client_html

        return client_html(self)

    def __repr__(self) -> str:
        exporter = self._config.exporter
        name = exporter if isinstance(exporter, str) else type(exporter).__name__
        return f"<sessionkit.Client service={self._config.service_name!r} exporter={name} sessions={len(self._active)}>"


class _Announcer:
    """Makes sessions visible in the collector while they run.

    A session's root span is exported when it ends. Every ``export_interval`` a background tick
    starts and ends a short ``session.start`` marker span in each session that is still running,
    so a long session (or one whose process crashes) shows up soon after it starts. A session
    that ends before the tick needs no marker: its root goes out in the same batch.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._pending: dict[str, Session] = {}  # by id; a session that ends is let go at once
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._pid = pid()

    def add(self, session: Session) -> None:
        with self._lock:
            self._pending[session.id] = session
            if self._thread is None or self._pid != pid():
                if self._pid != pid():  # a forked child: the parent's sessions were announced there
                    self._pending = {session.id: session}
                    self._pid = pid()
                self._thread = threading.Thread(target=self._run, name="sessionkit-announcer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        client = self._client
        while not client._closed:
            self._wake.wait(client.config.export_interval)
            self.announce()
            with self._lock:
                if not self._pending:  # nothing left to announce: no idle thread; add() starts one
                    self._thread = None
                    return

    def discard(self, session: Session) -> None:
        """``session`` ended: it needs no marker (its root is exported now)."""
        self._pending.pop(session.id, None)  # one dict operation, on whichever dict is current

    def announce(self) -> None:
        """Export a start marker for every session still running that has none yet."""
        with self._lock:
            pending, self._pending = self._pending, {}
        client = self._client
        for session in list(pending.values()):  # (a copy: discard() may still pop from it)
            if session.end_state is None and client._provider is not None:
                try:
                    marker = client._tracer.start_span(semconv.SESSION_START_SPAN_NAME, context=session._context(),
                                                       start_time=session._started_ns)  # fmt: skip
                    set_clean_attributes(marker, _MARKER_ATTRIBUTES)
                    marker.end()
                except Exception:
                    logger.exception("sessionkit: could not announce session %s", session.id)

    def stop(self) -> None:
        self._wake.set()


class SessionScope:
    """What :meth:`Client.session` returns: a session that starts on entering a block."""

    def __init__(self, client: Client, name: str, fields: dict[str, Any]) -> None:
        self._client = client
        self._name = name
        self._fields = fields
        self._sessions: list[Session] = []

    def __enter__(self) -> Session:
        session = self._client._open(self._name, **self._fields)
        self._sessions.append(session)
        return session.__enter__()

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self._sessions.pop().__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """As a decorator: each call of ``func`` runs in a new session of its own."""
        client = self._client
        return session_decorator(lambda: client, self._name, self._fields)(func)


def _differs(new: Any, old: Any) -> bool:
    if isinstance(new, (str, int, float, dict, type(None))) or hasattr(new, "__fspath__"):
        return bool(new != old)
    return new is not old  # exporter instances, providers: by identity


# -- SIGTERM ---------------------------------------------------------------------------------------------
# Python's default SIGTERM ends the process without running atexit: open sessions would never
# end and queued spans never leave. Where nobody else handles SIGTERM, sessionkit does: it ends
# open sessions, flushes within shutdown_timeout, then dies of SIGTERM as the process would have.
_live_clients: weakref.WeakSet[Client] = globals().get("_live_clients") or weakref.WeakSet()


def _on_sigterm(signum: int, frame: Any) -> None:
    for client in list(_live_clients):
        try:
            client._shutdown(None, "the process received SIGTERM")
        except Exception:
            logger.exception("sessionkit: error while shutting down on SIGTERM")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_handler() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        handler = signal.getsignal(signal.SIGTERM)
        if handler is signal.SIG_DFL or getattr(handler, "__qualname__", None) == "_on_sigterm":
            signal.signal(signal.SIGTERM, _on_sigterm)  # (again after a reload: this module's own)
    except (ValueError, OSError):
        logger.debug("sessionkit: could not install the SIGTERM handler", exc_info=True)


# -- the default client ---------------------------------------------------------------------------
# Kept across importlib.reload of this module: re-executing it must not forget the client.
if "_default_lock" not in globals():
    _default_lock = threading.Lock()
    _default: Optional[Client] = None


def init(**options: Unpack[Options]) -> Client:
    """Create the default client, or reconfigure it in place when it exists.

    Calling it again with the same settings returns the same client and adds nothing.
    """
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Client(**options)
        else:
            _default.configure(**options)
        return _default


def get_client() -> Optional[Client]:
    """The default client, or None before :func:`init`."""
    return _default

"""Client: the composition root. It builds the parts and wires them together.

A client is made of its settings (``Config``), its OpenTelemetry plumbing (``Telemetry``:
provider, tracer, meter, export pipeline), the ``SessionSpanProcessor`` that stamps and counts
spans, the ``SessionRegistry`` of its sessions, the channel registry and the history tracker
they share, and the decorators bound to it. It satisfies ``Host``, what those parts use of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union

from opentelemetry import context as otel_context
from opentelemetry.metrics import Meter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Tracer
from typing_extensions import Unpack

from . import _exits, _global, _wire, integrations
from ._channels import ChannelRegistry
from ._config import Config, Options
from ._context import install_propagation
from ._conversations import Conversations
from ._current import current
from ._decorators import SpanDecorator
from ._errors import CLIENT_SHUT_DOWN, ChannelError, SessionStateError, internal_errors
from ._genai_metrics import record_llm_metrics
from ._history import HistoryLoaderDecorator, HistoryTracker
from ._prices import PriceTable
from ._processor import SessionSpanProcessor
from ._propagation import NOTHING, read_carrier
from ._redact import Redactor
from ._registry import SessionRegistry
from ._scopes import ContinuedScope, SessionScope, TurnDecorator
from ._session import Session
from ._telemetry import Telemetry
from ._types import EndState, SessionFields
from ._values import checked_timeout, to_id
from ._wire.outgoing import headers_for

if TYPE_CHECKING:
    from ._models import ClientStats, OpenChannel

__all__ = ["Client"]

logger = logging.getLogger("sessionkit")

T = TypeVar("T")


class Client:
    """An independent sessionkit instance: its own provider, exporter and sessions.

    Takes the same keyword arguments as :func:`sessionkit.init`. Two clients in one process
    never see each other's spans.
    """

    config: Config
    """The client's settings (frozen; :meth:`configure` replaces them whole)."""
    tracer: Tracer
    """The tracer sessionkit's own spans come from (a no-op tracer when disabled)."""
    recording: bool
    """Whether spans are recorded (tracing enabled)."""
    closed: bool
    """Whether the client was shut down."""
    prices: PriceTable
    """What LLM calls cost: the ``prices`` setting first, then the genai-prices table."""

    def __init__(self, **options: Unpack[Options]) -> None:
        self.config = Config.resolve(**options)
        self.closed = False
        self._lock = threading.RLock()
        self._redactor = Redactor(self.config.redact, self.config.redact_defaults)
        self.prices = PriceTable(self.config.prices)
        self._channels = ChannelRegistry(self)
        self._sessions = SessionRegistry(self, self._channels, HistoryTracker(self))
        self._conversations = Conversations(self._sessions, self.config.conversation_idle_timeout)
        self._processor = SessionSpanProcessor(self._sessions, self._derive_metrics)
        self._telemetry = Telemetry(self.config, self._processor, self._derive_metrics)
        self._refresh()
        # Every span sessionkit makes asks for its parent: the registry's method itself, not a
        # delegating one (one call fewer on the hot path). The method below documents it.
        self.span_parent = self._sessions.span_parent  # type: ignore[method-assign]
        self.history_loader = HistoryLoaderDecorator(self._itself)
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
        self.turn = TurnDecorator(self._itself)
        """``@client.turn`` / ``@client.turn(input="message")``: each call a turn of the calling
        code's session (its return value the output; the named argument the input)."""
        install_propagation(current)
        _exits.register(self)
        if self.config.handle_sigterm:
            _exits.install_sigterm_handler()
        self._instrumented = False
        self._apply_instrumentation()
        self._apply_global()
        self._apply_integrations()
        if self.config.auto_start_session:
            self._sessions.start_auto()

    def _itself(self) -> Client:
        return self

    def _refresh(self) -> None:
        """Copy what the hot path reads from the telemetry into plain attributes."""
        self.tracer = self._telemetry.tracer
        self.recording = self._telemetry.provider is not None

    # -- configuration ---------------------------------------------------------------------------
    @property
    def tracer_provider(self) -> Optional[TracerProvider]:
        """The SDK provider spans go through; None when tracing is disabled."""
        return self._telemetry.provider

    @property
    def exporter(self) -> Optional[SpanExporter]:
        """The exporter spans go to (None when tracing is off or an attached provider exports)."""
        return self._telemetry.exporter

    @property
    def meter(self) -> Meter:
        """The meter sessionkit's metrics come from (channels open, history loads, LLM calls).
        Made on first use, so a program that records no metric never loads the metrics SDK."""
        return self._telemetry.meter

    @property
    def metric_reader(self) -> Any:
        """With ``exporter="memory"``: an ``InMemoryMetricReader`` of the client's metrics, for tests."""
        return self._telemetry.metric_reader

    def instruments(self, name: str, build: Callable[[Meter], T]) -> T:
        """The instrument(s) ``build(meter)`` makes, made once per meter and kept under ``name``
        (a new meter after re-init makes new ones)."""
        return self._telemetry.instruments(name, build)

    @property
    def log_exporter(self) -> Any:
        """The exporter session events go to (built with the first event; None before it, or
        when ``logs_exporter`` is off). With ``logs_exporter="memory"``, tests read it."""
        return self._telemetry.events.exporter

    def session_event(self, name: str, attributes: Mapping[str, Any]) -> None:
        """Emit a session event on the logs signal (see ``logs_exporter``); never raises."""
        with internal_errors("emitting a session event"):
            self._telemetry.events.emit(name, attributes)

    def redact(self, text: str) -> str:
        """Captured content as it will be recorded: the default patterns, then ``redact``."""
        return self._redactor(text)

    def configure(self, **options: Unpack[Options]) -> Client:
        """Apply new settings in place, keeping open sessions. Unchanged settings cost nothing."""
        new = Config.resolve(**options)
        with self._lock:
            if self.closed:
                raise SessionStateError(CLIENT_SHUT_DOWN)
            old = self.config
            if new.comparable() == old.comparable():
                return self
            changed = {f for f in Config.names() if _differs(getattr(new, f), getattr(old, f))}
            self.config = new
            self._redactor = Redactor(new.redact, new.redact_defaults)
            self.prices = PriceTable(new.prices)
            self._conversations.idle_timeout = new.conversation_idle_timeout
            self._telemetry.apply(new, changed)
            self._refresh()
            self._apply_instrumentation()
            self._apply_global()
            self._apply_integrations()
            if new.auto_start_session:
                self._sessions.start_auto()
            logger.info("sessionkit: reconfigured (%s)", ", ".join(sorted(changed)))
            return self

    def _derive_metrics(self, spans: Sequence[ReadableSpan]) -> None:
        """Metrics computed from ended spans: the export pipeline calls it from its thread, the
        processor directly when an attached provider exports instead."""
        record_llm_metrics(self.instruments, spans)

    # -- other libraries' spans: the global provider ------------------------------------------------
    def _apply_global(self) -> None:
        mode = self.config.set_global
        if mode and self.config.tracing_enabled and not self.closed:
            with internal_errors("setting up the global tracer provider (continuing without)"):
                _global.serve(self, self._processor, mode)
        else:
            _global.stop_serving(self)
        integrations.unregister(self)

    def _apply_integrations(self) -> None:
        if self.config.integrations and self.config.tracing_enabled and not self.closed:
            with internal_errors("setting up the integrations (continuing without)"):
                integrations.register(self)
        else:
            integrations.unregister(self)

    # -- LLM calls on the wire --------------------------------------------------------------------
    def _apply_instrumentation(self) -> None:
        want = self.config.instrument_llm_calls and self.config.tracing_enabled and not self.closed
        if want and not self._instrumented:
            with internal_errors("instrumenting LLM calls (continuing without)"):
                self.instrument()
        elif not want and self._instrumented:
            self.uninstrument()

    def instrument(self) -> None:
        """Record LLM calls for this client again after :meth:`uninstrument`."""
        if not self._instrumented and self.config.tracing_enabled and not self.closed:
            _wire.register(self)
            self._instrumented = True

    def uninstrument(self) -> None:
        """Stop recording LLM calls for this client; the last client to stop restores the
        original httpx / httpx2 methods."""
        _wire.unregister(self)
        self._instrumented = False

    # -- sessions -------------------------------------------------------------------------------
    def start_session(self, name: str = "session", **fields: Unpack[SessionFields]) -> Session:
        """Start a session and make it current here, until it ends.

        Started on the main thread, it also becomes the client's default session for code that
        runs outside any session context (later notebook cells, callbacks).
        """
        return self._sessions.start(name, **fields)

    def session(self, name: str = "session", **fields: Unpack[SessionFields]) -> SessionScope:
        """A session for a ``with`` / ``async with`` block; it ends when the block exits
        (``fail`` if by exception, which propagates unchanged). As a decorator: a session per call."""
        return SessionScope(self._sessions, name, fields)

    def conversation(self, thread_id: Any, *, name: str = "conversation", user_id: Any = None) -> Session:
        """The session of conversation ``thread_id``: the one open for it, else a new one (its
        ``thread_id`` set; named ``name``, with ``user_id``). Not made current: use it in a block
        per message, ``with client.conversation(chat_id).turn(text) as turn: ...``. It ends
        (``success``) once the conversation has been idle for ``conversation_idle_timeout``
        seconds: no call of this for it, and no turn of it open. Framework runs outside a
        session that name a conversation (the Agents SDK's ``group_id``, LangGraph's
        ``thread_id``) continue it the same way, a turn per run."""
        if self.closed:
            raise SessionStateError(CLIENT_SHUT_DOWN)
        if not isinstance(name, str):
            raise TypeError(f"sessionkit: conversation(name=...) takes a string; got {name!r}")
        thread = to_id(thread_id, "thread_id")
        user = None if user_id is None else to_id(user_id, "user_id")
        return self._conversations.session(thread, name, user)

    def end_session(
        self,
        state: Union[EndState, str] = EndState.SUCCESS,
        reason: Optional[str] = None,
        *,
        session: Optional[Session] = None,
    ) -> Optional[Session]:
        """End ``session``, or the current one. With no session to end: a warning, or
        :class:`SessionStateError` when the client is strict."""
        return self._sessions.end(state, reason, session)

    def current_session(self) -> Optional[Session]:
        """The session code running here belongs to: the context's, else the default one."""
        return self._sessions.current_session()

    def continue_session(
        self, headers: Any, *, name: Optional[str] = None, trust: Optional[bool] = None
    ) -> ContinuedScope:
        """Continue the caller's session in a ``with`` / ``async with`` block, from the headers
        of an incoming request (any mapping of header names to values, ASGI's list of byte
        pairs, or an MCP request's ``_meta``): the block's spans carry the caller's
        ``session.id`` (and thread, user and turn) and sit under the caller's span, in its trace.

        ``with client.continue_session(request.headers) as session:`` gives the session, or
        None when the headers carry none (the block then runs as it would without). Bad headers
        are ignored with one log line.

        ``trust``: None (the default) continues the caller's session as the ``continue_incoming``
        setting says, as a caller from outside: the request gets a session object of its own,
        never joins a session this process has open, its trace id joins nothing here, and
        ``sample_rate`` (not the caller's flag) decides its sampling. ``True``: the caller is
        this program's own (a test, a monolith, an internal service): a session this process
        has open is joined, and the caller's sampling decision kept. ``False``: the headers are
        ignored; a public edge must not let a client into another user's session."""
        if headers is not None and not (isinstance(headers, (Mapping, list, tuple)) or hasattr(headers, "get")):
            raise TypeError(
                "sessionkit: continue_session(headers) takes the request's headers: a mapping of names to "
                f"values (or a list of (name, value) pairs); got {type(headers).__name__}"
            )
        if trust is not None and not isinstance(trust, bool):
            raise TypeError(f"sessionkit: continue_session(trust=...) takes True or False; got {trust!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"sessionkit: continue_session(name=...) takes a string; got {name!r}")
        continued = self.config.continue_incoming if trust is None else trust
        incoming = read_carrier(headers) if continued and headers is not None else NOTHING
        return ContinuedScope(self._sessions, incoming, name, trusted=trust is True)

    def stamp_span(self, span: Any) -> None:
        """Stamp ``span``, started before its session was known here (an outer middleware's
        server span, made before ``continue_session`` read the headers), with the session the
        calling code is in now. A span that has a session already is left as it is."""
        self._processor.apply_stamp(span, None)

    def propagation_headers(self) -> dict[str, str]:
        """The headers that carry the calling code's session to another service
        (``traceparent``, ``tracestate``, ``baggage``), for a transport sessionkit does not
        hook (gRPC metadata, a message queue): empty outside a session. The HTTP clients
        sessionkit hooks add them by themselves, to the ``propagate_to`` targets only."""
        return headers_for(self) or {}

    def sessions(self) -> list[Session]:
        """The client's active sessions."""
        return self._sessions.active()

    def span_parent(self, context: Optional[otel_context.Context] = None) -> otel_context.Context:
        """The parent context for a new sessionkit span: ``context`` (default: the current one)
        when it holds a span, else the root of the session the code belongs to."""
        return self._sessions.span_parent(context)

    # -- channels -------------------------------------------------------------------------------
    def open_channels(self) -> list[OpenChannel]:
        """Channels open now across all sessions, oldest first: what a cleanup job should delete
        if they are not in use (channels past ``channel_ttl`` are marked leaked first)."""
        return self._channels.listing()

    def close_channel(self, platform: str, channel_id: Any, reason: Optional[str] = None) -> None:
        """Close an open channel of any session (after deleting it on the platform).
        :class:`ChannelError` if no such channel is open."""
        channel = self._channels.get(platform, str(channel_id))
        if channel is None:
            raise ChannelError(
                f"sessionkit: no open {platform} channel {str(channel_id)!r}; see client.open_channels()"
            )
        channel.close(reason)

    # -- export control ---------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Export what is queued, waiting at most ``timeout`` seconds. True if all went out."""
        return self._telemetry.flush(checked_timeout(timeout))

    def shutdown(self, timeout: Optional[float] = None) -> bool:
        """End the sessions still open (as ``indeterminate``), export what is left within
        ``timeout`` seconds, and stop."""
        return self._shutdown(timeout, "the client shut down before the session ended")

    def _shutdown(self, timeout: Optional[float], reason: str) -> bool:
        timeout = self.config.shutdown_timeout if timeout is None else checked_timeout(timeout)
        with self._lock:
            if self.closed:
                return True
            self.closed = True
        # The open sessions end and what is queued goes out first: no later teardown step
        # (unpatching, integrations, the global provider) can skip the flush or raise.
        with internal_errors("ending the open sessions at shutdown"):
            self._conversations.close()
            self._sessions.close(reason)
        exported = False
        with internal_errors("exporting what was left at shutdown"):
            exported = self._telemetry.shutdown(timeout)
        if self._instrumented:
            with internal_errors("restoring the HTTP clients at shutdown"):
                self.uninstrument()
        with internal_errors("letting the global provider go at shutdown"):
            _global.stop_serving(self)
        with internal_errors("detaching the integrations at shutdown"):
            integrations.unregister(self)
        return exported

    @property
    def shutdown_timeout(self) -> float:
        """How long shutting down at exit may take (the ``shutdown_timeout`` setting), in seconds."""
        return float(self.config.shutdown_timeout)

    def end_for_exit(self, reason: str) -> bool:
        """What the exit paths call (interpreter exit, SIGTERM, a forked child's end): shut down
        within ``shutdown_timeout``, never raising."""
        with internal_errors("shutting down at exit"):
            return self._shutdown(None, reason)
        return False

    def stats(self) -> ClientStats:
        """Every span's fate so far: started, ended, exported, failed, dropped, queued."""
        from ._models import ClientStats

        processor = self._processor
        pipeline = self._telemetry.pipeline
        kept, let_go = self._sessions.keeper.stats()
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
            sessions_started=self._sessions.started.value,
            sessions_active=self._sessions.active_count,
            backpressure_waits=pipeline.backpressure_waits if pipeline else 0,
            backpressure_seconds=round(pipeline.backpressure_seconds, 3) if pipeline else 0.0,
            display_spans_kept=kept,
            display_spans_dropped=let_go,
        )

    def _repr_html_(self) -> str:
        from ._render import client_html

        return client_html(self.config, self.stats(), [(s.name, s.id) for s in self.sessions()])

    def __repr__(self) -> str:
        exporter = self.config.exporter
        name = exporter if isinstance(exporter, str) else type(exporter).__name__
        active = self._sessions.active_count
        return f"<sessionkit.Client service={self.config.service_name!r} exporter={name} sessions={active}>"


def _differs(new: Any, old: Any) -> bool:
    if isinstance(new, (str, int, float, dict, type(None))) or hasattr(new, "__fspath__"):
        return bool(new != old)
    return new is not old  # exporter instances, providers: by identity

"""SessionRegistry: a client's sessions, and the one answer to "which session is this in?".

The registry opens sessions (in a ``with`` block, imperatively, on their own at ``init``),
keeps the active ones and an index of recent ones by trace id, and lets them go as they end.
``current_session()`` is the only place that decides which session the calling code belongs to: the
session current in the context, else the newest one started imperatively on the main thread
(notebook cells and callbacks run outside any context that holds it), else the auto session.
The span processor, the decorators, the wire-level hook and history loads all ask it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Optional, Protocol, TypeVar, Union, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from typing_extensions import Unpack

from . import semconv
from ._channels import ChannelRegistry
from ._decorators import bound_arguments, signature_of, wrap
from ._errors import CLIENT_SHUT_DOWN, SessionStateError
from ._history import HistoryTracker
from ._keep import DisplayKeeper, SpanKeep
from ._propagation import Incoming, session_kept
from ._session import (
    Announcer,
    Session,
    continues_a_caller,
    current,
    finish_pending,
    make_current,
    restore,
    root_context,
    root_trace_id,
    start_here,
    started_in_this_process,
    trace_in_use,
)
from ._spans import ARRIVAL_KEY, Arrival, is_clean_exit
from ._tally import Tally
from ._turn import Turn, end_call, enter_turn, leave_turn
from ._types import EndState, Host, SessionFields, check_fields

__all__ = ["ContinuedScope", "SessionRegistry", "SessionScope", "TurnDecorator", "TurnHost", "session_decorator"]

logger = logging.getLogger("sessionkit")

F = TypeVar("F", bound=Callable[..., Any])

# Traces (sessions' records and, per turn, their turns') remembered so that spans ending after
# their turn or session still count and stamp correctly: the newest this many, and every trace
# still in use. Trimmed in batches, so that remembering one costs a dict assignment.
RECENT_TRACES = 2048
TRIM_BATCH = 256
# Users whose last session's id is kept, for the next one's session.previous_id.
RECENT_USERS = 4096


class SessionRegistry:
    """The sessions of one client (see the module's docstring)."""

    def __init__(self, host: Host, channels: ChannelRegistry, history: HistoryTracker) -> None:
        self.host = host
        self.channels = channels
        self.history = history
        self._lock = threading.Lock()
        self._active: dict[str, Session] = {}
        # Started imperatively on the main thread, oldest first; an ended one leaves at once (O(1)).
        self._ambient: dict[str, Session] = {}
        self.auto: Optional[Session] = None
        self.started = Tally()
        # The index the span processor reads per span: live sessions and recently ended ones.
        self.by_trace: OrderedDict[int, Session] = OrderedDict()
        self.by_id: dict[str, Session] = {}
        # Traces that requests came in with (``ContinuedScope``), by how many are running: the
        # processor checks a span of one of these against its request's session.
        self.arriving: dict[int, int] = {}
        self._index_lock = threading.Lock()
        self._trim_at = RECENT_TRACES + TRIM_BATCH  # the index's size that makes the next trim
        self._announcer = Announcer(host)
        self._last_of_user: OrderedDict[str, str] = OrderedDict()  # user id -> their last session's id
        self._waiting: dict[str, Session] = {}  # ended sessions whose record waits for open spans
        self.keeper = DisplayKeeper(False, 1, 1)  # spans kept for display (see keep_for_display)
        self._keeper_config: Any = None

    # -- opening --------------------------------------------------------------------------------
    def open(
        self,
        name: str,
        remote: Optional[tuple[SpanContext, Optional[int]]] = None,
        incoming: bool = False,
        **fields: Unpack[SessionFields],
    ) -> Session:
        """A new session, not yet current anywhere (``remote``: continuing a caller's turn;
        ``incoming``: its ids came with a request from outside)."""
        host = self.host
        if host.closed:
            if host.config.strict:
                raise SessionStateError(CLIENT_SHUT_DOWN)
            logger.warning(CLIENT_SHUT_DOWN)
        session = Session(self, name, remote=remote, **fields)
        self._active[session.id] = session  # one dict operation: atomic, no lock needed
        self.started.add()
        if host.recording:
            self._index(session, incoming)
            if host.config.trace_per == "session" and remote is None:  # per turn, each turn goes out as it ends
                self._announcer.add(session)
        self._event(semconv.EVENT_SESSION_START, session)
        return session

    def keep_for_display(self) -> Optional[SpanKeep]:
        """Where a new session keeps its spans for display (None when keeping is off)."""
        config = self.host.config
        if config is not self._keeper_config:  # settings changed (or first use): re-read them
            wanted = (config.keeps_spans_for_display, config.display_max_sessions, config.display_max_spans)
            keeper = self.keeper
            if wanted != (keeper.enabled, keeper.max_sessions, keeper.max_spans):
                self.keeper = DisplayKeeper(*wanted)
            self._keeper_config = config
        return self.keeper.track()

    def _event(self, name: str, session: Session) -> None:
        if not self.host.config.emits_session_events:
            return
        try:
            attrs: dict[str, Any] = {semconv.SESSION_ID: session.id, semconv.SESSION_NAME: session.name}
            if session.user_id is not None:
                attrs[semconv.USER_ID] = session.user_id
            if session.thread_id is not None:
                attrs[semconv.GEN_AI_CONVERSATION_ID] = session.thread_id
            if name == semconv.EVENT_SESSION_START:
                if session.previous_id is not None:
                    attrs[semconv.SESSION_PREVIOUS_ID] = session.previous_id
            else:
                attrs[semconv.SESSION_END_STATE] = session.end_state.value if session.end_state else ""
                if session.end_reason is not None:
                    attrs[semconv.SESSION_END_REASON] = session.end_reason
            self.host.session_event(name, attrs)
        except Exception:
            logger.exception("sessionkit: could not emit the %s event of session %s", name, session.id)

    def previous_session_of(self, user_id: Optional[str], session_id: str) -> Optional[str]:
        """The id of ``user_id``'s last ended session, unless it is ``session_id`` (continued)."""
        if user_id is None or not self._last_of_user:
            return None
        previous = self._last_of_user.get(user_id)
        return None if previous == session_id else previous

    def trace_opened(self, trace_id: int, session: Session) -> None:
        """``session`` started trace ``trace_id`` (its record, or a turn): spans of that trace
        are its. One dict assignment, atomic; the lock only to trim the index."""
        by_trace = self.by_trace
        by_trace[trace_id] = session
        if len(by_trace) > self._trim_at:
            with self._index_lock:
                self._evict()

    def _evict(self) -> None:
        """Forget the oldest traces past the bound (call with the index lock held), but not one
        still in use (a live session's record, an open turn): those go to the young end. Each
        trim looks at ``2 * TRIM_BATCH`` entries at most and the next comes a batch later, so a
        process with many live sessions pays O(1) per trace, not O(live sessions)."""
        by_trace = self.by_trace
        kept: list[tuple[int, Session]] = []
        for _ in range(2 * TRIM_BATCH):
            if len(by_trace) <= RECENT_TRACES:
                break
            old_trace, old = by_trace.popitem(last=False)
            if trace_in_use(old, old_trace):
                kept.append((old_trace, old))
            elif old.id not in self._active and self.by_id.get(old.id) is old:
                self.by_id.pop(old.id, None)
        by_trace.update(kept)
        self._trim_at = max(len(by_trace), RECENT_TRACES) + TRIM_BATCH

    def start(self, name: str, **fields: Unpack[SessionFields]) -> Session:
        """A new session, current in the calling context until it ends (``start_session``)."""
        if fields:
            check_fields(fields)
        session = self.open(name, **fields)
        start_here(session)
        if threading.current_thread() is threading.main_thread():
            with self._lock:
                self._ambient[session.id] = session
        return session

    def start_auto(self) -> None:
        """Start the session code outside any other session belongs to (``auto_start_session``)."""
        if self.auto is None or not self.auto.is_active:
            self.auto = self.open(self.host.config.auto_session_name)

    def _index(self, session: Session, incoming: bool = False) -> None:
        if incoming:
            # A caller's trace id and session id come from outside: they never take the place
            # of a session of this process that has them (a forged or leaked id).
            self.by_id.setdefault(session.id, session)
            trace_id = root_trace_id(session)
            if trace_id not in self.by_trace:
                self.trace_opened(trace_id, session)
            return
        self.by_id[session.id] = session
        self.trace_opened(root_trace_id(session), session)

    # -- which session --------------------------------------------------------------------------
    def current_session(self) -> Optional[Session]:
        """The session the calling code belongs to: the context's, else the newest imperative
        one of the main thread, else the auto session; None when there is none."""
        session = current.get()
        if session is not None and session.client is self.host and session.end_state is None:
            return session
        if self._ambient:
            try:
                ambient = _newest_active(self._ambient)
            except RuntimeError:  # changed by another thread while read: read it again, locked
                with self._lock:
                    ambient = _newest_active(self._ambient)
            if ambient is not None:
                return ambient
        auto = self.auto
        return auto if auto is not None and auto.end_state is None else None

    def span_parent(self, context: Optional[otel_context.Context] = None) -> otel_context.Context:
        """``context`` (default: the current one) when it holds a span, else the root of the
        session the calling code belongs to."""
        if context is None:
            context = otel_context.get_current()
        if trace.get_current_span(context).get_span_context().is_valid:
            return context
        session = self.current_session()
        return context if session is None else root_context(session)

    def active(self) -> list[Session]:
        return list(self._active.values())

    @property
    def active_count(self) -> int:
        return len(self._active)

    # -- ending ---------------------------------------------------------------------------------
    def end(
        self, state: Union[EndState, str], reason: Optional[str], session: Optional[Session] = None
    ) -> Optional[Session]:
        """End ``session``, or the current one. With none to end: a warning, or
        :class:`SessionStateError` when the client is strict."""
        target = session if session is not None else self.current_session()
        if target is None or not target.is_active:
            message = (
                "sessionkit: end_session() found no active session to end. Start one with "
                "client.start_session(), or pass session=..."
            )
            if self.host.config.strict:
                raise SessionStateError(message)
            logger.warning(message)
            return None
        target.end(state, reason)
        return target

    def session_ended(self, session: Session) -> None:
        self._announcer.discard(session)
        if self._active.get(session.id) is session:
            self._active.pop(session.id, None)
        if self._ambient:
            with self._lock:
                self._ambient.pop(session.id, None)
        if session.user_id is not None:
            with self._lock:
                self._last_of_user[session.user_id] = session.id
                self._last_of_user.move_to_end(session.user_id)
                if len(self._last_of_user) > RECENT_USERS:
                    self._last_of_user.popitem(last=False)
        self._event(semconv.EVENT_SESSION_END, session)

    def record_waiting(self, session: Session, waiting: bool) -> None:
        """``session`` ended with spans still open: its record goes out when they end, or at close."""
        if waiting:
            self._waiting[session.id] = session
        else:
            self._waiting.pop(session.id, None)

    def close(self, reason: str) -> None:
        """End every session this process started (``indeterminate``), and stop announcing."""
        self._announcer.stop()
        for session in self.active():
            if started_in_this_process(session):  # a forked child leaves its parent's sessions alone
                session.end(EndState.INDETERMINATE, reason)
        for session in list(self._waiting.values()):  # records still waiting for open spans
            finish_pending(session)
        self._waiting.clear()


class ContinuedScope:
    """``with client.continue_session(headers) as session:``: the block runs in the caller's
    session (``session`` is it, or None when the headers carry none), under the caller's span.
    The session continued here ends with the block (``fail`` on an exception).

    ``trusted`` (``trust=True``: the caller is this program's own, a pool task, an internal
    service) lets the request join a session this process has open and keeps the caller's
    sampling decision. Otherwise the request gets a session object of its own (its user is the
    caller's), its trace id joins nothing here, and ``sample_rate`` decides its sampling."""

    def __init__(
        self, registry: SessionRegistry, incoming: Incoming, name: Optional[str], trusted: bool = False
    ) -> None:
        self._registry = registry
        self._incoming = incoming
        self._name = name
        self._trusted = trusted
        self._stack: list[tuple[Optional[Session], bool, Any, Any, Optional[int]]] = []

    def __enter__(self) -> Optional[Session]:
        incoming = self._incoming
        registry = self._registry
        session: Optional[Session] = None
        owned = False
        parent = incoming.parent
        try:
            if incoming.session_id is not None and registry.host.recording:
                known = registry.by_id.get(incoming.session_id)
                if (
                    self._trusted
                    and known is not None
                    and known.is_active
                    and started_in_this_process(known)
                    and not continues_a_caller(known)  # (another request's: each request has its own)
                ):
                    session = known  # the caller is in this process: join its session
                else:
                    if parent is not None and not self._trusted:
                        parent = _with_our_sampling(parent, incoming.session_id, registry.host.config.sample_rate)
                    remote = (parent, incoming.turn_index) if parent is not None else None
                    session = registry.open(
                        self._name or "session",
                        remote,
                        incoming=True,
                        session_id=incoming.session_id,
                        thread_id=incoming.thread_id,
                        user_id=incoming.user_id,
                    )
                    owned = True
            elif parent is not None and not self._trusted:
                parent = _with_our_sampling(parent, None, registry.host.config.sample_rate)
        except Exception:
            logger.warning("sessionkit: could not continue session %r (ignored)", incoming.session_id, exc_info=True)
            session, owned = None, False
        context = otel_context.get_current()
        arriving: Optional[int] = None
        if parent is not None:
            context = trace.set_span_in_context(NonRecordingSpan(parent), context)
            arriving = parent.trace_id
            context = otel_context.set_value(ARRIVAL_KEY, Arrival(arriving, session), context)
            registry.arriving[arriving] = registry.arriving.get(arriving, 0) + 1
        elif session is not None:
            context = root_context(session)
        session_token = current.set(session) if session is not None else None
        self._stack.append((session, owned, session_token, otel_context.attach(context), arriving))
        return session

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        session, owned, session_token, token, arriving = self._stack.pop()
        otel_context.detach(token)
        if session_token is not None:
            current.reset(session_token)
        if arriving is not None:
            left = self._registry.arriving.get(arriving, 1) - 1
            if left > 0:
                self._registry.arriving[arriving] = left
            else:
                self._registry.arriving.pop(arriving, None)
        if owned and session is not None and session.is_active:
            if exc is None or is_clean_exit(exc):
                session.end(EndState.SUCCESS)
            else:
                session.end(EndState.FAIL, f"{type(exc).__name__}: {exc}")

    async def __aenter__(self) -> Optional[Session]:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def _with_our_sampling(parent: SpanContext, session_id: Optional[str], rate: float) -> SpanContext:
    """An untrusted caller's span context with this service's sampling decision in place of the
    caller's flag: the session's, from its id, or (no session) the rate's, from the trace id."""
    if session_id is not None:
        kept = session_kept(session_id, rate)
    else:
        kept = rate >= 1.0 or (parent.trace_id & _TRACE_ID_MASK) < int(rate * (_TRACE_ID_MASK + 1))
    flags = TraceFlags(TraceFlags.SAMPLED if kept else TraceFlags.DEFAULT)
    if flags == parent.trace_flags:
        return parent
    return SpanContext(parent.trace_id, parent.span_id, True, flags, parent.trace_state)


_TRACE_ID_MASK = 0xFFFFFFFFFFFFFFFF  # the low 64 bits, as OpenTelemetry's ratio sampler reads them


def _newest_active(sessions: dict[str, Session]) -> Optional[Session]:
    return next((s for s in reversed(sessions.values()) if s.end_state is None), None)


# -- sessions in a block, and per call ------------------------------------------------------------
class SessionScope:
    """What :meth:`Client.session` returns: a session that starts on entering a block."""

    def __init__(self, registry: SessionRegistry, name: str, fields: SessionFields) -> None:
        check_fields(fields)
        self._registry = registry
        self._name = name
        self._fields = fields
        self._sessions: list[Session] = []

    def __enter__(self) -> Session:
        session = self._registry.open(self._name, **self._fields)
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
        registry = self._registry
        return session_decorator(lambda: registry, self._name, self._fields)(func)


class _SessionRun:
    """One call of a session-decorated function: a new session for the call."""

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def enter(self) -> Any:
        return make_current(self.session)

    def leave(self, token: Any) -> None:
        restore(token)

    def end(self, exc: Optional[BaseException] = None, result: Any = None, completed: Optional[bool] = None) -> None:
        if exc is not None and not is_clean_exit(exc):
            self.session.end(EndState.FAIL, f"{type(exc).__name__}: {exc}")
        elif completed is False:
            self.session.end(EndState.INDETERMINATE, "the generator was closed before it finished")
        else:
            self.session.end(EndState.SUCCESS)


class _SessionSpec:
    __slots__ = ("name", "fields")
    needs_recording = False  # a session keeps its figures with tracing off too

    def __init__(self, name: str, fields: SessionFields) -> None:
        self.name = name
        self.fields = fields

    def run(self, registry: SessionRegistry, instance: Any, args: tuple, kwargs: dict) -> _SessionRun:
        return _SessionRun(registry.open(self.name, **self.fields))


def session_decorator(
    get_registry: Callable[[], Optional[SessionRegistry]], name: str, fields: SessionFields
) -> Callable[[F], F]:
    """Each call of the decorated function runs in a new session of its own."""

    def decorate(f: F) -> F:
        return wrap(f, lambda target: _SessionSpec(name, fields), get_registry)

    return decorate


# -- a turn per call ------------------------------------------------------------------------------
class TurnHost(Host, Protocol):
    """What ``@client.turn`` needs of a client: a ``Host`` that knows the calling code's session.
    Implemented by ``Client``."""

    def current_session(self) -> Optional[Session]: ...


class _TurnRun:
    """One call of a turn-decorated function: a turn of the calling code's session."""

    __slots__ = ("turn",)

    def __init__(self, turn: Turn) -> None:
        self.turn = turn

    def enter(self) -> Any:
        return enter_turn(self.turn)

    def leave(self, token: Any) -> None:
        leave_turn(self.turn, token)

    def end(self, exc: Optional[BaseException] = None, result: Any = None, completed: Optional[bool] = None) -> None:
        end_call(self.turn, exc, result)


class _TurnSpec:
    __slots__ = ("name", "signature")
    needs_recording = False  # a turn keeps its figures with tracing off too

    def __init__(self, name: Optional[str], func: Callable[..., Any]) -> None:
        self.name = name
        self.signature = signature_of(func)

    def run(self, client: TurnHost, instance: Any, args: tuple, kwargs: dict) -> Optional[_TurnRun]:
        session = client.current_session()
        if session is None:
            return None  # outside any session the call just runs (@client.session makes one per call)
        value: Any = None
        if client.config.capture_content:
            arguments = bound_arguments(self.signature, instance, args, kwargs)
            value = next(iter(arguments.values())) if len(arguments) == 1 else arguments  # the message itself
        return _TurnRun(session.turn(value, name=self.name))


class TurnDecorator:
    """``@turn`` or ``@turn(name=...)``: each call is a turn of the session the calling code is in,
    its arguments the turn's input and its return value the output (when content is captured)."""

    def __init__(self, get_client: Callable[[], Optional[TurnHost]]) -> None:
        self._get_client = get_client

    @overload
    def __call__(self, func: F, /) -> F: ...

    @overload
    def __call__(self, func: None = None, /, *, name: Optional[str] = None) -> Callable[[F], F]: ...

    def __call__(self, func: Any = None, /, *, name: Optional[str] = None) -> Any:
        if isinstance(func, str):
            name, func = func, None

        def decorate(f: F) -> F:
            if not callable(f):
                raise TypeError(f"sessionkit: @turn decorates functions and methods, not {f!r}")
            return wrap(f, lambda target: _TurnSpec(name, target), self._get_client)

        return decorate(func) if func is not None else decorate

    def __repr__(self) -> str:
        return "<sessionkit.turn decorator>"

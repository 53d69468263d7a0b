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
from typing import Any, Optional, TypeVar, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanContext
from typing_extensions import Unpack

from . import semconv
from ._announcer import Announcer
from ._channels import ChannelRegistry
from ._errors import CLIENT_SHUT_DOWN, SessionStateError, internal_errors
from ._history import HistoryTracker
from ._keep import DisplayKeeper, SpanKeep
from ._session import (
    Session,
    current,
)
from ._tally import Tally
from ._types import EndState, Host, SessionFields, check_fields

__all__ = ["SessionRegistry"]

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
        remote: Optional[tuple[SpanContext, Optional[int], Optional[str]]] = None,
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
        with internal_errors("emitting a session's event"):
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
            if old.uses_trace(old_trace):
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
        session.place.start_here()
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
            trace_id = session.root_trace_id
            if trace_id not in self.by_trace:
                self.trace_opened(trace_id, session)
            return
        self.by_id[session.id] = session
        self.trace_opened(session.root_trace_id, session)

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
        return context if session is None else session.root_context

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
            if session.started_in_this_process:  # a forked child leaves its parent's sessions alone
                session.end(EndState.INDETERMINATE, reason)
        for session in list(self._waiting.values()):  # records still waiting for open spans
            session.finish_pending()
        self._waiting.clear()


def _newest_active(sessions: dict[str, Session]) -> Optional[Session]:
    return next((s for s in reversed(sessions.values()) if s.end_state is None), None)

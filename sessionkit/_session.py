"""Session: one conversation of an agent, a sequence of turns.

With ``trace_per="turn"`` (the default) each turn is a trace of its own, its spans stamped with
the session's ``session.id``, and the session's own record (identity, end state and reason,
totals) is a span of its own trace that carries the id as ``sessionkit.session.id`` (so a
dashboard grouping traces by ``session.id`` lists the turns only). With ``"session"`` the record
is the root of one trace holding every turn, as a tree.

Which session is current, and making one current, is ``_current``'s (``Session.place``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, StatusCode

from . import semconv
from ._budget import Budget
from ._channels import Channel, ChannelAttempt, ChannelRegistry, SessionChannels
from ._context import pid
from ._current import Place, current, restore
from ._errors import internal_errors
from ._figures import SessionFigures
from ._findings import Finding, log_finding
from ._history import HistoryLoad, HistoryStats, HistoryTracker
from ._insights import SessionInsights
from ._keep import SpanKeep
from ._payloads.body import fit_json
from ._payloads.llm import is_llm_span
from ._propagation import session_kept
from ._record import SessionRecord, record_attributes
from ._spans import (
    DROPPED_ROOT_PARENT,
    SESSION_ROOT_PARENT,
    TURN_START_KEY,
    attributes_of,
    is_clean_exit,
)
from ._turn import Turn, TurnIndex
from ._types import EndState, Host
from ._values import MAX_STRING, to_attributes, to_id, to_tags, to_text

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from ._client import Client  # type-only: the public type of ``Session.client``
    from ._models import SessionSummary
    from ._waterfall import LiveDisplay

__all__ = ["Session", "SessionOwner"]

logger = logging.getLogger("sessionkit")


class SessionOwner(Protocol):
    """What a session needs of the registry that opened it. Implemented by ``SessionRegistry``."""

    host: Host
    channels: ChannelRegistry
    history: HistoryTracker

    def session_ended(self, session: Session) -> None:
        """``session`` ended: let it go from the registry's books."""
        ...

    def trace_opened(self, trace_id: int, session: Session) -> None:
        """``session`` started the trace ``trace_id`` (a turn)."""
        ...

    def previous_session_of(self, user_id: Optional[str], session_id: str) -> Optional[str]:
        """The id of ``user_id``'s session before ``session_id``, if known."""
        ...

    def record_waiting(self, session: Session, waiting: bool) -> None:
        """Whether ``session``'s record waits for spans still open."""
        ...

    def keep_for_display(self) -> Optional[SpanKeep]:
        """Where the session keeps its ended spans for its display (None: not kept)."""
        ...


class Session:
    """One conversation run of an agent. Create it with :meth:`Client.start_session` or
    :meth:`Client.session`; do not construct it directly."""

    # Slots: a session is made per conversation turn in some agents, and ended sessions are
    # remembered a while (for late spans); slots make each smaller and quicker to set up.
    # fmt: off
    __slots__ = (
        "_owner", "_lock", "_pid", "__weakref__",
        "id", "name", "thread_id", "user_id", "tags", "metadata", "previous_id", "stamp", "sampled",  # identity
        "project", "export_project",  # where dashboards show it
        "_started_ns", "_ended_ns", "_start_ns", "_end_ns", "end_state", "end_reason",  # times, end
        "_figures", "_channels", "_history", "_turns", "_insights", "_looks",  # what it counts and finds
        "_record", "_record_pending", "_per_turn", "_turn_context", "_remote_stamp",  # its spans' places
        "place",  # where it was made current, and what was current before
        "_kept", "_live",  # its display
    )
    # fmt: on

    def __init__(
        self,
        owner: SessionOwner,
        name: Any,
        *,
        thread_id: Any = None,
        user_id: Any = None,
        tags: Union[None, str, Iterable[Any]] = None,
        metadata: Optional[Mapping[Any, Any]] = None,
        session_id: Optional[str] = None,
        budget: Optional[Budget] = None,
        remote: Optional[tuple[SpanContext, Optional[int], Optional[str]]] = None,
    ) -> None:
        self._owner = owner
        self.id: str = session_id if session_id is not None else _new_id()  # (checked by check_fields)
        self.name: str = to_text(name, 256) if name is not None else "session"
        self.thread_id: Optional[str] = None if thread_id is None else to_id(thread_id, "thread_id")
        self.user_id: Optional[str] = None if user_id is None else to_id(user_id, "user_id")
        self.previous_id = owner.previous_session_of(self.user_id, self.id)
        """The id of the session this user had before this one (``session.previous_id``), if known."""
        self.tags: list[str] = to_tags(tags)
        if metadata is None:
            self.metadata: dict[str, Any] = {}
        else:
            self.metadata = dict(metadata) if isinstance(metadata, Mapping) else {"value": metadata}
        self._started_ns = time.time_ns()
        self._ended_ns: Optional[int] = None
        self.end_state: Optional[EndState] = None
        self.end_reason: Optional[str] = None
        self._start_ns = time.monotonic_ns()
        self._end_ns: Optional[int] = None
        self._pid = pid()
        self._lock = threading.Lock()
        self._figures = SessionFigures(self._lock)  # fed by the span processor as spans start and end
        self._channels: Optional[SessionChannels] = None  # made by the first channel or attempt
        self._history: Optional[HistoryStats] = None  # made by the first history load
        config = owner.host.config
        if budget is None:
            budget = config.budget
        elif not isinstance(budget, Budget):
            raise TypeError(f"sessionkit: budget= takes a sessionkit.Budget(usd=..., ...); got {budget!r}")
        # findings and the budget: made now for a budget, else by the first LLM call, tool call or failure
        self._insights = SessionInsights(config, self.id, budget, self._publish) if budget is not None else None
        self._looks = SessionInsights.wanted(config)
        self.place = Place(self)
        """Where the session was made current (``start_session``, ``with`` blocks), and what
        was current before it there: a seam for the registry, not API."""
        self._per_turn = owner.host.config.trace_per == "turn"
        self._turns = TurnIndex(self._lock)
        self._record_pending = False  # the record waits for the session's spans still open
        self.stamp: dict[str, Any] = {}
        self._rebuild_stamp()
        self.sampled: bool = session_kept(self.id, owner.host.config.sample_rate)
        """Whether ``sample_rate`` keeps this session (decided from its id: the same everywhere).
        A dropped session's spans are not recorded; its summary has its identity, state, times,
        explicit turns, channels and history loads, but no span figures."""
        self._remote_stamp: Optional[dict[str, Any]] = None
        self.project: str = owner.host.config.effective_project_name
        """The dashboard project the session reports under (sent on with it to services)."""
        self.export_project: Optional[str] = None
        """Continued from a caller of another project: that project, which this process's spans
        of the session are exported under (so that a dashboard shows the conversation whole)."""
        self._kept: Optional[SpanKeep] = owner.keep_for_display()
        self._live: Optional[LiveDisplay] = None  # the live notebook display, once shown
        if remote is None:
            attributes = record_attributes(self.stamp, self._per_turn, self.previous_id, self.metadata)
            self._record = SessionRecord.start(owner.host.tracer, self.name, attributes, self.sampled)
            # The parent of a span of this session started outside its turns: a new trace (an
            # implicit turn) that the processor knows for this session's by the value it carries.
            self._turn_context = otel_context.set_value(TURN_START_KEY, self, otel_context.Context())
        else:
            # Continued from a caller in another process (``continue_session``): no record of
            # its own (the caller's process has it); spans sit under the caller's span, in the
            # caller's turn (its trace), stamped with the caller's turn index.
            span_context, turn_index, project = remote
            if project and project != self.project:
                self.project = self.export_project = project
            self._record = SessionRecord.of_caller(span_context)
            self._turn_context = self._record.context()
            stamp = dict(self.stamp)
            if turn_index is not None:
                stamp[semconv.TURN_INDEX] = turn_index
            self._remote_stamp = stamp

    # -- identity --------------------------------------------------------------------------
    @property
    def trace_id(self) -> str:
        """The id of the session's trace, as 32 hex digits."""
        return format(self._record.trace_id, "032x")

    @property
    def started_at(self) -> datetime:
        """When the session started (UTC)."""
        return datetime.fromtimestamp(self._started_ns / 1e9, timezone.utc)

    @property
    def ended_at(self) -> Optional[datetime]:
        """When the session ended (UTC), or None while it is active."""
        return None if self._ended_ns is None else datetime.fromtimestamp(self._ended_ns / 1e9, timezone.utc)

    @property
    def started_ns(self) -> int:
        """When the session started, in nanoseconds since the epoch (a span's start time)."""
        return self._started_ns

    @property
    def is_active(self) -> bool:
        return self.end_state is None

    @property
    def duration_seconds(self) -> float:
        """How long the session ran (so far, while it is active)."""
        end_ns = self._end_ns if self._end_ns is not None else time.monotonic_ns()
        return (end_ns - self._start_ns) / 1e9

    @property
    def client(self) -> Client:
        """The client the session belongs to."""
        return cast("Client", self._owner.host)

    def _rebuild_stamp(self) -> None:
        stamp: dict[str, Any] = {semconv.SESSION_ID: self.id, semconv.SESSION_NAME: self.name}
        if self.user_id is not None:
            stamp[semconv.USER_ID] = self.user_id
        if self.thread_id is not None:
            stamp[semconv.GEN_AI_CONVERSATION_ID] = self.thread_id
        if self.tags:
            stamp[semconv.TAGS] = tuple(self.tags)
        self.stamp = stamp  # replaced whole, so readers on other threads see old or new

    # -- changing it -------------------------------------------------------------------------
    def add_tags(self, *tags: Any) -> None:
        """Add tags to the session; spans that start from now on carry them."""
        new = [t for t in to_tags(tags) if t not in self.tags]
        if not new:
            return
        self.tags = self.tags + new
        self._rebuild_stamp()
        self._record.span.set_attribute(semconv.TAGS, tuple(self.tags))

    def set_metadata(self, metadata: Optional[Mapping[Any, Any]] = None, /, **values: Any) -> None:
        """Merge key/value metadata into the session (recorded on its root span as JSON)."""
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise TypeError("set_metadata() takes a mapping or keyword arguments, e.g. set_metadata(tier='pro')")
            self.metadata.update(metadata)
        self.metadata.update(values)
        self._record.span.set_attribute(semconv.METADATA, fit_json(self.metadata, MAX_STRING))

    def span_parent(self) -> Optional[otel_context.Context]:
        """Parent for a new span of this session: the current span if it is in one of this
        session's traces (None: use the current context); else, per turn, a new trace (the span
        is a turn of its own), and per session the session's root."""
        if self._owns_trace(trace.get_current_span().get_span_context().trace_id):
            return None
        return self.root_context

    def _owns_trace(self, trace_id: int) -> bool:
        """Whether ``trace_id`` is this session's: its record's (per session, its one trace) or a turn's."""
        return trace_id == self._record.trace_id or trace_id in self._turns.by_trace

    # -- turns ---------------------------------------------------------------------------------
    def turn(self, input: Any = None, *, name: Optional[str] = None) -> Turn:
        """A turn of this session for a ``with`` / ``async with`` block: ``with session.turn(
        user_message) as turn: ... turn.set_output(answer)``. Its spans are one trace (with
        ``trace_per="turn"``); the input and output are recorded on its root
        (``capture_turn_content``, on by default)."""
        return Turn(self, self._turns.next_index(), input=input, name=None if name is None else to_text(name, 256))

    @property
    def turns(self) -> list[Turn]:
        """The turns this process saw of the session, in order."""
        return self._turns.all()

    def turn_parent(self) -> otel_context.Context:
        if self._per_turn:
            return SESSION_ROOT_PARENT if self.sampled else DROPPED_ROOT_PARENT
        return self.record_context()

    def turn_opened(self, turn: Turn) -> None:
        """``turn`` (explicit or implicit) started: keep it, and per turn make its trace this session's."""
        self._turns.add(turn, self._per_turn)
        if self._insights is not None:
            self._insights.turn_started()
        if self._per_turn:
            self._owner.trace_opened(turn.trace_id_int, self)

    def enter_turn(self, turn: Turn, span: Span) -> Any:
        return current.set(self), otel_context.attach(trace.set_span_in_context(span))

    def leave_turn(self, token: Any) -> None:
        restore(token)

    def _implicit_turn(self, span: Any) -> dict[str, Any]:
        """``span`` is a top-level call of the session with no turn open: a turn of its own.
        Returns the span's stamp. (On the hot path: every top-level call in a session.)"""
        index = self._turns.next_index()
        self.turn_opened(Turn(self, index, span=span))
        self._figures.span_started()
        stamp = dict(self.stamp)
        stamp[semconv.TURN_INDEX] = index
        stamp[semconv.TURN_IMPLICIT] = True
        return stamp

    def on_span_start(
        self, span: Any, parent_context: Optional[otel_context.Context], by_trace: bool
    ) -> Mapping[str, Any]:
        """Called by the span processor as a span of this session starts: the attributes to
        stamp it with. A top-level span with no turn open starts an implicit turn."""
        turn: Optional[Turn]
        remote = self._remote_stamp
        if remote is not None and span.get_span_context().trace_id == self._record.trace_id:
            self._figures.span_started()
            return remote  # in the caller's turn
        if self._per_turn:
            turn = self._turns.by_trace.get(span.get_span_context().trace_id) if by_trace else None
            if turn is None:
                return self._implicit_turn(span)
        else:
            parent = span.parent
            if by_trace and parent is not None and parent.span_id == self._record.span_id:
                return self._implicit_turn(span)
            turn = self._turns.of_span(trace.get_current_span(parent_context)) if by_trace else None
        self._figures.span_started()
        if turn is None:
            return self.stamp
        if not turn.implicit:
            turn.span_started()  # an explicit turn's root waits for its open spans
        return turn.stamp

    def is_current_here(self) -> bool:
        """Whether the session's root is the current context here (a seam for ``Place``)."""
        if self._per_turn:
            return otel_context.get_value(TURN_START_KEY) is self
        return trace.get_current_span() is self._record.span

    def record_context(self) -> otel_context.Context:
        """The session's record (per session, its root) as a parent context."""
        return self._record.context()

    @contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[Span]:
        """A custom child span in this session, current while the block runs."""
        with self._owner.host.tracer.start_as_current_span(
            to_text(name, 256), context=self.span_parent(), attributes=to_attributes(attributes)
        ) as span:
            token = current.set(self)
            try:
                yield span
            finally:
                current.reset(token)

    def record_event(self, name: str, **attributes: Any) -> None:
        """Add an event to the current span if it belongs to this session, else to the root."""
        span = trace.get_current_span()
        if not self._owns_trace(span.get_span_context().trace_id):
            span = self._record.span
        span.add_event(to_text(name, 256), attributes=to_attributes(attributes))

    # -- channels (see sessionkit.channels) ----------------------------------------------------
    def open_channel(self, platform: str, channel_id: Any, purpose: Optional[str] = None, **attributes: Any) -> Channel:
        """Record that a chat channel was opened for this session; close it with ``Channel.close``.

        A channel still open when the session ends is a leak: its span ends with status ERROR
        and ``sessionkit.channel.leaked=true``, and a warning names it."""
        return self._channel_book().open_channel(platform, channel_id, purpose, attributes)

    def channel(self, platform: str, channel_id: Any, purpose: Optional[str] = None, **attributes: Any) -> Channel:
        """``with session.channel(...) as ch:``: a channel open for the block, closed at its end."""
        return self.open_channel(platform, channel_id, purpose, **attributes)

    def channel_attempt(self, platform: str, purpose: Optional[str] = None) -> AbstractContextManager[ChannelAttempt]:
        """One try at creating a channel: ``with session.channel_attempt("discord") as attempt:
        attempt.opened(api.create_channel())``. An exception, or leaving without ``opened``,
        records a failed attempt; the exception propagates."""
        return self._channel_book().attempt(platform, purpose)

    def close_channel(self, platform: str, channel_id: Any, reason: Optional[str] = None) -> None:
        """Close a channel of this session by its id; :class:`ChannelError` if it is not open here."""
        self._channel_book().find(platform, channel_id).close(reason)

    def _channel_book(self) -> SessionChannels:
        book = self._channels
        if book is None:
            with self._lock:
                if self._channels is None:
                    self._channels = SessionChannels(self, self._owner.channels)
                book = self._channels
        return book

    # -- history loads (see sessionkit.history) -------------------------------------------------
    def history_load(
        self, source: str, conversation_id: Optional[str] = None, turn: Optional[int] = None
    ) -> HistoryLoad:
        """``with session.history_load("postgres", conversation_id="c-1", turn=7) as load:``
        ... ``load.record(messages=len(rows), bytes=size, cache_hit=False)``. The conversation
        defaults to the session's ``thread_id``."""
        conversation = None if conversation_id is None else to_id(conversation_id, "conversation_id")
        return HistoryLoad(self, to_text(source, 128), conversation, turn)

    def history_loaded(self, load: HistoryLoad) -> Optional[int]:
        tracker = self._owner.history
        redundant = tracker.repeated(load)
        with self._lock:
            if self._history is None:
                self._history = HistoryStats()
            self._history.add(load, redundant or 0)
            found = self._history.finding() if redundant else None
        tracker.record_metrics(load)
        if found is not None:
            self.report_finding(found, "history")  # (once per session)
        return redundant

    # -- ending it ---------------------------------------------------------------------------
    def end(self, state: Union[EndState, str] = EndState.SUCCESS, reason: Optional[str] = None) -> None:
        """End the session. Ending a session that has ended already does nothing."""
        try:
            end_state = state if isinstance(state, EndState) else EndState(str(state).lower())
        except ValueError:
            raise ValueError(
                f"sessionkit: unknown end state {state!r}; use 'success', 'fail' or 'indeterminate'"
            ) from None
        if self._pid != pid():
            # A forked child inherited this session: the parent ends (and exports) it.
            logger.debug("sessionkit: session %s belongs to the parent process; not ended here", self.id)
            return
        with self._lock:
            if self.end_state is not None:
                return
            self.end_state = end_state
        if self._channels is not None:
            self._channels.leak_open("still open when its session ended")
        self.end_reason = None if reason is None else to_text(reason, 1024)
        self._end_ns = time.monotonic_ns()
        self._ended_ns = time.time_ns()
        for turn in self._turns.all():
            if turn.is_active and not turn.implicit:
                turn.end()
        self._owner.session_ended(self)
        if self._live is not None:
            with internal_errors("updating the session's display"):
                self._live.final()  # the last state stays in the notebook
        self.place.ended()  # started imperatively: what was current before comes back
        with self._lock:
            # Spans of the session still open (a stream read after the handler returned): the
            # record waits for the last of them, so that its figures count them.
            self._record_pending = self._figures.spans_open
        if self._record_pending:
            self._owner.record_waiting(self, True)
        else:
            self._finish_record()

    def finish_pending(self) -> None:
        """Send the record now if it is waiting for open spans (the client is closing)."""
        for turn in self._turns.all():
            turn.force_finish()
        self._send_waiting_record()

    def _send_waiting_record(self) -> None:
        """Send the record if it is waiting (once, whichever thread gets here first)."""
        with self._lock:
            pending, self._record_pending = self._record_pending, False
        if pending:
            self._owner.record_waiting(self, False)
            self._finish_record()

    def _finish_record(self) -> None:
        attrs: dict[str, Any] = {}
        insights = self._insights
        if insights is not None:
            with internal_errors("looking for findings"):
                insights.session_ended()
        with internal_errors("recording the end of a session"):
            if insights is not None:
                attrs.update(insights.record_attributes())
            with self._lock:
                attrs.update(self._figures.record_attributes())
                attrs[semconv.SESSION_TURNS] = self._turns.count
        self._record.finish(attrs, self.end_state, self.end_reason, self._ended_ns)

    # -- figures -----------------------------------------------------------------------------
    def on_span_end(self, span: ReadableSpan) -> None:
        """Called by the span processor for each span that ends in this session."""
        attrs = attributes_of(span)
        kind = attrs.get(semconv.SPAN_TYPE)
        kept = self._kept
        if kept is not None and kind not in semconv.SESSION_SPAN_TYPES:
            kept.add(span, attrs)  # for the display: the agent's spans and turn blocks' roots
        if kind is not None:
            return  # the record, the start marker and explicit turns' roots: not spans of the turns
        by_index = self._turns.by_index
        turn = by_index.get(attrs.get(semconv.TURN_INDEX)) if by_index else None  # type: ignore[arg-type]
        figures = self._figures
        figures.span_ended()
        try:
            operation = attrs.get(semconv.GEN_AI_OPERATION_NAME)  # (counts_as_llm_call, inlined)
            llm = operation in semconv.LLM_OPERATIONS if operation is not None else is_llm_span(attrs)
            failed = span.status.status_code is StatusCode.ERROR
            tool = operation == semconv.OPERATION_EXECUTE_TOOL
            if llm or failed or tool:
                counted = llm and not attrs.get(semconv.LLM_COUNTED_IN_CHILD)
                if llm or failed:
                    figures.add(span, attrs, turn, counted)
                insights = self._insights
                if insights is None and self._looks:
                    insights = self._insights_now()  # (made by the first LLM call, tool call or failure)
                if insights is not None:
                    insights.span_ended(span, attrs, turn.index if turn is not None else None, counted, tool, failed)
            # (the common case, no LLM call, tool call or error, adds nothing more and takes no lock)
        finally:
            if turn is not None:
                if not turn.implicit:
                    turn.span_ended()
                elif span.context is not None and span.context.span_id == turn.span_id:
                    turn.root_ended(span.end_time)
                    self.turn_finished(turn, span.status.status_code is StatusCode.ERROR)
            if self._record_pending and not figures.spans_open:
                self._send_waiting_record()  # the last open span of an ended session

    # -- findings and the budget (sessionkit._insights) ----------------------------------------
    @property
    def findings(self) -> list[Finding]:
        """What was found in the session so far (docs/insights.md), oldest first."""
        insights = self._insights
        return insights.findings.findings if insights is not None else []

    def _insights_now(self) -> Optional[SessionInsights]:
        insights = self._insights
        if insights is None:
            config = self._owner.host.config
            if not SessionInsights.wanted(config):
                return None
            with self._lock:
                if self._insights is None:
                    self._insights = SessionInsights(config, self.id, None, self._publish)
                insights = self._insights
        return insights

    def turn_finished(self, turn: Turn, failed: bool) -> None:
        insights = self._insights if not failed else self._insights_now()
        if insights is not None:  # (else no LLM call, tool call or failure in the session yet)
            insights.turn_ended(turn, failed)

    def report_finding(self, finding: Finding, key: Any = None) -> None:
        """File a finding of sessionkit's own figures (history loads, channels): a seam."""
        insights = self._insights_now()
        if insights is not None:
            insights.findings.report(finding, key)

    def refuse_llm_request(self) -> None:
        """Before an LLM request of the session is sent (the wire hook): raises
        :class:`BudgetExceeded` when the budget says so."""
        insights = self._insights
        if insights is not None:
            insights.refuse()

    def _publish(self, finding: Finding) -> None:
        """A new finding: logged once, and an event on the record and on its turn's open root."""
        log_finding(finding, self.id)
        attrs = finding.attributes()
        record = self._record.span
        if record.is_recording():
            record.add_event(semconv.EVENT_FINDING, attrs, timestamp=finding.time_ns)
        if finding.turn is not None:
            turn = self._turns.by_index.get(finding.turn)
            if turn is not None:
                turn.note(semconv.EVENT_FINDING, attrs, finding.time_ns)

    def handed_on(self) -> None:
        """A request carried the session to another service (a seam of the outgoing propagation)."""
        self._figures.handed_on()

    def summary(self) -> SessionSummary:
        """The session's figures so far (or final, once it has ended)."""
        from ._models import SessionSummary

        turns = [turn.summary() for turn in self._turns.all()]
        channels = self._channels
        with self._lock:
            return SessionSummary(
                session_id=self.id,
                previous_session_id=self.previous_id,
                trace_per="turn" if self._per_turn else "session",
                sampled=self.sampled,
                turn_count=self._turns.count,
                turns=turns,
                name=self.name,
                thread_id=self.thread_id,
                user_id=self.user_id,
                tags=list(self.tags),
                trace_id=self.trace_id,
                end_state=self.end_state,
                end_reason=self.end_reason,
                started_at=self.started_at,
                ended_at=self.ended_at,
                duration_seconds=self.duration_seconds,
                **self._figures.summary_fields(),
                **(channels.summary_fields() if channels is not None else {}),  # (else the model's zeros)
                **(self._history.summary_fields() if self._history is not None else {}),
                findings=self.findings,
            )

    # -- seams the registry and the scopes use ------------------------------------------------
    @property
    def root_context(self) -> otel_context.Context:
        """The context new spans of the session parent under when nothing else is current, and
        what is made current while the session is (``with`` block, ``start_session``): per turn,
        a context with no span (each top-level call there is a new trace, a turn); per session,
        the root."""
        return self._turn_context if self._per_turn else self.record_context()

    @property
    def root_trace_id(self) -> int:
        """The session's trace id as an int (the key spans are found by)."""
        return self._record.trace_id

    def uses_trace(self, trace_id: int) -> bool:
        """Whether spans may still start in ``trace_id`` of the session: the record of a live
        session, or an open turn."""
        if not self.is_active:
            return False
        if trace_id == self._record.trace_id:
            return True
        return self._turns.is_open(trace_id)

    @property
    def continues_a_caller(self) -> bool:
        """Whether the session continues a caller's turn from another process (one request's worth)."""
        return self._remote_stamp is not None

    @property
    def started_in_this_process(self) -> bool:
        """False in a forked child for the sessions its parent started."""
        return self._pid == pid()

    # -- as a context manager ------------------------------------------------------------------
    def __enter__(self) -> Session:
        self.place.enter()
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        try:
            if exc is not None and not is_clean_exit(exc):
                self.end(EndState.FAIL, f"{type(exc).__name__}: {exc}")
            else:
                self.end(EndState.SUCCESS)
        finally:
            self.place.leave()

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def html(self, turn: Optional[int] = None) -> str:
        """The session's display as self-contained HTML: its figures and cost, then a waterfall
        of its turns' spans (kept for display: ``display_spans``); ``turn``: that turn alone."""
        from ._render import session_waterfall_html

        return session_waterfall_html(self.summary(), self._kept, self._owner.host.config, turn)

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        """In a notebook: the waterfall, updated in place while the session runs."""
        from ._waterfall import LiveDisplay

        live = LiveDisplay(self._repr_html_, self._kept if self.is_active else None)
        live.show()
        self._live = live

    def __repr__(self) -> str:
        state = self.end_state.value if self.end_state else "active"
        return f"<Session {self.name!r} id={self.id} {state}>"


def _new_id() -> str:
    """A random version-4 UUID string, drawn like OpenTelemetry's trace ids (uuid.uuid4() makes
    a system call for entropy each time, and the id needs uniqueness, not secrecy)."""
    n = (random.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

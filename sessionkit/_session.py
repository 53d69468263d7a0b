"""Session: one conversation of an agent, a sequence of turns.

With ``trace_per="turn"`` (the default) each turn is a trace of its own, its spans stamped with
the session's ``session.id``, and the session's own record (identity, end state and reason,
totals) is a span of its own trace that carries the id as ``sessionkit.session.id`` (so a
dashboard grouping traces by ``session.id`` lists the turns only). With ``"session"`` the record
is the root of one trace holding every turn, as a tree.

Also here: ``current``, the ContextVar that holds the session the running code belongs to
(asyncio tasks inherit it; ``_context`` carries it into threads and pools), the few functions
the session registry uses to make a session current and to find its root.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, Status, StatusCode

from . import semconv
from ._channels import Channel, ChannelAttempt, ChannelCounts, ChannelError, ChannelRegistry, abandon, leak
from ._channels import attempt as channel_attempt
from ._context import pid
from ._errors import internal_errors
from ._history import HistoryLoad, HistoryStats, HistoryTracker
from ._keep import SpanKeep
from ._payloads.body import fit_json
from ._payloads.llm import is_llm_span
from ._propagation import session_kept
from ._spans import (
    DROPPED_ROOT_PARENT,
    SESSION_ROOT_PARENT,
    TURN_START_KEY,
    attributes_of,
    is_clean_exit,
    set_clean_attributes,
    set_ok_status,
)
from ._tally import Tally
from ._turn import NO_FIGURES, Figures, Turn, force_finish, root_ended, span_ended, span_started, started_ns
from ._types import EndState, Host
from ._values import MAX_STRING, as_count, to_attributes, to_id, to_tags, to_text

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from ._client import Client  # type-only: the public type of ``Session.client``
    from ._models import SessionSummary

__all__ = ["Session", "SessionOwner", "current"]

logger = logging.getLogger("sessionkit")

current: contextvars.ContextVar[Optional[Session]] = contextvars.ContextVar("sessionkit_session", default=None)
"""The session the running code belongs to (None outside any session)."""


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
    __slots__ = (
        "_owner",
        "id",
        "name",
        "thread_id",
        "user_id",
        "tags",
        "metadata",
        "_started_ns",
        "_ended_ns",
        "end_state",
        "end_reason",
        "_start_ns",
        "_end_ns",
        "_pid",
        "_lock",
        "_span_tally",
        "_figures",
        "_ttfc_sum",
        "_ttfc_count",
        "_channel_counts",
        "_history",
        "_previous",
        "_previous_otel",
        "_tokens",
        "stamp",
        "_root",
        "_root_context",
        "_trace_id",
        "_root_span_id",
        "_per_turn",
        "previous_id",
        "_turns",
        "_turns_by_trace",
        "_turn_count",
        "_open_started",
        "_record_pending",
        "_turn_context",
        "sampled",
        "_remote_stamp",
        "_kept",
        "_live",
        "__weakref__",
    )

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
        remote: Optional[tuple[SpanContext, Optional[int]]] = None,
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
        # Figures fed by the span processor as spans end.
        self._span_tally: Optional[Tally] = None  # spans ended in it (not its root); made by the first one
        self._figures: Optional[Figures] = None  # LLM calls, tokens, cost, errors: made by the first
        self._ttfc_sum = 0.0
        self._ttfc_count = 0
        self._channel_counts: Optional[ChannelCounts] = None  # made by the first channel or attempt
        self._history: Optional[HistoryStats] = None  # made by the first history load
        # Restores for the imperative start_session(): what was current before.
        self._previous: Optional[Session] = None
        self._previous_otel: Optional[otel_context.Context] = None
        # Restores for context-manager use: (session token, OTel token) per entered block.
        self._tokens: list[tuple[Any, object]] = []
        self._per_turn = owner.host.config.trace_per == "turn"
        self._turns: OrderedDict[int, Turn] = OrderedDict()  # by index, oldest first (trimmed from the front)
        self._turns_by_trace: dict[int, Turn] = {}
        self._turn_count = 0  # the last turn's index
        # The session's spans (turn roots aside) started; with _span_tally (ended), what the
        # record waits for. Made by the first span, like _span_tally.
        self._open_started: Optional[Tally] = None
        self._record_pending = False
        self.stamp: dict[str, Any] = {}
        self._rebuild_stamp()
        self.sampled: bool = session_kept(self.id, owner.host.config.sample_rate)
        """Whether ``sample_rate`` keeps this session (decided from its id: the same everywhere).
        A dropped session's spans are not recorded; its summary has its identity, state, times,
        explicit turns, channels and history loads, but no span figures."""
        self._remote_stamp: Optional[dict[str, Any]] = None
        self._kept: Optional[SpanKeep] = owner.keep_for_display()
        self._live: Any = None  # the live notebook display, once shown
        if remote is None:
            # An empty parent context: the record (or, per session, the root) is always a new trace.
            parent = SESSION_ROOT_PARENT if self.sampled else DROPPED_ROOT_PARENT
            self._root: Span = owner.host.tracer.start_span(self.name, context=parent)
            set_clean_attributes(self._root, self.root_attributes(), fresh=True)
            self._root_context: Optional[otel_context.Context] = trace.set_span_in_context(
                self._root, otel_context.Context()
            )
            # The parent of a span of this session started outside its turns: a new trace (an
            # implicit turn) that the processor knows for this session's by the value it carries.
            self._turn_context = otel_context.set_value(TURN_START_KEY, self, otel_context.Context())
        else:
            # Continued from a caller in another process (``continue_session``): no record of
            # its own (the caller's process has it); spans sit under the caller's span, in the
            # caller's turn (its trace), stamped with the caller's turn index.
            span_context, turn_index = remote
            self._root = NonRecordingSpan(span_context)
            self._root_context = trace.set_span_in_context(self._root, otel_context.Context())
            self._turn_context = self._root_context
            stamp = dict(self.stamp)
            if turn_index is not None:
                stamp[semconv.TURN_INDEX] = turn_index
            self._remote_stamp = stamp
        root = self._root.get_span_context()
        self._trace_id: int = root.trace_id
        self._root_span_id: int = root.span_id

    # -- identity --------------------------------------------------------------------------
    @property
    def trace_id(self) -> str:
        """The id of the session's trace, as 32 hex digits."""
        return format(self._trace_id, "032x")

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

    def root_attributes(self) -> dict[str, Any]:
        attrs = dict(self.stamp)
        if self._per_turn:  # the record is no turn: dashboards group turns by session.id
            attrs[semconv.RECORD_SESSION_ID] = attrs.pop(semconv.SESSION_ID)
            if semconv.GEN_AI_CONVERSATION_ID in attrs:
                attrs[semconv.RECORD_THREAD_ID] = attrs.pop(semconv.GEN_AI_CONVERSATION_ID)
        if self.previous_id is not None:
            attrs[semconv.SESSION_PREVIOUS_ID] = self.previous_id
        attrs[semconv.SPAN_TYPE] = semconv.SPAN_TYPE_SESSION
        attrs[semconv.OPENINFERENCE_SPAN_KIND] = "CHAIN"
        if self.metadata:
            attrs[semconv.METADATA] = fit_json(self.metadata, MAX_STRING)
        return attrs

    # -- changing it -------------------------------------------------------------------------
    def add_tags(self, *tags: Any) -> None:
        """Add tags to the session; spans that start from now on carry them."""
        new = [t for t in to_tags(tags) if t not in self.tags]
        if not new:
            return
        self.tags = self.tags + new
        self._rebuild_stamp()
        self._root.set_attribute(semconv.TAGS, tuple(self.tags))

    def set_metadata(self, metadata: Optional[Mapping[Any, Any]] = None, /, **values: Any) -> None:
        """Merge key/value metadata into the session (recorded on its root span as JSON)."""
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise TypeError("set_metadata() takes a mapping or keyword arguments, e.g. set_metadata(tier='pro')")
            self.metadata.update(metadata)
        self.metadata.update(values)
        self._root.set_attribute(semconv.METADATA, fit_json(self.metadata, MAX_STRING))

    def span_parent(self) -> Optional[otel_context.Context]:
        """Parent for a new span of this session: the current span if it is in one of this
        session's traces (None: use the current context); else, per turn, a new trace (the span
        is a turn of its own), and per session the session's root."""
        if self._owns_trace(trace.get_current_span().get_span_context().trace_id):
            return None
        return self._current_context()

    def _owns_trace(self, trace_id: int) -> bool:
        """Whether ``trace_id`` is this session's: its record's (per session, its one trace) or a turn's."""
        return trace_id == self._trace_id or trace_id in self._turns_by_trace

    # -- turns ---------------------------------------------------------------------------------
    def turn(self, input: Any = None, *, name: Optional[str] = None) -> Turn:
        """A turn of this session for a ``with`` / ``async with`` block: ``with session.turn(
        user_message) as turn: ... turn.set_output(answer)``. Its spans are one trace (with
        ``trace_per="turn"``); the input and output are recorded when content is captured."""
        return Turn(self, self._next_turn(), input=input, name=None if name is None else to_text(name, 256))

    def _next_turn(self) -> int:
        with self._lock:
            self._turn_count += 1
            return self._turn_count

    @property
    def turns(self) -> list[Turn]:
        """The turns this process saw of the session, in order."""
        return list(self._turns.values())

    def turn_parent(self) -> otel_context.Context:
        if self._per_turn:
            return SESSION_ROOT_PARENT if self.sampled else DROPPED_ROOT_PARENT
        return self.record_context()

    def _trim_turns(self) -> None:
        """Keep the newest ``KEPT_TURNS`` turns (and the open ones): a session of many turns
        holds a bounded record of them; its totals still count every one."""
        with self._lock:
            turns = self._turns
            still_open: list[tuple[int, Turn]] = []
            while len(turns) > KEPT_TURNS:
                index, turn = turns.popitem(last=False)
                if turn.is_active:
                    still_open.append((index, turn))  # kept: its spans still come in
                else:
                    self._turns_by_trace.pop(turn.trace_id_int, None)
            for index, turn in still_open:
                turns[index] = turn
                turns.move_to_end(index, last=False)

    def turn_opened(self, turn: Turn) -> None:
        """``turn`` (explicit or implicit) started: keep it, and per turn make its trace this session's."""
        turns = self._turns
        turns[turn.index] = turn
        if len(turns) > KEPT_TURNS + 64:
            self._trim_turns()
        if self._per_turn:
            trace_id = turn.trace_id_int
            self._turns_by_trace[trace_id] = turn
            self._owner.trace_opened(trace_id, self)

    def enter_turn(self, turn: Turn, span: Span) -> Any:
        return current.set(self), otel_context.attach(trace.set_span_in_context(span))

    def leave_turn(self, token: Any) -> None:
        restore(token)

    def _implicit_turn(self, span: Any) -> dict[str, Any]:
        """``span`` is a top-level call of the session with no turn open: a turn of its own.
        Returns the span's stamp. (On the hot path: every top-level call in a session.)"""
        index = self._next_turn()
        self.turn_opened(Turn(self, index, span=span))
        (self._open_started or self._started_tally()).add()
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
        if remote is not None and span.get_span_context().trace_id == self._trace_id:
            (self._open_started or self._started_tally()).add()
            return remote  # in the caller's turn
        if self._per_turn:
            turn = self._turns_by_trace.get(span.get_span_context().trace_id) if by_trace else None
            if turn is None:
                return self._implicit_turn(span)
        else:
            parent = span.parent
            if by_trace and parent is not None and parent.span_id == self._root_span_id:
                return self._implicit_turn(span)
            turn = self._turn_of(trace.get_current_span(parent_context)) if by_trace else None
        (self._open_started or self._started_tally()).add()
        if turn is None:
            return self.stamp
        if not turn.implicit:
            span_started(turn)  # an explicit turn's root waits for its open spans
        return turn.stamp

    def _turn_of(self, span: Any) -> Optional[Turn]:
        index = attributes_of(span).get(semconv.TURN_INDEX)
        return self._turns.get(index) if isinstance(index, int) else None

    def _current_context(self) -> otel_context.Context:
        """What is made current while the session is (``with`` block, ``start_session``): per
        turn, a context with no span (each top-level call there is a new trace, a turn); per
        session, the root."""
        return self._turn_context if self._per_turn else self.record_context()

    def _is_current_here(self) -> bool:
        if self._per_turn:
            return otel_context.get_value(TURN_START_KEY) is self
        return trace.get_current_span() is self._root

    def record_context(self) -> otel_context.Context:
        """The session's root as a parent context; after the session ended, made again on first
        use (an ended session keeps only its root's ids)."""
        context = self._root_context
        if context is None:
            context = self._root_context = trace.set_span_in_context(self._root, otel_context.Context())
        return context

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
            span = self._root
        span.add_event(to_text(name, 256), attributes=to_attributes(attributes))

    # -- channels (see sessionkit.channels) ----------------------------------------------------
    def open_channel(self, platform: str, channel_id: Any, purpose: Optional[str] = None, **attributes: Any) -> Channel:
        """Record that a chat channel was opened for this session; close it with ``Channel.close``.

        A channel still open when the session ends is a leak: its span ends with status ERROR
        and ``sessionkit.channel.leaked=true``, and a warning names it."""
        if not isinstance(platform, str) or not platform:
            raise TypeError(f"sessionkit: platform must be a non-empty string such as 'discord', got {platform!r}")
        if channel_id is None or channel_id == "":
            raise TypeError("sessionkit: channel_id is required: the platform's id of the channel")
        channel = Channel(
            self,
            platform,
            to_text(channel_id, 256),
            None if purpose is None else to_text(purpose, 256),
            to_attributes(attributes),
        )
        try:
            self._owner.channels.add(channel)
        except Exception:
            abandon(channel)
            raise
        with self._lock:
            counts = self._channels()
            counts.open.append(channel)
            counts.opened += 1
            counts.attempts_in_row[platform] = 0
        return channel

    def channel(self, platform: str, channel_id: Any, purpose: Optional[str] = None, **attributes: Any) -> Channel:
        """``with session.channel(...) as ch:``: a channel open for the block, closed at its end."""
        return self.open_channel(platform, channel_id, purpose, **attributes)

    def channel_attempt(self, platform: str, purpose: Optional[str] = None) -> AbstractContextManager[ChannelAttempt]:
        """One try at creating a channel: ``with session.channel_attempt("discord") as attempt:
        attempt.opened(api.create_channel())``. An exception, or leaving without ``opened``,
        records a failed attempt; the exception propagates."""
        with self._lock:
            in_row = self._channels().attempts_in_row
            number = in_row[platform] = in_row.get(platform, 0) + 1
        return channel_attempt(self, platform, purpose, number)

    def close_channel(self, platform: str, channel_id: Any, reason: Optional[str] = None) -> None:
        """Close a channel of this session by its id; :class:`ChannelError` if it is not open here."""
        wanted = to_text(channel_id, 256)
        with self._lock:
            open_now = self._channel_counts.open if self._channel_counts is not None else []
            channel = next((c for c in open_now if c.platform == platform and c.channel_id == wanted), None)
        if channel is None:
            raise ChannelError(f"sessionkit: no open {platform} channel {wanted!r} in session {self.id}")
        channel.close(reason)

    def _channels(self) -> ChannelCounts:
        """The session's channel figures, made on first use (call with the lock held)."""
        if self._channel_counts is None:
            self._channel_counts = ChannelCounts()
        return self._channel_counts

    def channel_closed(self, channel: Channel) -> None:
        self._owner.channels.forget(channel)
        with self._lock:
            counts = self._channels()
            if channel in counts.open:
                counts.open.remove(channel)
            if channel.leaked:
                counts.leaked += 1
            else:
                counts.closed += 1

    def channel_attempted(self, platform: str, ok: bool) -> None:
        with self._lock:
            counts = self._channels()
            counts.attempts += 1
            if not ok:
                counts.attempts_failed += 1
        self._owner.channels.attempt_finished(platform, ok)

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
        tracker.record_metrics(load)
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
            leaked = list(self._channel_counts.open) if self._channel_counts is not None else []
        for channel in leaked:
            leak(channel, "still open when its session ended")
        self.end_reason = None if reason is None else to_text(reason, 1024)
        self._end_ns = time.monotonic_ns()
        self._ended_ns = time.time_ns()
        for turn in list(self._turns.values()):
            if turn.is_active and not turn.implicit:
                turn.end()
        self._owner.session_ended(self)
        live = self._live
        if live is not None:
            try:
                if self._kept is not None:
                    self._kept.listen(None)
                live.final()  # the last state stays in the notebook
            except Exception:
                logger.debug("sessionkit: could not update the session's display", exc_info=True)
        if current.get() is self and self._previous_otel is not None:
            # Ending an imperatively started session where it was started: restore what was
            # current before it, skipping sessions that ended meanwhile (A, then B, A ended
            # first: ending B restores what was current before A, never A's ended root).
            # (Context-manager sessions restore in __exit__.)
            previous: Optional[Session] = self._previous
            outer: Optional[otel_context.Context] = self._previous_otel
            while previous is not None and not previous.is_active and previous._previous_otel is not None:
                outer = previous._previous_otel
                previous = previous._previous
            if previous is not None and not previous.is_active:
                previous = None  # an ended session started in a block: its block restores the rest
            current.set(previous)
            if self._is_current_here() and outer is not None:
                otel_context.attach(outer)
        with self._lock:
            # Spans of the session still open (a stream read after the handler returned): the
            # record waits for the last of them, so that its figures count them.
            self._record_pending = self._spans_counted() < self._spans_started()
        if self._record_pending:
            self._owner.record_waiting(self, True)
        else:
            self._finish_root()

    def _finish_pending(self) -> None:
        """End the record now if it is waiting for open spans (the client is shutting down)."""
        for turn in list(self._turns.values()):
            force_finish(turn)
        self._send_waiting_record()

    def _send_waiting_record(self) -> None:
        """Send the record if it is waiting (once, whichever thread gets here first)."""
        with self._lock:
            pending, self._record_pending = self._record_pending, False
        if pending:
            self._owner.record_waiting(self, False)
            self._finish_root()

    def _finish_root(self) -> None:
        root = self._root
        with internal_errors("recording the end of a session"):
            state = self.end_state
            spans = self._spans_counted()
            with self._lock:
                f = self._figures or NO_FIGURES
                figures = (f.llm_calls, f.input_tokens, f.output_tokens, f.errors)
                cost, turns = f.cost_usd, self._turn_count
            state_text = _STATE_TEXT[state] if state is not None else ""
            attrs: dict[str, Any] = dict(zip(_END_KEYS, (state_text, spans, *figures)))
            attrs[semconv.SESSION_TURNS] = turns
            if cost is not None:
                attrs[semconv.SESSION_COST] = cost
            elif figures[0]:
                attrs[semconv.SESSION_COST_INCOMPLETE] = True
            if self.end_reason is not None:
                attrs[semconv.SESSION_END_REASON] = self.end_reason
            set_clean_attributes(root, attrs)
            if state is EndState.FAIL:
                root.set_status(Status(StatusCode.ERROR, self.end_reason))
            elif state is EndState.SUCCESS:
                set_ok_status(root)
        root.end(end_time=self._ended_ns)
        # What an ended session keeps is small: late spans still find it (by trace id) and
        # parent under its root's context, but the ended root and its contexts are let go.
        self._root = NonRecordingSpan(root.get_span_context())
        self._root_context = None  # made again by _context() if ever needed
        # (_previous and _previous_otel stay: a session started after this one, while this one
        # was current, restores past it through them when it ends.)

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
        turn = self._turns.get(attrs.get(semconv.TURN_INDEX)) if self._turns else None  # type: ignore[arg-type]
        tally = self._span_tally
        if tally is None:
            with self._lock:  # once per session: two spans ending at once must share one tally
                if self._span_tally is None:
                    self._span_tally = Tally()
                tally = self._span_tally
        tally.add()
        try:
            operation = attrs.get(semconv.GEN_AI_OPERATION_NAME)  # (counts_as_llm_call, inlined)
            llm = operation in semconv.LLM_OPERATIONS if operation is not None else is_llm_span(attrs)
            if llm or span.status.status_code is StatusCode.ERROR:
                self._add_figures(span, attrs, turn, llm and not attrs.get(semconv.LLM_COUNTED_IN_CHILD))
            # (the common case, no LLM call and no error, adds nothing more and takes no lock)
        finally:
            if turn is not None:
                if not turn.implicit:
                    span_ended(turn)
                elif span.context is not None and span.context.span_id == turn.span_id:
                    root_ended(turn, span.end_time)
            if self._record_pending and self._spans_counted() >= self._spans_started():
                self._send_waiting_record()  # the last open span of an ended session

    def _add_figures(self, span: ReadableSpan, attrs: Mapping[str, Any], turn: Optional[Turn], llm: bool) -> None:
        """An LLM call or an error ended in the session (and in ``turn``): add it up."""
        error = span.status.status_code is StatusCode.ERROR
        with self._lock:
            totals = self._figures
            if totals is None:
                totals = self._figures = Figures()
            figures: Optional[Figures] = None
            if turn is not None:
                figures = turn.figures
                if figures is None:
                    figures = turn.figures = Figures()
            if llm:
                tokens_in = as_count(attrs.get(semconv.GEN_AI_USAGE_INPUT_TOKENS))
                tokens_out = as_count(attrs.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS))
                found = attrs.get(semconv.LLM_COST_TOTAL)
                cost = float(found) if isinstance(found, (int, float)) else None
                missing = attrs.get(semconv.LLM_USAGE_MISSING) is True
                totals.add_llm_call(tokens_in, tokens_out, cost, missing)
                ttfc = attrs.get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
                if isinstance(ttfc, float):
                    self._ttfc_sum += ttfc
                    self._ttfc_count += 1
                if figures is not None and turn is not None:  # (turn: for mypy; figures is its)
                    figures.add_llm_call(tokens_in, tokens_out, cost, missing)
                    if isinstance(ttfc, float) and span.start_time is not None:
                        first = (span.start_time - started_ns(turn)) / 1e9 + ttfc
                        if figures.ttfc is None or first < figures.ttfc:
                            figures.ttfc = first
            if error:
                totals.errors += 1
                if figures is not None:
                    figures.errors += 1

    def _started_tally(self) -> Tally:
        with self._lock:
            if self._open_started is None:
                self._open_started = Tally()
            return self._open_started

    def _spans_started(self) -> int:
        tally = self._open_started
        return 0 if tally is None else tally.value

    def _spans_counted(self) -> int:
        tally = self._span_tally
        return 0 if tally is None else tally.value

    def summary(self) -> SessionSummary:
        """The session's figures so far (or final, once it has ended)."""
        from ._models import SessionSummary

        end_ns = self._end_ns if self._end_ns is not None else time.monotonic_ns()
        history = self._history or HistoryStats()
        channels = self._channel_counts or ChannelCounts()
        turns = [turn.summary() for turn in list(self._turns.values())]
        f = self._figures or NO_FIGURES
        with self._lock:
            return SessionSummary(
                session_id=self.id,
                previous_session_id=self.previous_id,
                trace_per="turn" if self._per_turn else "session",
                sampled=self.sampled,
                turn_count=self._turn_count,
                turns=turns,
                cost_usd=f.cost_usd,
                cost_incomplete=bool(f.unpriced),
                llm_calls_without_usage=f.without_usage,
                name=self.name,
                thread_id=self.thread_id,
                user_id=self.user_id,
                tags=list(self.tags),
                trace_id=self.trace_id,
                end_state=self.end_state,
                end_reason=self.end_reason,
                started_at=self.started_at,
                ended_at=self.ended_at,
                duration_seconds=(end_ns - self._start_ns) / 1e9,
                span_count=self._spans_counted(),
                llm_calls=f.llm_calls,
                input_tokens=f.input_tokens,
                output_tokens=f.output_tokens,
                errors=f.errors,
                llm_time_to_first_chunk_seconds=self._ttfc_sum / self._ttfc_count if self._ttfc_count else None,
                channels_opened=channels.opened,
                channels_closed=channels.closed,
                channels_leaked=channels.leaked,
                channel_attempts=channels.attempts,
                channel_attempts_failed=channels.attempts_failed,
                history_loads=history.loads,
                history_load_seconds=history.seconds,
                history_messages_loaded=history.messages,
                history_messages_redundant=history.redundant,
                history_load_growth_seconds_per_turn=history.growth_per_turn(),
                history_advice=history.advice(),
            )

    # -- seams the registry and the scopes use ------------------------------------------------
    def start_here(self) -> None:
        """Make the session current in the calling context until it ends (``start_session``);
        what was current before comes back when it ends here."""
        self._previous = current.get()
        self._previous_otel = otel_context.get_current()
        current.set(self)
        otel_context.attach(self._current_context())

    @property
    def root_context(self) -> otel_context.Context:
        """The context new spans of the session parent under when nothing else is current."""
        return self._current_context()

    @property
    def root_trace_id(self) -> int:
        """The session's trace id as an int (the key spans are found by)."""
        return self._trace_id

    def uses_trace(self, trace_id: int) -> bool:
        """Whether spans may still start in ``trace_id`` of the session: the record of a live
        session, or an open turn."""
        if not self.is_active:
            return False
        if trace_id == self._trace_id:
            return True
        turn = self._turns_by_trace.get(trace_id)
        return turn is not None and turn.is_active

    def finish_pending(self) -> None:
        """Send the record now if it is waiting for open spans (the client is closing)."""
        self._finish_pending()

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
        self._tokens.append(make_current(self))
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        try:
            if exc is not None and not is_clean_exit(exc):
                self.end(EndState.FAIL, f"{type(exc).__name__}: {exc}")
            else:
                self.end(EndState.SUCCESS)
        finally:
            if self._tokens:
                try:
                    restore(self._tokens.pop())
                except ValueError:
                    logger.debug("sessionkit: session %s exited in another context than it entered", self.id)

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

        live = LiveDisplay(self._repr_html_)
        live.show()
        self._live = live
        kept = self._kept
        if kept is not None and self.end_state is None:
            kept.listen(live.changed)

    def __repr__(self) -> str:
        state = self.end_state.value if self.end_state else "active"
        return f"<Session {self.name!r} id={self.id} {state}>"


KEPT_TURNS = 1000
"""Turns a session keeps (the newest) for its summary; late spans of older ones count in the
session's totals only."""

_END_KEYS = (
    semconv.SESSION_END_STATE,
    semconv.SESSION_SPAN_COUNT,
    semconv.SESSION_LLM_CALLS,
    semconv.SESSION_INPUT_TOKENS,
    semconv.SESSION_OUTPUT_TOKENS,
    semconv.SESSION_ERRORS,
)
_STATE_TEXT = {state: state.value for state in EndState}


def _new_id() -> str:
    """A random version-4 UUID string, drawn like OpenTelemetry's trace ids (uuid.uuid4() makes
    a system call for entropy each time, and the id needs uniqueness, not secrecy)."""
    n = (random.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- what the session registry does with a session --------------------------------------------------
def make_current(session: Session) -> tuple[contextvars.Token[Optional[Session]], object]:
    """Make ``session`` (and its root span) current here; ``restore`` the result to undo it."""
    return current.set(session), otel_context.attach(session._current_context())


def restore(token: tuple[contextvars.Token[Optional[Session]], object]) -> None:
    """Undo ``make_current``. ValueError when called in another context than the one it was made current in."""
    current.reset(token[0])
    otel_context.detach(token[1])  # type: ignore[arg-type]

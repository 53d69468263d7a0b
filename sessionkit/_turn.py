"""Turn: one exchange of a session (a user's message and the agent's answer), one trace.

A turn is explicit (``with session.turn("hi") as turn: ... turn.set_output(answer)``, or a
``@client.turn`` function) or implicit: a top-level call in a session with no open turn (a
decorated function, an LLM call seen on the wire, a channel, a history load, another library's
span) is a turn of its own, its span the turn's root. With ``trace_per="turn"`` each turn's root
is a new trace; with ``"session"`` it is a child of the session's root.

The turn's figures (LLM calls, tokens, cost, errors, time to first token) are fed by the span
processor as the turn's spans end. An explicit turn's root ends when its block does, unless
spans of the turn are still open (a streamed answer read after the block): then it ends when the
last of them does, with the block's end time, so its figures count the stream.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Protocol, cast

from opentelemetry import context as otel_context
from opentelemetry.trace import Span

from . import semconv
from ._errors import internal_errors
from ._figures import NO_FIGURES, Figures
from ._payloads.body import captured
from ._spans import SESSION_ROOT_PARENT, attributes_of, is_clean_exit, record_error, set_clean_attributes
from ._tally import Tally
from ._types import Host

if TYPE_CHECKING:
    from ._models import TurnSummary
    from ._session import Session  # type-only: the public type of ``Turn.session``

__all__ = ["KEPT_TURNS", "Turn", "TurnIndex", "TurnOwner"]

logger = logging.getLogger("sessionkit")


class TurnOwner(Protocol):
    """What a turn needs of its session. Implemented by ``Session``."""

    id: str

    @property
    def client(self) -> Host: ...

    @property
    def stamp(self) -> Mapping[str, Any]: ...

    def turn_parent(self) -> otel_context.Context:
        """The parent context of a new turn's root (empty: a new trace; else the session's root)."""
        ...

    def turn_opened(self, turn: Turn) -> None:
        """``turn`` started: index it and make it findable by its trace."""
        ...

    def enter_turn(self, turn: Turn, span: Span) -> Any:
        """Make the session and ``turn``'s root current; returns what ``leave_turn`` takes."""
        ...

    def leave_turn(self, token: Any) -> None: ...

    def turn_finished(self, turn: Turn, failed: bool) -> None:
        """``turn`` ended (an explicit one just before its root span ends): its findings."""
        ...

    def html(self, turn: Optional[int] = None) -> str:
        """The session's display as HTML (``turn``: that turn's alone)."""
        ...


_NO_STAMP: Mapping[str, Any] = {}


class Turn:
    """One turn of a session. Get one with :meth:`Session.turn` (explicit) or find the implicit
    ones in :meth:`Session.summary`; do not construct it directly."""

    __slots__ = (
        "owner",
        "index",
        "implicit",
        "_input",
        "_output",
        "_output_set",
        "_name",
        "_span",
        "span_id",
        "_trace_id",
        "_start_wall",
        "_end_wall",
        "figures",
        "_stamp",
        "_stamp_of",
        "_started",
        "_ended",
        "_tokens",
        "_error",
        "_finished",
        "_lock",
    )

    def __init__(
        self,
        session: TurnOwner,
        index: int,
        *,
        input: Any = None,
        name: Optional[str] = None,
        span: Optional[Span] = None,
    ) -> None:
        # An implicit turn is made for every top-level call in a session: its set-up is kept to
        # plain assignments; what only an explicit turn needs is made when it opens.
        self.owner = session
        self.index = index
        self._span: Optional[Span] = None  # an explicit turn's root (an implicit one's is not kept)
        self._end_wall: Optional[int] = None
        self.figures: Optional[Figures] = None  # made by the first LLM call or error in it
        self._stamp_of: Any = None
        self._stamp: Mapping[str, Any] = _NO_STAMP
        if span is not None:
            self.implicit = True
            context = span.get_span_context()
            self.span_id = context.span_id
            self._trace_id = context.trace_id
            start = getattr(span, "start_time", None)
            self._start_wall: int = start if isinstance(start, int) else time.time_ns()
        else:
            self.implicit = False
            self.span_id = self._trace_id = 0
            self._start_wall = time.time_ns()
            self._input = input
            self._output: Any = None
            self._output_set = False
            self._name = name or semconv.TURN_SPAN_NAME
            self._started = Tally()  # the turn's spans (its root aside) started ...
            self._ended = Tally()  # ... and ended: its root goes out after the last
            self._tokens: list[Any] = []
            self._error: Optional[BaseException] = None
            self._finished = False
            self._lock = threading.Lock()

    # -- identity ----------------------------------------------------------------------------
    @property
    def session(self) -> Session:
        """The session this turn belongs to."""
        return cast("Session", self.owner)

    @property
    def trace_id(self) -> str:
        """The turn's trace id, 32 hex digits (with ``trace_per="session"``: the session's)."""
        return format(self._trace_id, "032x")

    @property
    def trace_id_int(self) -> int:
        return self._trace_id

    @property
    def is_active(self) -> bool:
        return self._end_wall is None

    @property
    def duration_seconds(self) -> float:
        end = self._end_wall if self._end_wall is not None else time.time_ns()
        return max(end - self._start_wall, 0) / 1e9

    @property
    def stamp(self) -> Mapping[str, Any]:
        """The session's stamp with this turn's index: what every span of the turn carries."""
        session_stamp = self.owner.stamp
        if self._stamp_of is not session_stamp:  # the session's tags changed: made again
            stamp = dict(session_stamp)
            stamp[semconv.TURN_INDEX] = self.index
            self._stamp, self._stamp_of = stamp, session_stamp
        return self._stamp

    # -- the explicit form ---------------------------------------------------------------------
    def set_output(self, output: Any) -> None:
        """The turn's answer, recorded as its root's output (``capture_turn_content``; on an
        implicit turn, its root span's own output stands)."""
        if not self.implicit:
            self._output = output
            self._output_set = True

    def set_input(self, input: Any) -> None:
        """The turn's input, if it was not known when the turn started."""
        if self.implicit:
            return
        self._input = input
        span = self._span
        if span is not None:
            attrs = _content(self.owner.client, input, "user", semconv.INPUT_VALUE, semconv.GEN_AI_INPUT_MESSAGES)
            if attrs:
                span.set_attributes(attrs)
                if self._name is semconv.TURN_SPAN_NAME:
                    span.update_name(_titled(self.index, attrs.get(semconv.INPUT_VALUE), input))

    def _open(self) -> None:
        session = self.owner
        client = session.client
        attrs = dict(self.stamp)
        attrs[semconv.SPAN_TYPE] = semconv.SPAN_TYPE_TURN
        attrs[semconv.OPENINFERENCE_SPAN_KIND] = "CHAIN"
        if self._input is not None:
            attrs.update(_content(client, self._input, "user", semconv.INPUT_VALUE, semconv.GEN_AI_INPUT_MESSAGES))
            if self._name is semconv.TURN_SPAN_NAME:  # no name given: the message names it in turn lists
                self._name = _titled(self.index, attrs.get(semconv.INPUT_VALUE), self._input)
        parent = session.turn_parent()
        self._start_wall = time.time_ns()
        if parent is SESSION_ROOT_PARENT:  # a new trace: the processor leaves it alone
            span = client.tracer.start_span(self._name, context=parent, start_time=self._start_wall)
            set_clean_attributes(span, attrs, fresh=True)
        else:  # under the session's root: stamped at creation, so the processor knows it is a turn's
            span = client.tracer.start_span(self._name, context=parent, start_time=self._start_wall, attributes=attrs)
        self._span = span
        context = span.get_span_context()
        self.span_id = context.span_id
        self._trace_id = context.trace_id
        session.turn_opened(self)

    def __enter__(self) -> Turn:
        self._tokens.append(self.enter())
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        with internal_errors("ending a turn"):
            if self._tokens:
                try:
                    self.leave(self._tokens.pop())
                except ValueError:
                    logger.debug("sessionkit: turn %s exited in another context than it entered", self.index)
            self.end_call(exc, None)

    async def __aenter__(self) -> Turn:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def end(self) -> None:
        """End the turn (its block does this). Its root goes out once its last span has ended.
        An implicit turn ends with its root span."""
        if self.implicit:
            return
        with self._lock:
            if self._end_wall is not None:
                return
            self._end_wall = time.time_ns()
        if self._started.value == self._ended.value:
            self._finish()

    def _finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
        span = self._span
        if span is None:
            return
        with internal_errors("recording the end of a turn"):
            client = self.owner.client
            figures = self.figures or NO_FIGURES
            attrs: dict[str, Any] = {
                semconv.TURN_LLM_CALLS: figures.llm_calls,
                semconv.TURN_INPUT_TOKENS: figures.input_tokens,
                semconv.TURN_OUTPUT_TOKENS: figures.output_tokens,
                semconv.TURN_ERRORS: figures.errors,
            }
            if figures.cost_usd is not None:
                attrs[semconv.TURN_COST] = figures.cost_usd
            if self._output_set:
                attrs.update(
                    _content(client, self._output, "assistant", semconv.OUTPUT_VALUE, semconv.GEN_AI_OUTPUT_MESSAGES)
                )
            span.set_attributes(attrs)
            if self._error is not None:
                record_error(span, self._error)
            self.owner.turn_finished(self, self._error is not None)  # (its findings go on the open root)
        span.end(end_time=self._end_wall)
        self._span = None  # an ended turn keeps its figures, not its span

    def summary(self) -> TurnSummary:
        from ._models import TurnSummary

        f = self.figures or NO_FIGURES
        return TurnSummary(
            index=self.index,
            trace_id=self.trace_id,
            implicit=self.implicit,
            active=self.is_active,
            duration_seconds=self.duration_seconds,
            llm_calls=f.llm_calls,
            input_tokens=f.input_tokens,
            output_tokens=f.output_tokens,
            errors=f.errors,
            time_to_first_token_seconds=f.ttfc,
            cost_usd=f.cost_usd,
            llm_calls_without_usage=f.without_usage,
            cost_incomplete=bool(f.unpriced),
        )

    # -- seams: what the session does as the turn's spans start and end (once per span), and
    # -- what a turn's block or a ``@client.turn`` call does to make it current
    @property
    def started_ns(self) -> int:
        """When the turn started, in ns since the epoch (spans' clock)."""
        return self._start_wall

    def span_started(self) -> None:
        """A span of this explicit turn (not its root) started."""
        self._started.add()

    def span_ended(self) -> None:
        """A span of this explicit turn (not its root) ended: an ended turn's root goes out after
        the last."""
        self._ended.add()
        if self._end_wall is not None and self._started.value == self._ended.value:
            self._finish()

    def root_ended(self, end_time: Optional[int]) -> None:
        """The root span of this implicit turn ended (at ``end_time``): the turn has."""
        if self._end_wall is None:
            self._end_wall = end_time if end_time is not None else time.time_ns()

    def force_finish(self) -> None:
        """End this ended turn's root now, whatever of it is still open (the client is closing)."""
        if not self.implicit and self._end_wall is not None:
            self._finish()

    def enter(self) -> Any:
        """Make the turn current (opening it the first time); ``leave`` takes the result. An
        ended turn is not opened again: its block runs outside any turn."""
        if self._trace_id == 0:
            self._open()
        span = self._span
        return None if span is None else self.owner.enter_turn(self, span)

    def leave(self, token: Any) -> None:
        if token is not None:
            self.owner.leave_turn(token)

    def end_call(self, exc: Optional[BaseException], result: Any) -> None:
        """The turn's block or decorated call ended: its return value is the turn's output, its
        exception the turn's."""
        if exc is not None:
            if not is_clean_exit(exc):
                self._error = exc
        elif result is not None:
            self.set_output(result)
        self.end()

    def note(self, name: str, attributes: Mapping[str, Any], time_ns: Optional[int] = None) -> None:
        """An event on the turn's root span while it is open (an explicit turn's)."""
        span = self._span
        if span is not None:
            span.add_event(name, attributes, timestamp=time_ns)

    def _repr_html_(self) -> str:
        return self.owner.html(self.index)

    def __repr__(self) -> str:
        state = "active" if self.is_active else "ended"
        return f"<Turn {self.index} of session {self.owner.id} {state}>"


_to_json = json.JSONEncoder(ensure_ascii=False).encode  # (json.dumps with an option makes an encoder per call)


def _content(client: Host, value: Any, role: str, value_key: str, messages_key: str) -> dict[str, Any]:
    """A turn's input or output in the names dashboards read (``capture_turn_content``)."""
    config = client.config
    if not config.capture_turn_content or value is None:
        return {}
    limit = config.max_content_length
    text = captured(value, limit, client.redact)
    attrs = {value_key: text}
    if isinstance(value, str):
        message = {"role": role, "parts": [{"type": "text", "content": text}]}
        attrs[messages_key] = _to_json([message])
    return attrs


def _titled(index: int, recorded: Any, value: Any) -> str:
    """A turn root's name: ``turn 3: Where is my order?`` (the recorded message, redacted, its
    first line cut to 60 characters), or ``turn`` when no text message is recorded."""
    if not isinstance(value, str) or not isinstance(recorded, str) or not recorded.strip():
        return semconv.TURN_SPAN_NAME
    line = recorded.strip().splitlines()[0]
    return f"turn {index}: {line[:60]}…" if len(line) > 60 else f"turn {index}: {line}"


KEPT_TURNS = 1000
"""Turns a session keeps (the newest) for its summary; late spans of older ones count in the
session's totals only."""


class TurnIndex:
    """A session's turns: numbered as they start, kept by index (the newest ``KEPT_TURNS`` and
    the open ones) and, with ``trace_per="turn"``, by trace id (how a span finds its turn)."""

    __slots__ = ("_lock", "by_index", "by_trace", "count")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.by_index: OrderedDict[int, Turn] = OrderedDict()  # oldest first (trimmed from the front)
        self.by_trace: dict[int, Turn] = {}
        self.count = 0  # the last turn's index

    def next_index(self) -> int:
        with self._lock:
            self.count += 1
            return self.count

    def add(self, turn: Turn, by_trace: bool) -> None:
        """Keep ``turn`` (explicit or implicit, just started); ``by_trace``: index its trace too."""
        turns = self.by_index
        turns[turn.index] = turn
        if len(turns) > KEPT_TURNS + 64:
            self._trim()
        if by_trace:
            self.by_trace[turn.trace_id_int] = turn

    def _trim(self) -> None:
        """Keep the newest ``KEPT_TURNS`` turns (and the open ones): a session of many turns
        holds a bounded record of them; its totals still count every one."""
        with self._lock:
            turns = self.by_index
            still_open: list[tuple[int, Turn]] = []
            while len(turns) > KEPT_TURNS:
                index, turn = turns.popitem(last=False)
                if turn.is_active:
                    still_open.append((index, turn))  # kept: its spans still come in
                else:
                    self.by_trace.pop(turn.trace_id_int, None)
            for index, turn in still_open:
                turns[index] = turn
                turns.move_to_end(index, last=False)

    def of_span(self, span: Any) -> Optional[Turn]:
        """The turn whose index ``span`` carries, if it is kept."""
        index = attributes_of(span).get(semconv.TURN_INDEX)
        return self.by_index.get(index) if isinstance(index, int) else None

    def is_open(self, trace_id: int) -> bool:
        turn = self.by_trace.get(trace_id)
        return turn is not None and turn.is_active

    def all(self) -> list[Turn]:
        return list(self.by_index.values())

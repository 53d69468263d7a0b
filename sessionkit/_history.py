"""History loads: the cost of reloading a conversation's history on every turn, made visible.

An agent that reloads its whole history from a database each turn loads N-1 turns at turn N:
the work grows with the conversation and mostly repeats rows it loaded before. Each load is a
``history.load`` span; the session's summary says how much of what was loaded was loaded
before in the same conversation, and how fast load time grows per turn.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sized
from typing import Any, Optional, Protocol, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span

from . import semconv
from ._errors import internal_errors
from ._findings import Finding, Severity
from ._spans import record_error
from ._types import Host
from ._values import as_count, to_text
from ._wrap import CurrentSpanRun, bound_arguments, signature_of, wrap

__all__ = ["HistoryLoad", "HistoryOwner", "HistoryStats", "HistoryTracker", "HistoryLoaderDecorator", "LoaderHost"]

logger = logging.getLogger("sessionkit")

F = TypeVar("F", bound=Callable[..., Any])

clock = time.monotonic  # the clock load durations are read from (replaceable in tests)

_CONVERSATIONS = 4096  # conversations remembered per client, least recently loaded forgotten first


class HistoryOwner(Protocol):
    """What a history load needs of the session it belongs to. Implemented by ``Session``."""

    id: str
    thread_id: Optional[str]

    @property
    def client(self) -> Host: ...

    def span_parent(self) -> Optional[Context]:
        """The parent context for a span of this session (None: the current context)."""
        ...

    def history_loaded(self, load: HistoryLoad) -> Optional[int]:
        """``load`` finished: count it; return how many of its messages earlier loads of the
        conversation had loaded already (None: unknown)."""
        ...


class LoaderHost(Host, Protocol):
    """What ``@history_loader`` needs of a client: a ``Host`` that knows the current session.
    Implemented by ``Client``."""

    def current_session(self) -> Optional[HistoryOwner]: ...


def _checked_count(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if as_count(value) is None:
        raise ValueError(f"sessionkit: {name} must be a non-negative int, got {value!r}")
    return value


class HistoryLoad:
    """One load of a conversation's history. Report what it loaded with :meth:`record`."""

    def __init__(self, session: HistoryOwner, source: str, conversation_id: Optional[str], turn: Optional[int]) -> None:
        self.session = session
        self.source = source
        self.conversation_id = conversation_id if conversation_id is not None else session.thread_id
        self.turn = _checked_count("turn", turn)
        self.messages: Optional[int] = None
        self.bytes: Optional[int] = None
        self.cache_hit: Optional[bool] = None
        attrs: dict[str, Any] = {semconv.HISTORY_SOURCE: source}
        if self.conversation_id is not None:
            attrs[semconv.HISTORY_CONVERSATION_ID] = self.conversation_id
        if self.turn is not None:
            attrs[semconv.HISTORY_TURN] = self.turn
        self._started = clock()
        self.seconds: Optional[float] = None
        self._span: Span = session.client.tracer.start_span(
            semconv.HISTORY_LOAD_SPAN_NAME, context=session.span_parent(), attributes=attrs
        )
        self._token: Any = None
        self._done = False

    def record(
        self,
        messages: Optional[int] = None,
        bytes: Optional[int] = None,
        cache_hit: Optional[bool] = None,
    ) -> None:
        """What the load returned: message count, size in bytes, and whether a cache served it."""
        self.messages = _checked_count("messages", messages) if messages is not None else self.messages
        self.bytes = _checked_count("bytes", bytes) if bytes is not None else self.bytes
        if cache_hit is not None:
            if not isinstance(cache_hit, bool):
                raise ValueError(f"sessionkit: cache_hit must be True or False, got {cache_hit!r}")
            self.cache_hit = cache_hit

    def _finish(self, exc: Optional[BaseException]) -> None:
        if self._done:
            return
        self._done = True
        self.seconds = clock() - self._started
        span = self._span
        with internal_errors("recording a history load"):
            attrs: dict[str, Any] = {}
            if self.messages is not None:
                attrs[semconv.HISTORY_MESSAGES] = self.messages
            if self.bytes is not None:
                attrs[semconv.HISTORY_BYTES] = self.bytes
            if self.cache_hit is not None:
                attrs[semconv.HISTORY_CACHE_HIT] = self.cache_hit
            redundant = self.session.history_loaded(self)
            if redundant is not None:
                attrs[semconv.HISTORY_MESSAGES_REDUNDANT] = redundant
            span.set_attributes(attrs)
            if exc is not None:
                record_error(span, exc)
        span.end()

    def __enter__(self) -> HistoryLoad:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None
        self._finish(exc)

    async def __aenter__(self) -> HistoryLoad:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


class HistoryStats:
    """A session's history figures, kept as loads finish."""

    __slots__ = ("loads", "seconds", "messages", "redundant", "cache_hits", "points", "uncached_repeats")

    def __init__(self) -> None:
        self.loads = 0
        self.seconds = 0.0
        self.messages = 0
        self.redundant = 0
        self.cache_hits = 0
        self.uncached_repeats = 0  # loads that were not cache hits and repeated earlier messages
        self.points: list[tuple[float, float]] = []  # (turn, seconds) for the growth figure

    def add(self, load: HistoryLoad, redundant: int) -> None:
        self.loads += 1
        self.seconds += load.seconds or 0.0
        self.messages += load.messages or 0
        self.redundant += redundant
        if load.cache_hit:
            self.cache_hits += 1
        elif redundant:
            self.uncached_repeats += 1
        turn = load.turn if load.turn is not None else self.loads
        self.points.append((float(turn), load.seconds or 0.0))

    def growth_per_turn(self) -> Optional[float]:
        """Least-squares slope of load seconds over turns; None with fewer than 3 loads."""
        if len(self.points) < 3:
            return None
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mean_x) ** 2 for x in xs)
        if var == 0:
            return None
        return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var

    def summary_fields(self) -> dict[str, Any]:
        """The history fields of ``SessionSummary``."""
        return {
            "history_loads": self.loads,
            "history_load_seconds": self.seconds,
            "history_messages_loaded": self.messages,
            "history_messages_redundant": self.redundant,
            "history_load_growth_seconds_per_turn": self.growth_per_turn(),
            "history_advice": self.advice(),
        }

    def finding(self) -> Optional[Finding]:
        """The ``history_redundant`` finding, once the loads show it (else None)."""
        advice = self.advice()
        if advice is None:
            return None
        return Finding(
            "history_redundant",
            Severity.WARNING,
            advice,
            {
                "loads": self.loads,
                "messages": self.messages,
                "redundant_messages": self.redundant,
                "share": round(self.redundant / self.messages, 3),
                "seconds": round(self.seconds, 4),
            },
            time_ns=time.time_ns(),
        )

    def advice(self) -> Optional[str]:
        if self.uncached_repeats < 2 or not self.messages or self.redundant / self.messages < 0.5:
            return None
        share = 100.0 * self.redundant / self.messages
        return (
            f"history reloaded {self.loads} times without a cache: {self.redundant} of {self.messages} messages "
            f"({share:.0f}%) had been loaded before in the same conversation; cache the history per conversation "
            f"or load only the turns added since the last load"
        )


def _history_instruments(meter: Any) -> tuple[Any, Any]:
    return (
        meter.create_histogram(semconv.METRIC_HISTORY_DURATION, unit="s", description="Duration of history loads"),
        meter.create_histogram(
            semconv.METRIC_HISTORY_MESSAGES, unit="{message}", description="Messages per history load"
        ),
    )


class HistoryTracker:
    """Per client: how many messages of each conversation were loaded so far (bounded LRU)."""

    def __init__(self, client: Host) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._seen: collections.OrderedDict[str, int] = collections.OrderedDict()

    def repeated(self, load: HistoryLoad) -> Optional[int]:
        """Messages of this load that earlier loads of the conversation had loaded already."""
        if load.messages is None or load.conversation_id is None:
            return None
        with self._lock:
            before = self._seen.get(load.conversation_id, 0)
            self._seen[load.conversation_id] = max(before, load.messages)
            self._seen.move_to_end(load.conversation_id)
            while len(self._seen) > _CONVERSATIONS:
                self._seen.popitem(last=False)
        if load.cache_hit:
            return 0  # served from a cache: no repeated work at the source
        return min(before, load.messages)

    def record_metrics(self, load: HistoryLoad) -> None:
        duration, messages = self._client.instruments(semconv.INSTRUMENTS_HISTORY, _history_instruments)
        attrs = {semconv.HISTORY_SOURCE: load.source, semconv.HISTORY_CACHE_HIT: bool(load.cache_hit)}
        duration.record(load.seconds or 0.0, attrs)
        if load.messages is not None:
            messages.record(load.messages, attrs)


# -- the decorator ---------------------------------------------------------------------------------
_CONVERSATION_ARGS = ("conversation_id", "thread_id", "conversation", "chat_id", "session_id")


class _LoaderSpec:
    """What ``@history_loader`` needs to read a call: which arguments are the conversation and turn."""

    __slots__ = ("source", "signature")
    needs_recording = False  # the session's history figures are kept with tracing off too

    def __init__(self, source: str, func: Callable[..., Any]) -> None:
        self.source = source
        self.signature = signature_of(func)

    def run(self, client: LoaderHost, instance: Any, args: tuple, kwargs: dict) -> Optional[_LoaderRun]:
        session = client.current_session()
        if session is None:
            return None  # a load outside any session has no conversation figures to feed
        arguments = bound_arguments(self.signature, instance, args, kwargs)
        conversation = next((arguments[n] for n in _CONVERSATION_ARGS if n in arguments), None)
        if conversation is None and args:
            conversation = args[0]
        turn = arguments.get("turn")
        if not (isinstance(turn, int) and not isinstance(turn, bool) and turn >= 0):
            turn = None
        return _LoaderRun(
            HistoryLoad(session, self.source, None if conversation is None else to_text(conversation, 256), turn)
        )


class _LoaderRun(CurrentSpanRun):
    __slots__ = ("load", "context")

    def __init__(self, load: HistoryLoad) -> None:
        self.load = load
        self.context = trace.set_span_in_context(load._span)

    def end(self, exc: Optional[BaseException] = None, result: Any = None, completed: Optional[bool] = None) -> None:
        if exc is None and result is not None and self.load.messages is None:
            messages = result.get("messages") if isinstance(result, dict) else result
            if isinstance(messages, Sized) and not isinstance(messages, (str, bytes)):
                self.load.messages = len(messages)
        self.load._finish(exc)


class HistoryLoaderDecorator:
    """``@history_loader``, ``@history_loader("redis")`` or ``@history_loader(source="redis")``:
    each call of the function is a history load in the calling code's session; the message
    count is the length of what it returns (or of its ``"messages"``)."""

    def __init__(self, get_client: Callable[[], Optional[LoaderHost]]) -> None:
        self._get_client = get_client

    @overload
    def __call__(self, func: F, /) -> F: ...

    @overload
    def __call__(self, name: str = ..., /, *, source: str = ...) -> Callable[[F], F]: ...

    def __call__(self, func: Any = None, /, *, source: str = "history") -> Any:
        if callable(func):
            return self._factory(source)(func)
        return self._factory(func if isinstance(func, str) else source)

    def _factory(self, source: str) -> Callable[[F], F]:
        if not isinstance(source, str) or not source:
            raise TypeError("sessionkit: history_loader(source=...) takes the store's name, e.g. 'postgres'")
        get_client = self._get_client

        def decorate(func: F) -> F:
            return wrap(func, lambda target: _LoaderSpec(source, target), get_client)

        return decorate

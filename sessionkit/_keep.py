"""Spans kept in memory for a session's display (its waterfall in a notebook), within a bound.

A kept span is a small tuple of what a waterfall shows (ids, name, kind, times, status, the
turn, and a few figures: model, tokens, tool, channel, history), made when the span ends. Each
session keeps at most ``display_max_spans`` (the newest go when it is full, counted), and the
client keeps spans for its ``display_max_sessions`` most recent sessions: a session that falls
out of that bound lets its spans go and says so when displayed. Nothing here runs unless
keeping is on (``display_spans``: on by default in an IPython kernel, off elsewhere).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Optional

from . import semconv

# The attributes a waterfall row shows, in the order it shows them.
DETAIL_KEYS = (
    semconv.GEN_AI_OPERATION_NAME,
    semconv.OPENINFERENCE_SPAN_KIND,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_RESPONSE_MODEL,
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.LLM_COST_TOTAL,
    semconv.GEN_AI_TOOL_NAME,
    semconv.CHANNEL_PLATFORM,
    semconv.CHANNEL_ID,
    semconv.CHANNEL_LEAKED,
    semconv.HISTORY_MESSAGES,
    semconv.HISTORY_MESSAGES_REDUNDANT,
    semconv.HISTORY_CACHE_HIT,
)


class KeptSpan(NamedTuple):
    """One ended span, as a waterfall draws it."""

    span_id: int
    parent_id: int  # 0: none
    trace_id: int
    name: str
    kind: int  # the OpenTelemetry SpanKind's value
    start_ns: int
    end_ns: int
    error: bool
    message: str  # the error's message ("" when none)
    turn: Optional[int]
    details: dict[str, Any]


def kept_span(span: Any, attributes: Mapping[str, Any]) -> KeptSpan:
    """The ``KeptSpan`` of an ended SDK span."""
    context = span.context
    parent = span.parent
    status = span.status
    error = status.status_code.value == 2
    message = ""
    if error:
        message = status.description or ""
        if not message:
            for event in span.events:
                if event.name == "exception":
                    message = str((event.attributes or {}).get("exception.message", ""))
                    break
    turn = attributes.get(semconv.TURN_INDEX)
    return KeptSpan(
        context.span_id,
        parent.span_id if parent is not None else 0,
        context.trace_id,
        span.name,
        span.kind.value,
        span.start_time or 0,
        span.end_time or 0,
        error,
        message,
        turn if type(turn) is int else None,
        {key: attributes[key] for key in DETAIL_KEYS if key in attributes},
    )


class SpanKeep:
    """One session's kept spans."""

    __slots__ = ("spans", "dropped", "released", "_listener", "__weakref__")

    def __init__(self, max_spans: int) -> None:
        self.spans: deque[KeptSpan] = deque(maxlen=max_spans)
        self.dropped = 0  # spans that went because the session kept its maximum
        self.released = False  # the session fell out of the recent sessions: its spans went
        self._listener: Optional[Callable[[], None]] = None

    def add(self, span: Any, attributes: Mapping[str, Any]) -> None:
        if self.released:
            self.dropped += 1
            return
        spans = self.spans
        if len(spans) == spans.maxlen:
            self.dropped += 1
        spans.append(kept_span(span, attributes))
        listener = self._listener
        if listener is not None:
            listener()

    def listen(self, listener: Optional[Callable[[], None]]) -> None:
        """Call ``listener`` after each span kept (a live display), or stop with None."""
        self._listener = listener

    def release(self) -> None:
        self.dropped += len(self.spans)
        self.spans.clear()
        self.released = True


class DisplayKeeper:
    """A client's kept spans: one ``SpanKeep`` per recent session, within the bounds."""

    def __init__(self, enabled: bool, max_sessions: int, max_spans: int) -> None:
        self.enabled = enabled
        self.max_sessions = max_sessions
        self.max_spans = max_spans
        self._recent: deque[SpanKeep] = deque()
        self._lock = threading.Lock()
        self._released_dropped = 0

    def track(self) -> Optional[SpanKeep]:
        """A keep for a new session (None when keeping is off); the oldest kept session lets its
        spans go when there are more than ``max_sessions``."""
        if not self.enabled:
            return None
        keep = SpanKeep(self.max_spans)
        with self._lock:
            self._recent.append(keep)
            while len(self._recent) > self.max_sessions:
                old = self._recent.popleft()
                old.release()
                self._released_dropped += old.dropped
        return keep

    def stats(self) -> tuple[int, int]:
        """(spans held now, spans let go so far) over the client's sessions."""
        with self._lock:
            held = sum(len(k.spans) for k in self._recent)
            dropped = self._released_dropped + sum(k.dropped for k in self._recent)
        return held, dropped

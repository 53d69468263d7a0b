"""SessionSpanProcessor: stamps each span with its session and feeds the session's figures."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from . import semconv
from ._spans import attributes_of, set_clean_attributes

if TYPE_CHECKING:
    from .export.pipeline import ExportPipeline
    from .session import Session

logger = logging.getLogger("sessionkit")

# The parent context every session root starts from: empty (so the root is a new trace), and
# recognised by identity, so the processor does not stamp a root with an enclosing session.
SESSION_ROOT_PARENT = Context()

# Ended sessions are remembered this long (by count) so that spans ending after their
# session still count and stamp correctly.
_RECENT_SESSIONS = 1024


class SessionSpanProcessor(SpanProcessor):
    """The one processor sessionkit adds to a provider.

    ``on_start`` finds the span's session (by its trace, else the session current in the
    context, else the client's default session) and stamps its identity. ``on_end`` counts the
    span into that session and hands it to the export pipeline, which can be swapped at run time.
    """

    def __init__(self, fallback_session: Callable[[], Optional[Session]]) -> None:
        self._fallback_session = fallback_session
        self._lock = threading.Lock()
        self._by_trace: OrderedDict[int, Session] = OrderedDict()
        self._by_id: dict[str, Session] = {}
        self.pipeline: Optional[ExportPipeline] = None
        self.spans_started = 0
        self.spans_ended = 0
        self.spans_without_session = 0

    # -- the session registry ----------------------------------------------------------------
    def register(self, session: Session, trace_id: int) -> None:
        with self._lock:
            self._by_trace[trace_id] = session
            self._by_id[session.id] = session
            while len(self._by_trace) > _RECENT_SESSIONS:
                _, old = self._by_trace.popitem(last=False)
                if old.is_active:  # never forget a live session; put it back at the young end
                    self._by_trace[old._trace_id] = old
                    break
                self._by_id.pop(old.id, None)

    # -- SpanProcessor -------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        stamped = True
        try:
            if parent_context is SESSION_ROOT_PARENT:
                pass  # a session's root: its attributes follow right after
            elif semconv.SESSION_ID not in attributes_of(span):  # else: stamped at creation
                session = self._by_trace.get(span.context.trace_id)
                if session is None:
                    session = self._fallback_session()
                if session is not None:
                    set_clean_attributes(span, session.stamp)
                else:
                    stamped = False
        except Exception:
            logger.exception("sessionkit: error while stamping a span (ignored)")
        with self._lock:
            self.spans_started += 1
            if not stamped:
                self.spans_without_session += 1

    def on_end(self, span: ReadableSpan) -> None:
        try:
            session = self._by_trace.get(span.context.trace_id) if span.context else None
            if session is None:
                session_id = attributes_of(span).get(semconv.SESSION_ID)
                if isinstance(session_id, str):
                    session = self._by_id.get(session_id)
            if session is not None:
                session._count(span)
        except Exception:
            logger.exception("sessionkit: error while counting a span (ignored)")
        with self._lock:
            self.spans_ended += 1
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.on_end(span)

    def shutdown(self) -> None:
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.shutdown(timeout=5.0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        pipeline = self.pipeline
        return True if pipeline is None else pipeline.flush(timeout_millis / 1000.0)

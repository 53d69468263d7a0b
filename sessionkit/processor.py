"""SessionSpanProcessor: stamps each span with its session and feeds the session's figures."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from . import semconv
from ._spans import attributes_of, set_clean_attributes
from ._tally import Tally

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

    def __init__(self, fallback_session: Callable[[], Optional[Session]],
                 observe: Optional[Callable[[Sequence[ReadableSpan]], None]] = None) -> None:  # fmt: skip
        self._fallback_session = fallback_session
        self._observe = observe  # with no pipeline of ours: sees each ended span here
        self._lock = threading.Lock()
        self._by_trace: OrderedDict[int, Session] = OrderedDict()
        self._by_id: dict[str, Session] = {}
        self.pipeline: Optional[ExportPipeline] = None
        self._started = Tally()
        self._ended = Tally()
        self._without_session = Tally()

    @property
    def spans_started(self) -> int:
        return self._started.value

    @property
    def spans_ended(self) -> int:
        return self._ended.value

    @property
    def spans_without_session(self) -> int:
        return self._without_session.value

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
        self._started.add()
        try:
            if parent_context is SESSION_ROOT_PARENT:
                return  # a session's root: its attributes follow right after
            if semconv.SESSION_ID in attributes_of(span):
                return  # stamped at creation
            session = self._by_trace.get(span.get_span_context().trace_id)
            if session is None:
                session = self._fallback_session()
            if session is not None:
                set_clean_attributes(span, session.stamp, fresh=True)  # the span is being started
            else:
                self._without_session.add()
        except Exception:
            logger.exception("sessionkit: error while stamping a span (ignored)")

    def on_end(self, span: ReadableSpan) -> None:
        self._ended.add()
        try:
            context = span.context
            session = self._by_trace.get(context.trace_id) if context else None
            if session is None:
                session_id = attributes_of(span).get(semconv.SESSION_ID)
                if isinstance(session_id, str):
                    session = self._by_id.get(session_id)
            if session is not None:
                session._count(span)
        except Exception:
            logger.exception("sessionkit: error while counting a span (ignored)")
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.on_end(span)  # which shows the span to ``observe`` as it is exported or dropped
        elif self._observe is not None:
            try:
                self._observe((span,))
            except Exception:
                logger.exception("sessionkit: could not derive metrics from a span (ignored)")

    def shutdown(self) -> None:
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.shutdown(timeout=5.0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        pipeline = self.pipeline
        return True if pipeline is None else pipeline.flush(timeout_millis / 1000.0)

"""SessionSpanProcessor: stamps each span with its session and feeds the session's figures."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional, Protocol, cast

from opentelemetry import trace
from opentelemetry.context import Context, get_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased

from . import semconv
from ._export.pipeline import PLACED
from ._spans import (
    ARRIVAL_KEY,
    DROPPED_ROOT_PARENT,
    ENRICHERS,
    SESSION_ROOT_PARENT,
    TURN_START_KEY,
    Arrival,
    attributes_of,
    for_export,
    set_clean_attributes,
)
from ._tally import Tally

__all__ = ["SessionIndex", "SessionSampler", "SessionSpanProcessor", "SpanOwner"]

logger = logging.getLogger("sessionkit")

_MAX_OWNERS = 65536  # requests' spans open at once whose session the processor remembers


class SpanOwner(Protocol):
    """What the processor needs of a session. Implemented by ``Session``."""

    id: str
    sampled: bool
    export_project: Optional[str]
    """The dashboard project this process exports the session's spans under, when not its own."""

    @property
    def stamp(self) -> Mapping[str, Any]:
        """The identity attributes every span of the session carries."""
        ...

    def on_span_start(self, span: Any, parent_context: Optional[Context], by_trace: bool) -> Mapping[str, Any]:
        """``span`` starts in this session (found by its trace, or else as the calling code's):
        the attributes to stamp it with."""
        ...

    def on_span_end(self, span: ReadableSpan) -> None:
        """``span`` ended in this session: add it to the session's figures."""
        ...


class SessionIndex(Protocol):
    """Where the processor finds a span's session. Implemented by ``SessionRegistry``."""

    @property
    def by_trace(self) -> Mapping[int, SpanOwner]:
        """Sessions by the trace id of their root, the live ones and recently ended ones."""
        ...

    @property
    def by_id(self) -> Mapping[str, SpanOwner]: ...

    @property
    def arriving(self) -> Mapping[int, int]:
        """The trace ids requests came in with (``continue_session``), while those requests run."""
        ...

    def current_session(self) -> Optional[SpanOwner]:
        """The session the calling code belongs to, or None."""
        ...


class ExportTarget(Protocol):
    """The processor the ended spans go on to. Implemented by ``ExportPipeline``."""

    def on_end(self, span: ReadableSpan) -> None: ...

    def shutdown(self, timeout: float) -> bool: ...

    def flush(self, timeout: float) -> bool: ...


class SessionSpanProcessor(SpanProcessor):
    """The one processor sessionkit adds to a provider.

    ``on_start`` finds the span's session (by its trace, else the session the calling code
    belongs to) and stamps its identity. ``on_end`` counts the span into that session and hands
    it to the export pipeline, which can be swapped at run time (a provider cannot remove a
    processor, so re-init changes where this one sends spans instead).
    """

    def __init__(
        self, sessions: SessionIndex, observe: Optional[Callable[[Sequence[ReadableSpan]], None]] = None
    ) -> None:
        self._sessions = sessions
        self._by_trace = sessions.by_trace  # the same mapping for the processor's life: read per span
        self._by_id = sessions.by_id
        self._arriving = sessions.arriving
        self._owners: dict[int, Optional[SpanOwner]] = {}  # span id -> session, for requests' spans
        self._observe = observe  # with no pipeline of ours: sees each ended span here
        self.pipeline: Optional[ExportTarget] = None
        self._started = Tally()
        self._ended = Tally()
        self._without_session = Tally()

    @property
    def sessions(self) -> SessionIndex:
        """Where the processor finds spans' sessions."""
        return self._sessions

    @property
    def spans_started(self) -> int:
        return self._started.value

    @property
    def spans_ended(self) -> int:
        return self._ended.value

    @property
    def spans_without_session(self) -> int:
        return self._without_session.value

    # -- SpanProcessor -------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        self._started.add()
        self.apply_stamp(span, parent_context)

    def apply_stamp(self, span: Span, parent_context: Optional[Context] = None) -> None:
        """Stamp ``span`` with its session (if it has one). Never raises."""
        try:
            if ENRICHERS:  # an integration completes the spans of a library that traces itself
                enrich = ENRICHERS.get(span.instrumentation_scope.name) if span.instrumentation_scope else None
                if enrich is not None:
                    enrich(span)
            if parent_context is SESSION_ROOT_PARENT:
                return  # a session's record or a turn's root: its attributes follow right after
            if semconv.SESSION_ID in attributes_of(span):
                return  # stamped at creation
            # A span with a parent may be in a known trace; one without starts a new trace.
            parent = span.parent
            session = None
            arrived = False
            if parent is not None:
                trace_id = span.get_span_context().trace_id
                session = self._by_trace.get(trace_id)
                if self._arriving and trace_id in self._arriving:
                    arrival = parent_context.get(ARRIVAL_KEY) if parent_context is not None else get_value(ARRIVAL_KEY)
                    if isinstance(arrival, Arrival) and arrival.trace_id == trace_id and arrival.session is not session:
                        # A request's span in the trace it came in with: the trace id proves
                        # nothing (it came from outside); the request's own session decides.
                        session, arrived = cast(Optional[SpanOwner], arrival.session), True
            by_trace = session is not None
            if session is None and not arrived:  # (a request that named no session gets none)
                if parent is None:  # a session's span outside its turns carries the session
                    carried = (
                        parent_context.get(TURN_START_KEY) if parent_context is not None else get_value(TURN_START_KEY)
                    )
                    session = cast(Optional[SpanOwner], carried)
                if session is None:
                    session = self._sessions.current_session()
            if arrived:
                owners = self._owners
                if len(owners) >= _MAX_OWNERS:
                    owners.clear()  # spans that never ended: let them go rather than grow
                owners[span.get_span_context().span_id] = session
            if session is not None:
                # The session's stamp, with the span's turn; a top-level span starts a turn.
                set_clean_attributes(span, session.on_span_start(span, parent_context, by_trace), fresh=True)
            else:
                self._without_session.add()
        except Exception:
            logger.exception("sessionkit: error while stamping a span (ignored)")

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._ended.add()
            owner = self.count(span)
            try:  # (counted as it ended; exported as dashboards must show it: see ``for_export``)
                span = for_export(span, owner.export_project if owner is not None else None)
            except Exception:
                logger.exception("sessionkit: could not prepare a span for export (sent as it ended)")
        finally:
            # Handed on even when a KeyboardInterrupt lands while the span is counted: a
            # session's figures never count a span its destination does not get.
            pipeline = self.pipeline
            if pipeline is not None:
                try:
                    pipeline.on_end(span)  # which shows the span to ``observe`` as it is exported or dropped
                except BaseException as exc:
                    if not getattr(exc, PLACED, False):  # interrupted before the pipeline began: place it now
                        pipeline.on_end(span)
                    raise
            elif self._observe is not None:
                try:
                    self._observe((span,))
                except Exception:
                    logger.exception("sessionkit: could not derive metrics from a span (ignored)")

    def count(self, span: ReadableSpan) -> Optional[SpanOwner]:
        """Count an ended ``span`` into its session (if it has one); that session. Never raises."""
        try:
            context = span.context
            if self._owners and context is not None and context.span_id in self._owners:
                owner = self._owners.pop(context.span_id)  # a request's span (see ``stamp``)
                if owner is not None:
                    owner.on_span_end(span)
                return owner
            session = self._by_trace.get(context.trace_id) if context else None
            if session is None:
                session_id = attributes_of(span).get(semconv.SESSION_ID)
                if isinstance(session_id, str):
                    session = self._by_id.get(session_id)
            if session is not None:
                session.on_span_end(span)
            return session
        except Exception:
            logger.exception("sessionkit: error while counting a span (ignored)")
            return None

    def shutdown(self) -> None:
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.shutdown(5.0)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        pipeline = self.pipeline
        return True if pipeline is None else pipeline.flush(timeout_millis / 1000.0)


class SessionSampler(Sampler):
    """``sample_rate`` < 1: keeps or drops whole sessions, as each session decided from its id.

    A span under a parent follows the parent's decision (so a remote caller's decision, which
    the same id made, carries into this service); a session's record and turn roots start from
    a parent context that says which; a top-level span takes its session's decision (the one
    the calling code belongs to). A span outside every session is kept at the rate by its
    trace id. Kept spans carry the rate (``sessionkit.sample_rate``)."""

    def __init__(self, sessions: SessionIndex, rate: float) -> None:
        self._sessions = sessions
        self.rate = rate
        self._attributes = {semconv.SAMPLE_RATE: rate}
        self._keep = SamplingResult(Decision.RECORD_AND_SAMPLE, self._attributes)
        self._drop = SamplingResult(Decision.DROP)
        self._outside = TraceIdRatioBased(rate)

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            if parent.trace_flags.sampled:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, self._attributes, parent.trace_state)
            return SamplingResult(Decision.DROP, None, parent.trace_state)
        if parent_context is SESSION_ROOT_PARENT:
            return self._keep
        if parent_context is DROPPED_ROOT_PARENT:
            return self._drop
        carried = parent_context.get(TURN_START_KEY) if parent_context is not None else get_value(TURN_START_KEY)
        session = cast(Optional[SpanOwner], carried) or self._sessions.current_session()
        if session is not None:
            return self._keep if session.sampled else self._drop
        result = self._outside.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        return self._keep if result.decision is Decision.RECORD_AND_SAMPLE else self._drop

    def get_description(self) -> str:
        return f"SessionSampler{{{self.rate}}}"

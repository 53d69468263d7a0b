"""A session's record: the span that carries its identity, end state and totals.

With ``trace_per="turn"`` the record is a trace of its own (dashboards group the turns by
``session.id``, the record by ``sessionkit.session.id``); with ``"session"`` it is the root of
the session's one trace. A session continued from a caller in another process has no record
here: its "record" is the caller's span, which new spans parent under.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, Status, StatusCode, Tracer

from . import semconv
from ._errors import internal_errors
from ._payloads.body import fit_json
from ._spans import DROPPED_ROOT_PARENT, SESSION_ROOT_PARENT, set_clean_attributes, set_ok_status
from ._types import EndState
from ._values import MAX_STRING

__all__ = ["SessionRecord", "record_attributes"]


class SessionRecord:
    """The record span of one session, and the ids late spans find it by."""

    __slots__ = ("span", "_context", "trace_id", "span_id")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._context: Optional[otel_context.Context] = None
        ids = span.get_span_context()
        self.trace_id: int = ids.trace_id
        self.span_id: int = ids.span_id

    @classmethod
    def start(cls, tracer: Tracer, name: str, attributes: Mapping[str, Any], sampled: bool) -> SessionRecord:
        """Start a session's record: always a new trace (an empty parent context)."""
        span = tracer.start_span(name, context=SESSION_ROOT_PARENT if sampled else DROPPED_ROOT_PARENT)
        set_clean_attributes(span, attributes, fresh=True)
        return cls(span)

    @classmethod
    def of_caller(cls, caller: SpanContext) -> SessionRecord:
        """A continued session's stand-in: the caller's span, in the caller's process."""
        return cls(NonRecordingSpan(caller))

    def context(self) -> otel_context.Context:
        """The record as a parent context; after the record ended, made again on first use (an
        ended record keeps only its ids)."""
        context = self._context
        if context is None:
            context = self._context = trace.set_span_in_context(self.span, otel_context.Context())
        return context

    def finish(
        self, attributes: Mapping[str, Any], state: Optional[EndState], reason: Optional[str], end_ns: Optional[int]
    ) -> None:
        """End the record with the session's end state and figures. What an ended session keeps
        is small: late spans still find it by its ids and parent under its context, but the
        ended span and its context are let go."""
        span = self.span
        with internal_errors("recording the end of a session"):
            attrs = dict(attributes)
            attrs[semconv.SESSION_END_STATE] = state.value if state is not None else ""
            if reason is not None:
                attrs[semconv.SESSION_END_REASON] = reason
            set_clean_attributes(span, attrs)
            if state is EndState.FAIL:
                span.set_status(Status(StatusCode.ERROR, reason))
            elif state is EndState.SUCCESS:
                set_ok_status(span)
        span.end(end_time=end_ns)
        self.span = NonRecordingSpan(span.get_span_context())
        self._context = None


def record_attributes(
    stamp: Mapping[str, Any], per_turn: bool, previous_id: Optional[str], metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """A new record's attributes: the session's stamp (per turn, under the record's own names:
    the record is no turn, and dashboards group turns by ``session.id``), its previous session,
    its metadata."""
    attrs = dict(stamp)
    if per_turn:
        attrs[semconv.RECORD_SESSION_ID] = attrs.pop(semconv.SESSION_ID)
        if semconv.GEN_AI_CONVERSATION_ID in attrs:
            attrs[semconv.RECORD_THREAD_ID] = attrs.pop(semconv.GEN_AI_CONVERSATION_ID)
    if previous_id is not None:
        attrs[semconv.SESSION_PREVIOUS_ID] = previous_id
    attrs[semconv.SPAN_TYPE] = semconv.SPAN_TYPE_SESSION
    attrs[semconv.OPENINFERENCE_SPAN_KIND] = "CHAIN"
    if metadata:
        attrs[semconv.METADATA] = fit_json(metadata, MAX_STRING)
    return attrs

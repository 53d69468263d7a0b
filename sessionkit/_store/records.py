"""Stored spans grouped as a session and its turns, with the figures they add up to (what
``sessionkit show`` prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .. import semconv
from .._payloads.llm import counts_as_llm_call

STATUS_ERROR = 2


@dataclass
class StoredSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int
    service_name: str = ""
    kind: int = 0
    status_message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    session_id: Optional[str] = None
    turn_index: Optional[int] = None

    @property
    def duration_seconds(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e9

    @property
    def is_session_internal(self) -> bool:
        """The session's record, its start marker, or a ``session.turn()`` block's root: spans
        of sessionkit's, not of the agent's work."""
        return semconv.SPAN_TYPE in self.attributes

    @property
    def is_record(self) -> bool:
        return self.attributes.get(semconv.SPAN_TYPE) in semconv.SESSION_SPAN_TYPES


class _Figures:
    """What a group of stored spans (a session, a turn) adds up to."""

    spans: list[StoredSpan]

    @property
    def work_spans(self) -> list[StoredSpan]:
        """The agent's spans: not the session's record or marker, nor a turn block's root."""
        return [s for s in self.spans if not s.is_session_internal]

    @property
    def llm_spans(self) -> list[StoredSpan]:
        return [s for s in self.work_spans if counts_as_llm_call(s.attributes)]

    @property
    def input_tokens(self) -> int:
        return sum(_int(s.attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)) for s in self.llm_spans)

    @property
    def output_tokens(self) -> int:
        return sum(_int(s.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)) for s in self.llm_spans)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.work_spans if s.status_code == STATUS_ERROR)

    @property
    def cost(self) -> Optional[float]:
        """The LLM spans' cost; None with none, or when one has tokens but no price."""
        llm_spans = self.llm_spans
        total = 0.0
        for span in llm_spans:
            cost = span.attributes.get(semconv.LLM_COST_TOTAL)
            if isinstance(cost, (int, float)):
                total += float(cost)
            elif span.attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS) is not None:
                return None
        return total if llm_spans else None


@dataclass
class StoredTurn(_Figures):
    """One turn of a stored session: the spans that carry its index (from one process)."""

    index: int
    spans: list[StoredSpan] = field(default_factory=list)

    @property
    def root(self) -> StoredSpan:
        ids = {s.span_id for s in self.spans}
        for span in self.spans:
            if span.attributes.get(semconv.SPAN_TYPE) == semconv.SPAN_TYPE_TURN:
                return span
        tops = [s for s in self.spans if not s.parent_span_id or s.parent_span_id not in ids]
        return min(tops or self.spans, key=lambda s: s.start_ns)

    @property
    def input(self) -> Optional[str]:
        value = self.root.attributes.get(semconv.INPUT_VALUE)
        return None if value is None else str(value)

    @property
    def output(self) -> Optional[str]:
        value = self.root.attributes.get(semconv.OUTPUT_VALUE)
        return None if value is None else str(value)

    @property
    def started_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def duration_seconds(self) -> float:
        return (max(s.end_ns for s in self.spans) - self.started_ns) / 1e9

    @property
    def time_to_first_token_seconds(self) -> Optional[float]:
        firsts = [
            (s.start_ns - self.started_ns) / 1e9 + float(s.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK])
            for s in self.llm_spans
            if isinstance(s.attributes.get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK), (int, float))
        ]
        return min(firsts) if firsts else None


@dataclass
class StoredSession(_Figures):
    id: str
    spans: list[StoredSpan] = field(default_factory=list)

    @property
    def work_spans_and_turns(self) -> list[StoredSpan]:
        """What a waterfall draws: the agent's spans and the roots of ``session.turn()`` blocks."""
        return [s for s in self.spans if not s.is_record]

    @property
    def records(self) -> list[StoredSpan]:
        """The session's records, one per process that had it (a continued session has several)."""
        found = [s for s in self.spans if s.attributes.get(semconv.SPAN_TYPE) == semconv.SPAN_TYPE_SESSION]
        return sorted(found, key=lambda s: s.end_ns)

    @property
    def root(self) -> Optional[StoredSpan]:
        """The newest record of the session (with ``trace_per="session"``: its trace's root)."""
        records = self.records
        return records[-1] if records else None

    @property
    def turns(self) -> list[StoredTurn]:
        """The turns, in the order they started (across processes: by time)."""
        by_key: dict[tuple[str, int], StoredTurn] = {}
        for span in self.spans:
            index = None if span.is_record else span.attributes.get(semconv.TURN_INDEX)
            if isinstance(index, int):
                # Per turn, a turn is a trace; per session, the index tells turns apart in the
                # one trace. Two processes continuing a session number their turns each from
                # 1, in traces of their own.
                by_key.setdefault((span.trace_id, index), StoredTurn(index)).spans.append(span)
        return sorted(by_key.values(), key=lambda t: t.started_ns)

    def _attr(self, key: str) -> Optional[str]:
        for span in self.spans:
            value = span.attributes.get(key)
            if value is not None:
                return str(value)
        return None

    @property
    def name(self) -> str:
        return self._attr(semconv.SESSION_NAME) or "?"

    @property
    def thread_id(self) -> Optional[str]:
        return self._attr(semconv.GEN_AI_CONVERSATION_ID)

    @property
    def user_id(self) -> Optional[str]:
        return self._attr(semconv.USER_ID)

    @property
    def state(self) -> str:
        root = self.root
        if root is None:
            return "unfinished"  # started, never ended (still running, or the process died)
        return str(root.attributes.get(semconv.SESSION_END_STATE) or "?")

    @property
    def started_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def duration_seconds(self) -> float:
        root = self.root
        if root is not None:
            return root.duration_seconds
        return (max(s.end_ns for s in self.spans) - self.started_ns) / 1e9


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0

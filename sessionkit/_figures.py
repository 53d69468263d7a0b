"""Figures: what a session's and a turn's spans add up to, counted as the spans end.

``Figures`` is one group's sum (LLM calls, tokens, cost, errors); a session and each of its
turns have one, made by the first LLM call or error in them. ``SessionFigures`` is everything
a session counts per span: its spans started and ended (what its record waits for), its totals,
and the time to first chunk; the span processor feeds it through ``Session.on_span_end``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Protocol

from opentelemetry.trace import StatusCode

from . import semconv
from ._tally import Tally
from ._values import as_count

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["NO_FIGURES", "Figures", "FiguresOwner", "SessionFigures"]


class Figures:
    """What a session's or a turn's spans add up to (updated under the session's lock)."""

    __slots__ = ("llm_calls", "input_tokens", "output_tokens", "errors", "cost", "unpriced", "without_usage", "ttfc")

    def __init__(self) -> None:
        self.llm_calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.errors = 0
        self.cost = 0.0
        self.unpriced = 0  # LLM calls with tokens but no known price
        self.without_usage = 0  # LLM calls that reported no token usage: the token figures are incomplete
        self.ttfc: Optional[float] = None  # a turn's: to the first chunk of its first streamed answer

    def add_llm_call(
        self, tokens_in: Optional[int], tokens_out: Optional[int], cost: Optional[float], usage_missing: bool = False
    ) -> None:
        self.llm_calls += 1
        if usage_missing:
            self.without_usage += 1
            self.unpriced += 1  # its tokens unknown, so is its cost
        self.input_tokens += tokens_in or 0
        self.output_tokens += tokens_out or 0
        if cost is not None:
            self.cost += cost
        elif tokens_in is not None or tokens_out is not None:
            self.unpriced += 1  # tokens, but no price for them: the cost is incomplete

    @property
    def cost_usd(self) -> Optional[float]:
        """The cost, or None: no LLM call, or one with no known price (never $0 for those)."""
        return self.cost if self.llm_calls and not self.unpriced else None


NO_FIGURES = Figures()
"""What a session or turn with no LLM call and no error adds up to (read only)."""


class FiguresOwner(Protocol):
    """A group of spans inside a session that keeps figures of its own. Implemented by ``Turn``."""

    figures: Optional[Figures]

    @property
    def started_ns(self) -> int:
        """When the group started, in ns since the epoch (spans' clock)."""
        ...


class SessionFigures:
    """A session's per-span counts and totals. Its lock is the session's: the totals are read
    with the rest of the session's state."""

    __slots__ = ("_lock", "_started", "_ended", "totals", "_ttfc_sum", "_ttfc_count", "_handed_on")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._started: Optional[Tally] = None  # spans started (turn roots aside): made by the first
        self._ended: Optional[Tally] = None  # spans ended (not the record): made by the first
        self.totals: Optional[Figures] = None  # LLM calls, tokens, cost, errors: made by the first
        self._ttfc_sum = 0.0
        self._ttfc_count = 0
        self._handed_on: Optional[Tally] = None  # requests that carried the session elsewhere

    def handed_on(self) -> None:
        """A request carried the session to another service (lock-free)."""
        tally = self._handed_on
        if tally is None:
            with self._lock:
                if self._handed_on is None:
                    self._handed_on = Tally()
                tally = self._handed_on
        tally.add()

    @property
    def requests_handed_on(self) -> int:
        return self._handed_on.value if self._handed_on is not None else 0

    # -- spans started and ended (lock-free: bumped on every span) ------------------------------
    def span_started(self) -> None:
        (self._started or self._make_started()).add()

    def span_ended(self) -> None:
        tally = self._ended
        if tally is None:
            with self._lock:  # once per session: two spans ending at once must share one tally
                if self._ended is None:
                    self._ended = Tally()
                tally = self._ended
        tally.add()

    def _make_started(self) -> Tally:
        with self._lock:
            if self._started is None:
                self._started = Tally()
            return self._started

    @property
    def spans_started(self) -> int:
        tally = self._started
        return 0 if tally is None else tally.value

    @property
    def spans_ended(self) -> int:
        tally = self._ended
        return 0 if tally is None else tally.value

    @property
    def spans_open(self) -> bool:
        """Whether spans of the session that started are still open."""
        return self.spans_ended < self.spans_started

    # -- LLM calls and errors ---------------------------------------------------------------------
    def add(self, span: ReadableSpan, attrs: Mapping[str, Any], group: Optional[FiguresOwner], llm: bool) -> None:
        """An LLM call (``llm``) or an error ended in the session (and in ``group``): add it up."""
        error = span.status.status_code is StatusCode.ERROR
        with self._lock:
            totals = self.totals
            if totals is None:
                totals = self.totals = Figures()
            figures: Optional[Figures] = None
            if group is not None:
                figures = group.figures
                if figures is None:
                    figures = group.figures = Figures()
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
                if figures is not None and group is not None:  # (group: for mypy; figures is its)
                    figures.add_llm_call(tokens_in, tokens_out, cost, missing)
                    if isinstance(ttfc, float) and span.start_time is not None:
                        first = (span.start_time - group.started_ns) / 1e9 + ttfc
                        if figures.ttfc is None or first < figures.ttfc:
                            figures.ttfc = first
            if error:
                totals.errors += 1
                if figures is not None:
                    figures.errors += 1

    # -- what they say ----------------------------------------------------------------------------
    def record_attributes(self) -> dict[str, Any]:
        """The session record's figures, as attributes (call with the lock held)."""
        f = self.totals or NO_FIGURES
        attrs: dict[str, Any] = {
            semconv.SESSION_SPAN_COUNT: self.spans_ended,
            semconv.SESSION_LLM_CALLS: f.llm_calls,
            semconv.SESSION_INPUT_TOKENS: f.input_tokens,
            semconv.SESSION_OUTPUT_TOKENS: f.output_tokens,
            semconv.SESSION_ERRORS: f.errors,
        }
        cost = f.cost_usd
        if cost is not None:
            attrs[semconv.SESSION_COST] = cost
        elif f.llm_calls:
            attrs[semconv.SESSION_COST_INCOMPLETE] = True
        if self.requests_handed_on:
            attrs[semconv.SESSION_REQUESTS_HANDED_ON] = self.requests_handed_on
        return attrs

    def summary_fields(self) -> dict[str, Any]:
        """The figures' fields of ``SessionSummary`` (call with the lock held)."""
        f = self.totals or NO_FIGURES
        return {
            "requests_handed_on": self.requests_handed_on,
            "span_count": self.spans_ended,
            "llm_calls": f.llm_calls,
            "input_tokens": f.input_tokens,
            "output_tokens": f.output_tokens,
            "errors": f.errors,
            "cost_usd": f.cost_usd,
            "cost_incomplete": bool(f.unpriced),
            "llm_calls_without_usage": f.without_usage,
            "llm_time_to_first_chunk_seconds": self._ttfc_sum / self._ttfc_count if self._ttfc_count else None,
        }

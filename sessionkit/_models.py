"""The records sessionkit hands back: pydantic models, so they dump to dicts and JSON.

Loaded on first use (``session.summary()``, ``client.stats()``, ``client.open_channels()``),
not at ``import sessionkit``: pydantic is the largest part of the import otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from pydantic import BaseModel

from ._findings import Finding
from ._types import EndState

__all__ = ["ClientStats", "OpenChannel", "SessionSummary", "SpanRecord", "TurnSummary"]


class TurnSummary(BaseModel):
    """One turn's figures, counted from the spans that ended in it."""

    index: int
    """The turn's number in the session, from 1 (as this process counts them)."""
    trace_id: str
    implicit: bool
    """True for a top-level call that became a turn; False for a ``session.turn()`` block."""
    active: bool
    duration_seconds: float
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    time_to_first_token_seconds: Optional[float] = None
    """From the turn's start to the first chunk of its first streamed LLM answer."""
    cost_usd: Optional[float] = None
    """What the turn's LLM calls cost; None when it made none or one had no known price."""
    cost_incomplete: bool = False
    llm_calls_without_usage: int = 0
    """LLM calls that reported no token usage: the token figures leave them out."""
    session_id: Optional[str] = None
    """Set on turns read from the local store (``Store.turns``)."""
    started_at: Optional[datetime] = None
    """Set on turns read from the local store."""


class SessionSummary(BaseModel):
    """A session's figures, as counted from the spans that ended in it."""

    session_id: str
    previous_session_id: Optional[str] = None
    """The user's session before this one (``session.previous_id``), when this process knows it."""
    name: str
    trace_per: str = "turn"
    sampled: bool = True
    """False when ``sample_rate`` dropped the session: its spans were not recorded, so its span,
    LLM-call, token and cost figures are 0; identity, state, times, turns, channels and history
    loads are still counted."""
    thread_id: Optional[str] = None
    user_id: Optional[str] = None
    tags: list[str] = []
    trace_id: str
    """The trace of the session's record (with ``trace_per="session"``: of the whole session)."""
    end_state: Optional[EndState] = None
    end_reason: Optional[str] = None
    started_at: datetime
    ended_at: Optional[datetime] = None
    duration_seconds: float
    span_count: int = 0
    """Spans that ended in the session, not counting its root span."""
    requests_handed_on: int = 0
    """Requests that carried the session to other services (``propagate_to`` targets, MCP calls,
    ``propagation_headers()``). The figures here are this process's own: the spans, LLM calls,
    tokens and cost of a service that continued the session are counted in that service (and
    in a dashboard, which has every process's spans), not here."""
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    """Spans that ended with status ERROR."""
    turn_count: int = 0
    turns: list[TurnSummary] = []
    """The turns this process saw, in order (a continued session's other turns are elsewhere)."""
    cost_usd: Optional[float] = None
    """What the session's LLM calls cost in USD (genai-prices, or your ``prices``); None when it
    made none, or when one had no known price (then ``cost_incomplete`` is True)."""
    cost_incomplete: bool = False
    llm_calls_without_usage: int = 0
    """LLM calls that reported no token usage (a stream not asked for it): the token figures
    and the cost leave them out. docs/spans.md says how to make each SDK report usage."""
    llm_time_to_first_chunk_seconds: Optional[float] = None
    """Mean time to the first chunk over the session's streamed LLM calls."""
    channels_opened: int = 0
    channels_closed: int = 0
    channels_leaked: int = 0
    """Channels still open when the session ended, or open longer than ``channel_ttl``."""
    channel_attempts: int = 0
    channel_attempts_failed: int = 0
    history_loads: int = 0
    history_load_seconds: float = 0.0
    history_messages_loaded: int = 0
    history_messages_redundant: int = 0
    """Messages loaded that earlier loads of the same conversation had loaded already."""
    history_load_growth_seconds_per_turn: Optional[float] = None
    """How much longer each turn's history load takes than the last (least-squares slope)."""
    history_advice: Optional[str] = None
    """One line saying what to do when loads keep repeating the same history without a cache."""
    findings: list[Finding] = []
    """What was found in the session (loops, retry storms, context growth, budgets, ...), oldest
    first: docs/insights.md."""


class ClientStats(BaseModel):
    """What the client has seen and sent. Nothing is dropped without showing up here."""

    spans_started: int
    spans_ended: int
    spans_exported: int
    spans_failed_export: int
    """Spans handed to the exporter in a batch that failed (collector down, rejected, ...)."""
    dropped_spans: int
    """Spans never handed to the exporter: the queue was full, or the client shut down."""
    export_errors: int
    """Export calls that failed."""
    spans_without_session: int
    queue_size: int
    """Spans waiting for export."""
    spans_in_flight: int
    """Spans the exporter is sending right now. exported + failed + dropped + queued + in flight
    = ended: nothing vanishes."""
    sessions_started: int
    sessions_active: int
    backpressure_waits: int = 0
    """Spans whose producer waited for room in a full export queue (backpressure: the
    destination was slower than the program, so the program waited instead of losing spans)."""
    backpressure_seconds: float = 0.0
    """How long those waits took, in all, in seconds."""
    display_spans_kept: int = 0
    """Spans held in memory for sessions' displays now (``display_spans``; 0 when off)."""
    display_spans_dropped: int = 0
    """Spans let go from displays: a session past ``display_max_spans``, or one that fell out of
    the ``display_max_sessions`` most recent."""


class OpenChannel(BaseModel):
    """A channel that is open now, as listed by :meth:`Client.open_channels`."""

    platform: str
    channel_id: str
    session_id: str
    purpose: Optional[str] = None
    age_seconds: float


class SpanRecord(BaseModel):
    """One span as the local store keeps it (``Store.spans``)."""

    trace_id: str
    span_id: str
    parent_span_id: Optional[str] = None
    session_id: Optional[str] = None
    turn_index: Optional[int] = None
    name: str
    kind: str
    """INTERNAL, SERVER, CLIENT, PRODUCER or CONSUMER."""
    started_at: datetime
    ended_at: datetime
    duration_seconds: float
    status: str
    """UNSET, OK or ERROR."""
    status_message: Optional[str] = None
    attributes: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    """Each event's name, time (ns since the epoch) and attributes."""
    service_name: Optional[str] = None

"""Jupyter display: sessions, clients and several sessions side by side as HTML tables."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from .client import Client
    from .models import SessionSummary
    from .session import Session

_STYLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
_CELL = "border:1px solid #ccc;padding:2px 8px;text-align:left"


def _rows(summary: SessionSummary) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("session", summary.session_id),
        ("name", summary.name),
        ("thread", summary.thread_id or "-"),
        ("user", summary.user_id or "-"),
        ("state", summary.end_state.value if summary.end_state else "active"),
        ("duration", f"{summary.duration_seconds:.3f}s"),
        ("spans", summary.span_count),
        ("LLM calls", summary.llm_calls),
        ("tokens in / out", f"{summary.input_tokens} / {summary.output_tokens}"),
        ("errors", summary.errors),
    ]
    if summary.channels_opened or summary.channel_attempts:
        rows.append(("channels opened / leaked", f"{summary.channels_opened} / {summary.channels_leaked}"))
        rows.append(("channel attempts failed", summary.channel_attempts_failed))
    if summary.history_loads:
        rows.append(("history loads", f"{summary.history_loads} in {summary.history_load_seconds * 1000:.1f} ms"))
        rows.append(("history redundant", f"{summary.history_messages_redundant} / {summary.history_messages_loaded} messages"))
    if summary.end_reason:
        rows.append(("reason", summary.end_reason))
    if summary.history_advice:
        rows.append(("advice", summary.history_advice))
    return rows


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f'<th style="{_CELL}">{html.escape(str(h))}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{html.escape(str(c))}</td>' for c in row) + "</tr>" for row in rows
    )
    return f'<table style="{_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def session_html(session: Session) -> str:
    """One session's summary as a two-column table."""
    return _table(["", "value"], [[k, v] for k, v in _rows(session.summary())])


def sessions_html(sessions: Iterable[Union[Session, SessionSummary]]) -> str:
    """Several sessions side by side: one column per session."""
    summaries = [s.summary() if hasattr(s, "summary") else s for s in sessions]
    if not summaries:
        return "<p>no sessions</p>"
    columns = [dict(_rows(s)) for s in summaries]  # type: ignore[arg-type]
    keys: list[str] = []
    for column in columns:
        keys += [k for k in column if k not in keys]
    return _table(["", *[c["name"] + " " + str(c["session"])[:8] for c in columns]],
                  [[k, *[c.get(k, "") for c in columns]] for k in keys])  # fmt: skip


class SessionsTable:
    """``display(SessionsTable(sessions))`` in a notebook; ``str()`` of it elsewhere."""

    def __init__(self, sessions: Iterable[Union[Session, SessionSummary]]) -> None:
        self.sessions = list(sessions)

    def _repr_html_(self) -> str:
        return sessions_html(self.sessions)

    def __repr__(self) -> str:
        return f"<SessionsTable of {len(self.sessions)} sessions>"


def client_html(client: Client) -> str:
    """The client: where its spans go, and its counters."""
    config = client.config
    exporter = config.exporter if isinstance(config.exporter, str) or config.exporter is None else type(config.exporter).__name__
    where = str(config.file_dir) if exporter == "file" else config.traces_url() if exporter in ("otlp", "otlp-grpc") else "-"
    stats = client.stats()
    rows = [
        ["service", config.service_name],
        ["exporter", exporter],
        ["destination", where],
        ["active sessions", ", ".join(f"{s.name} ({s.id[:8]})" for s in client.sessions()) or "-"],
        ["sessions started", stats.sessions_started],
        ["spans started / exported", f"{stats.spans_started} / {stats.spans_exported}"],
        ["spans dropped / failed export", f"{stats.dropped_spans} / {stats.spans_failed_export}"],
        ["spans outside any session", stats.spans_without_session],
    ]
    return _table(["sessionkit client", ""], rows)

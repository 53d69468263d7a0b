"""Every table sessionkit shows a person, as text (the CLI, the demo) and as HTML (Jupyter).

It renders records, never live objects: ``SessionSummary`` and ``ClientStats`` from the
package, ``StoredSession`` from the local store. One table engine per medium, one set of rows
per record, so the terminal and the notebook say the same things.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

from . import semconv
from ._store.records import STATUS_ERROR

if TYPE_CHECKING:
    from ._config import Config
    from ._models import ClientStats, SessionSummary
    from ._store.records import StoredSession, StoredSpan

__all__ = [
    "SESSION_HEADER",
    "SessionsTable",
    "client_html",
    "format_table",
    "session_html",
    "session_rows",
    "session_turns",
    "sessions_html",
    "span_tree",
    "summary_table",
]


# -- the two table engines ------------------------------------------------------------------------
def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table: columns padded to their widest cell, a rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


_STYLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
_CELL = "border:1px solid #ccc;padding:2px 8px;text-align:left"


def html_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """The same table as HTML, every cell escaped."""
    head = "".join(f'<th style="{_CELL}">{html.escape(str(h))}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{html.escape(str(c))}</td>' for c in row) + "</tr>" for row in rows
    )
    return f'<table style="{_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# -- a session's summary ------------------------------------------------------------------------------
def summary_rows(summary: SessionSummary) -> list[tuple[str, Any]]:
    """A session's figures as (label, value) pairs: the rows of its notebook display."""
    rows: list[tuple[str, Any]] = [
        ("session", summary.session_id),
        ("name", summary.name),
        ("thread", summary.thread_id or "-"),
        ("user", summary.user_id or "-"),
        ("state", summary.end_state.value if summary.end_state else "active"),
        ("duration", f"{summary.duration_seconds:.3f}s"),
        ("spans", summary.span_count),
        ("LLM calls", summary.llm_calls),
        ("tokens in / out", tokens_text(summary.input_tokens, summary.output_tokens, summary.llm_calls_without_usage)),
        ("cost", cost_text(summary.cost_usd, summary.cost_incomplete, summary.llm_calls)),
        ("turns", summary.turn_count),
        ("errors", summary.errors),
    ]
    if summary.channels_opened or summary.channel_attempts:
        rows.append(("channels opened / leaked", f"{summary.channels_opened} / {summary.channels_leaked}"))
        rows.append(("channel attempts failed", summary.channel_attempts_failed))
    if summary.history_loads:
        rows.append(("history loads", f"{summary.history_loads} in {summary.history_load_seconds * 1000:.1f} ms"))
        redundant = f"{summary.history_messages_redundant} / {summary.history_messages_loaded} messages"
        rows.append(("history redundant", redundant))
    if summary.requests_handed_on:
        rows.append(
            ("handed on", f"{summary.requests_handed_on} requests to other services (their calls are counted there)")
        )
    if summary.end_reason:
        rows.append(("reason", summary.end_reason))
    if summary.history_advice:
        rows.append(("advice", summary.history_advice))
    return rows


def tokens_text(tokens_in: int, tokens_out: int, without_usage: int) -> str:
    """Token figures for a person: says when some calls reported none (unknown, not zero)."""
    text = f"{tokens_in} / {tokens_out}"
    if without_usage:
        text += f" (incomplete: {without_usage} call{'s' if without_usage != 1 else ''} reported no usage)"
    return text


def cost_text(cost: Optional[float], incomplete: bool, llm_calls: int) -> str:
    """A cost for a person: never "$0" for an unknown price."""
    if incomplete:
        return "incomplete (a model with no known price)" if cost is None else f"${cost:.6f}+ (incomplete)"
    if cost is None:
        return "-" if not llm_calls else "unknown"
    return f"${cost:.6f}"


TURN_HEADER = ["turn", "duration", "llm", "tokens in/out", "ttft", "cost", "errors"]


def turn_rows(summary: SessionSummary) -> list[list[str]]:
    """A session's turns, one row each (its notebook display, under the figures)."""
    return [
        [
            str(t.index) + ("" if t.implicit else " (block)") + (" active" if t.active else ""),
            f"{t.duration_seconds:.3f}s",
            str(t.llm_calls),
            f"{t.input_tokens}/{t.output_tokens}",
            f"{t.time_to_first_token_seconds * 1000:.0f}ms" if t.time_to_first_token_seconds is not None else "-",
            cost_text(t.cost_usd, t.cost_incomplete, t.llm_calls),
            str(t.errors),
        ]
        for t in summary.turns
    ]


def session_html(summary: SessionSummary) -> str:
    """One session's summary as a two-column table, and its turns as a table under it."""
    figures = html_table(["", "value"], [[k, v] for k, v in summary_rows(summary)])
    if not summary.turns:
        return figures
    return figures + "<p><b>turns</b></p>" + html_table(TURN_HEADER, turn_rows(summary))


def sessions_html(summaries: Sequence[SessionSummary]) -> str:
    """Several sessions side by side: one column per session."""
    if not summaries:
        return "<p>no sessions</p>"
    columns = [dict(summary_rows(s)) for s in summaries]
    keys: list[str] = []
    for column in columns:
        keys += [k for k in column if k not in keys]
    header = ["", *[f"{c['name']} {str(c['session'])[:8]}" for c in columns]]
    return html_table(header, [[k, *[c.get(k, "") for c in columns]] for k in keys])


SUMMARY_HEADER = [
    "session",
    "user",
    "state",
    "duration",
    "turns",
    "llm",
    "tokens in/out",
    "cost",
    "ttft",
    "errors",
    "channels",
    "leaked",
    "history loads",
    "load time",
    "redundant",
]


def summary_table(summaries: Iterable[SessionSummary]) -> str:
    """Sessions' figures as a text table, one row per session (the demo's closing table)."""
    rows = []
    for s in summaries:
        ttft = s.llm_time_to_first_chunk_seconds
        rows.append(
            [
                s.session_id[:8],
                s.user_id or "-",
                s.end_state.value if s.end_state else "-",
                f"{s.duration_seconds:.2f}s",
                str(s.turn_count),
                str(s.llm_calls),
                f"{s.input_tokens}/{s.output_tokens}",
                cost_text(s.cost_usd, s.cost_incomplete, s.llm_calls),
                f"{ttft * 1000:.0f}ms" if ttft is not None else "-",
                str(s.errors),
                str(s.channels_opened),
                str(s.channels_leaked),
                str(s.history_loads),
                f"{s.history_load_seconds * 1000:.0f}ms",
                f"{s.history_messages_redundant}/{s.history_messages_loaded}",
            ]
        )
    return format_table(rows, SUMMARY_HEADER)


class SessionsTable:
    """``display(SessionsTable(sessions))`` in a notebook; ``str()`` of it elsewhere. Takes
    sessions or their summaries."""

    def __init__(self, sessions: Iterable[Any]) -> None:
        self.sessions = list(sessions)

    def _repr_html_(self) -> str:
        return sessions_html([s.summary() if hasattr(s, "summary") else s for s in self.sessions])

    def __repr__(self) -> str:
        return f"<SessionsTable of {len(self.sessions)} sessions>"


# -- the client ---------------------------------------------------------------------------------------
def client_html(config: Config, stats: ClientStats, active: Iterable[tuple[str, str]]) -> str:
    """The client: where its spans go, and its counters. ``active``: (name, id) of open sessions."""
    exporter: Union[str, None] = (
        config.exporter
        if isinstance(config.exporter, str) or config.exporter is None
        else type(config.exporter).__name__
    )
    if exporter == "file":
        where = str(config.file_dir)
    elif exporter in ("otlp", "otlp-grpc"):
        where = config.traces_url()
    else:
        where = "-"
    rows: list[list[Any]] = [
        ["service", config.service_name],
        ["exporter", exporter],
        ["destination", where],
        ["active sessions", ", ".join(f"{name} ({session_id[:8]})" for name, session_id in active) or "-"],
        ["sessions started", stats.sessions_started],
        ["spans started / exported", f"{stats.spans_started} / {stats.spans_exported}"],
        ["spans dropped / failed export", f"{stats.dropped_spans} / {stats.spans_failed_export}"],
        ["spans outside any session", stats.spans_without_session],
    ]
    return html_table(["sessionkit client", ""], rows)


# -- the local store ------------------------------------------------------------------------------------
SESSION_HEADER = [
    "id",
    "name",
    "thread",
    "user",
    "state",
    "duration",
    "turns",
    "spans",
    "llm",
    "tokens in/out",
    "cost",
    "errors",
    "findings",
]


def session_state(summary: Any) -> str:
    """A stored session's state: its end state, or ``unfinished`` (running, or its process died)."""
    state = getattr(summary, "state", None)
    if isinstance(state, str):
        return state
    return summary.end_state.value if summary.end_state is not None else "unfinished"


def session_rows(sessions: Sequence[Any]) -> list[list[str]]:
    """Stored sessions (``SessionSummary`` records or the store's plain rows) as rows under
    ``SESSION_HEADER`` (``sessionkit sessions``)."""
    return [
        [
            s.session_id[:8],
            s.name,
            s.thread_id or "-",
            s.user_id or "-",
            session_state(s),
            f"{s.duration_seconds:.2f}s",
            str(s.turn_count),
            str(s.span_count),
            str(s.llm_calls),
            f"{s.input_tokens}/{s.output_tokens}",
            "incomplete" if s.cost_incomplete else stored_cost(s.cost_usd, s.llm_calls),
            str(s.errors),
            _finding_cell(s),
        ]
        for s in sessions
    ]


def _finding_cell(session: Any) -> str:
    """``2: loop,budget`` (the store's row), or the kinds of a summary's findings; ``-``: none."""
    kinds = getattr(session, "finding_kinds", None)
    if kinds is not None:
        return f"{session.finding_count}: {kinds}" if session.finding_count else "-"
    found = getattr(session, "findings", None) or []
    return f"{len(found)}: {','.join(dict.fromkeys(f.kind for f in found))}" if found else "-"


_SPAN_LINE_KEYS = (
    semconv.OPENINFERENCE_SPAN_KIND,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.SESSION_END_STATE,
)


def _span_line(span: StoredSpan) -> str:
    attrs = span.attributes
    bits = [f"{span.name}", f"{span.duration_seconds * 1000:.1f}ms"]
    for key in _SPAN_LINE_KEYS:
        if key in attrs:
            bits.append(f"{key.rsplit('.', 1)[-1]}={attrs[key]}")
    if span.status_code == STATUS_ERROR:
        bits.append("ERROR")
    return "  ".join(bits)


def stored_cost(cost: Optional[float], llm_calls: int) -> str:
    if cost is None:
        return "-" if not llm_calls else "incomplete"
    return f"${cost:.6f}"


def clip(text: Optional[str], width: int = 160) -> str:
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def session_turns(session: StoredSession) -> str:
    """A stored session turn by turn (``sessionkit show``): each turn's figures, its input and
    output when they were captured, and its spans as a tree; then the session's totals."""
    lines: list[str] = []
    turns = session.turns
    for turn in turns:
        ttft = turn.time_to_first_token_seconds
        lines.append(
            f"turn {turn.index}  {turn.duration_seconds:.3f}s  llm={len(turn.llm_spans)}  "
            f"tokens={turn.input_tokens}/{turn.output_tokens}  "
            f"ttft={f'{ttft * 1000:.0f}ms' if ttft is not None else '-'}  "
            f"cost={stored_cost(turn.cost, len(turn.llm_spans))}  errors={turn.errors}  trace={turn.root.trace_id}"
        )
        if turn.input is not None or turn.output is not None:
            lines.append(f"  in:  {clip(turn.input)}")
            lines.append(f"  out: {clip(turn.output)}")
        lines += ["    " + line for line in span_tree(session, turn.spans).splitlines()]
    others = [s for s in session.work_spans if semconv.TURN_INDEX not in s.attributes]
    if others:
        lines.append("outside any turn")
        lines += ["    " + line for line in span_tree(session, others).splitlines()]
    lines.append(
        f"{len(turns)} turns  llm={len(session.llm_spans)}  tokens={session.input_tokens}/{session.output_tokens}  "
        f"cost={stored_cost(session.cost, len(session.llm_spans))}  errors={session.errors}  state={session.state}"
    )
    return "\n".join(lines)


def span_tree(session: StoredSession, only: Optional[Sequence[StoredSpan]] = None) -> str:
    """A stored session's spans (or ``only`` these) as an indented tree, children in start order."""
    spans = sorted(session.spans if only is None else only, key=lambda s: s.start_ns)
    ids = {s.span_id for s in spans}
    children: dict[str, list[StoredSpan]] = {}
    roots: list[StoredSpan] = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in ids:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    lines: list[str] = []

    def walk(span: StoredSpan, depth: int) -> None:
        lines.append("  " * depth + _span_line(span))
        for child in children.get(span.span_id, []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)


# -- a session's waterfall ------------------------------------------------------------------------------
def session_waterfall_html(summary: SessionSummary, kept: Any, config: Config, turn: Optional[int] = None) -> str:
    """A session's display: its figures (with cost), then its turns as a waterfall of the spans
    it kept (``turn``: that turn alone). Without kept spans: the figures, and why."""
    from ._waterfall import waterfall_html

    head = summary_rows(summary)
    if kept is None:
        note = (
            "spans are not kept for display here (display_spans is off outside a notebook kernel; "
            "display_spans=True keeps them)"
        )
        return waterfall_html(head, [], note=note, findings=summary.findings) + (
            "<p><b>turns</b></p>" + html_table(TURN_HEADER, turn_rows(summary)) if summary.turns else ""
        )
    spans = list(kept.spans)
    notes = []
    if kept.released:
        notes.append(
            f"this session's spans are no longer kept: only the {config.display_max_sessions} most recent sessions "
            "keep theirs (display_max_sessions); its figures are above"
        )
    elif kept.dropped:
        notes.append(
            f"{kept.dropped} earlier spans are not shown: a session keeps its newest {config.display_max_spans} "
            "(display_max_spans)"
        )
    findings = list(summary.findings)
    if turn is not None:
        spans = [s for s in spans if s.turn == turn]
        findings = [f for f in findings if f.turn == turn]
        head = [row for row in head if row[0] in ("session", "name", "user", "state")] + [("turn", turn)]
    return waterfall_html(head, spans, note="; ".join(notes), findings=findings)

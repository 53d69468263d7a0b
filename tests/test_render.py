"""Every table sessionkit shows: text for the terminal, HTML for notebooks, from records."""

from __future__ import annotations

from datetime import datetime, timezone

from sessionkit import Config, EndState
from sessionkit._models import ClientStats, SessionSummary
from sessionkit._render import (
    SessionsTable,
    client_html,
    format_table,
    session_html,
    sessions_html,
    span_tree,
    summary_rows,
    summary_table,
)
from sessionkit._store.records import StoredSession, StoredSpan


def summary(**changes) -> SessionSummary:
    values = dict(
        session_id="0123456789abcdef",
        name="support",
        user_id="u-1",
        trace_id="0" * 32,
        end_state=EndState.FAIL,
        end_reason="tool <crashed>",
        started_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        duration_seconds=1.25,
        span_count=4,
        llm_calls=2,
        input_tokens=30,
        output_tokens=7,
    )
    values.update(changes)
    return SessionSummary(**values)


def test_a_text_table_pads_columns_to_the_widest_cell():
    assert format_table([["a", "long value"], ["bb", "x"]], ["k", "v"]).splitlines() == [
        "k   v",
        "--  ----------",
        "a   long value",
        "bb  x",
    ]


def test_a_summary_shows_its_figures_and_only_the_sections_it_has():
    rows = dict(summary_rows(summary()))
    assert rows["state"] == "fail" and rows["tokens in / out"] == "30 / 7" and rows["reason"] == "tool <crashed>"
    assert "history loads" not in rows and "channels opened / leaked" not in rows
    rows = dict(summary_rows(summary(history_loads=3, history_load_seconds=0.012, channels_opened=1)))
    assert rows["history loads"] == "3 in 12.0 ms" and rows["channels opened / leaked"] == "1 / 0"


def test_html_escapes_every_cell():
    page = session_html(summary())
    assert "tool &lt;crashed&gt;" in page and "<crashed>" not in page


def test_several_sessions_side_by_side_and_none():
    page = sessions_html([summary(), summary(session_id="fedcba9876543210", name="other", end_reason=None)])
    assert "support 01234567" in page and "other fedcba98" in page
    assert sessions_html([]) == "<p>no sessions</p>"
    assert "support" in SessionsTable([summary()])._repr_html_()


def test_the_demo_table_has_a_row_per_session():
    table = summary_table([summary(), summary(session_id="ffff000011112222", llm_time_to_first_chunk_seconds=0.05)])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["session", "user", "state"] and len(lines) == 4
    assert lines[2].startswith("01234567") and "50ms" in lines[3]


def test_the_client_table_names_where_spans_go():
    stats = ClientStats(**{field: 0 for field in ClientStats.model_fields})
    page = client_html(Config.resolve(exporter="otlp", endpoint="http://127.0.0.1:4318"), stats, [("s", "abcdef123")])
    assert "http://127.0.0.1:4318/v1/traces" in page and "s (abcdef12)" in page


def test_a_stored_session_prints_as_a_tree_in_start_order():
    def span(span_id: str, parent: str, name: str, start: int, **attributes) -> StoredSpan:
        return StoredSpan(
            trace_id="t",
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            start_ns=start,
            end_ns=start + 2_000_000,
            attributes=attributes,
            status_code=2 if name == "broken" else 0,
        )

    stored = StoredSession(
        "s-1",
        [
            span("b", "a", "broken", 30),
            span("a", "", "session", 10, **{"sessionkit.session.end_state": "fail"}),
            span("c", "a", "chat m", 20, **{"gen_ai.usage.input_tokens": 5}),
        ],
    )
    assert span_tree(stored).splitlines() == [
        "session  2.0ms  end_state=fail",
        "  chat m  2.0ms  input_tokens=5",
        "  broken  2.0ms  ERROR",
    ]

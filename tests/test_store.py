"""The local store: SQLite, written by several processes, read while written, kept within its
limits, faults counted and never raised, old JSON-lines stores moved in, and export.

Every writer here runs with DEFAULT pipeline settings; the processes are real ones.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import openai
import pytest
import sessionkit
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from sessionkit import ConfigError, EndState
from sessionkit.fake_llm import FakeLLMServer

from helpers import run_python

WRITER = """
import sys, sessionkit
client = sessionkit.init(file_dir=sys.argv[1], service_name=sys.argv[2])
tracer = client.tracer
for i in range(int(sys.argv[3])):
    with client.session(f"{sys.argv[2]}-{i}", user_id=sys.argv[2], thread_id=f"t{i % 7}"):
        with tracer.start_as_current_span("agent"):
            with tracer.start_as_current_span("chat m", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2}):
                pass
            with tracer.start_as_current_span("execute_tool t"):
                pass
            with tracer.start_as_current_span("history.load"):
                pass
client.shutdown(timeout=60)
s = client.stats()
print("STATS", s.spans_ended, s.spans_exported, s.dropped_spans, s.spans_failed_export)
"""


def writer(store: Path, name: str, sessions: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store), name, str(sessions)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finished(proc: subprocess.Popen[str]) -> tuple[int, int, int, int]:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    ended, exported, dropped, failed = (int(x) for x in out.split("STATS")[1].split())
    return ended, exported, dropped, failed


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    return subprocess.run([sys.executable, "-m", "sessionkit", *args], capture_output=True, text=True, env=env)


def spans_per_session(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT session_id, count(*) FROM spans GROUP BY session_id").fetchall())


# -- several writers, and readers while they write -----------------------------------------------------
def test_four_processes_write_one_store_at_once_and_lose_nothing(tmp_path):
    procs = [writer(tmp_path, f"worker{k}", 300) for k in range(4)]
    results = [finished(p) for p in procs]
    for ended, exported, dropped, failed in results:
        assert (ended, exported, dropped, failed) == (1500, 1500, 0, 0)
    with sessionkit.open_store(tmp_path) as store:
        assert store.count() == 1200
        for k in range(4):
            mine = store.sessions(user=f"worker{k}", limit=None)
            assert len(mine) == 300
            assert {s.span_count for s in mine} == {4} and {s.llm_calls for s in mine} == {1}
            assert sum(s.input_tokens for s in mine) == 3000
            assert {s.end_state for s in mine} == {EndState.SUCCESS} and {s.turn_count for s in mine} == {1}
    assert set(spans_per_session(tmp_path / "sessionkit.db").values()) == {5}  # 4 spans and the record


def test_reading_while_writing_sees_whole_batches(tmp_path):
    proc = writer(tmp_path, "w", 3000)
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if not (tmp_path / "sessionkit.db").exists():
            time.sleep(0.05)
            continue
        with sessionkit.open_store(tmp_path) as store, store.snapshot():
            seen.append(store.count())
            for summary in store.sessions(limit=20):
                # A session's row and its spans are written in one transaction: a reader never
                # sees a figure its spans do not back.
                work = [s for s in store.spans(summary.session_id) if "sessionkit.span.type" not in s.attributes]
                assert summary.span_count == len(work)
                assert summary.llm_calls == sum(1 for s in work if s.name.startswith("chat"))
        time.sleep(0.1)
    assert finished(proc)[2:] == (0, 0)
    assert len(seen) >= 3 and seen == sorted(seen)  # read many times, never going back
    assert any(0 < count < 3000 for count in seen)  # some reads ran while the writer was writing
    with sessionkit.open_store(tmp_path) as store:
        assert store.count() == 3000


def test_a_tight_loop_of_sessions_loses_no_span_to_the_local_store(tmp_path):
    code = textwrap.dedent(
        f"""
        import sessionkit
        client = sessionkit.init(file_dir={str(tmp_path)!r})
        tracer = client.tracer
        for i in range(10000):
            with client.session("tight"):
                with tracer.start_as_current_span("a"):
                    with tracer.start_as_current_span("b"):
                        pass
        client.shutdown(timeout=60)
        s = client.stats()
        print(s.spans_ended, s.spans_exported, s.dropped_spans, s.spans_failed_export)
        """
    )
    code_rc, out, err, _ = run_python(code, timeout=240)
    assert code_rc == 0, err[-2000:]
    assert out.split() == ["30000", "30000", "0", "0"]
    with sqlite3.connect(tmp_path / "sessionkit.db") as db:
        assert db.execute("SELECT count(*) FROM spans").fetchone()[0] == 30000


# -- what the store counts --------------------------------------------------------------------------------
def test_stored_figures_are_the_live_sessions_figures(tmp_path):
    with FakeLLMServer() as server:
        client = sessionkit.Client(file_dir=tmp_path, llm_base_urls=[server.url], capture_content=True)
        sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        with client.session("support", user_id="ada", thread_id="conv-1", tags=["vip"]) as s:
            with s.turn("first question"):
                sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            with s.turn("second"):
                sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}])
                with pytest.raises(ValueError):
                    with client.tracer.start_as_current_span("execute_tool lookup"):
                        raise ValueError("no such order")
        live = s.summary()
        client.shutdown(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        stored = store.session(s.id[:10])
        assert stored is not None
        assert stored.session_id == s.id
        for field in ("name", "user_id", "thread_id", "tags", "end_state", "span_count", "llm_calls", "input_tokens"):
            assert getattr(stored, field) == getattr(live, field), field
        assert (stored.output_tokens, stored.errors, stored.turn_count) == (live.output_tokens, 1, 2)
        assert stored.cost_usd == pytest.approx(live.cost_usd) and stored.cost_usd > 0
        assert [t.index for t in stored.turns] == [1, 2] and [t.implicit for t in stored.turns] == [False, False]
        assert [t.llm_calls for t in stored.turns] == [t.llm_calls for t in live.turns] == [1, 1]
        assert [t.errors for t in stored.turns] == [0, 1]
        assert stored.turns[0].session_id == s.id and stored.turns[0].started_at is not None
        events = dict(
            sqlite3.connect(tmp_path / "sessionkit.db").execute("SELECT name, attributes FROM events").fetchall()
        )
        assert json.loads(events["session.end"])["sessionkit.session.end_state"] == "success"
        spans = store.spans(s.id)
        tool = next(x for x in spans if x.name == "execute_tool lookup")
        assert tool.status == "ERROR" and "no such order" in (tool.status_message or "")
        assert [e["name"] for e in tool.events] == ["exception"] and tool.turn_index == 2
        assert all(x.session_id == s.id for x in spans) and {x.service_name for x in spans} == {"sessionkit"}


def test_the_query_api_filters_pages_and_makes_data_frames(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    for i in range(12):
        session = client.start_session(f"job-{i % 3}", user_id=f"u{i % 2}", thread_id=f"t{i % 4}")
        session.end("fail" if i == 5 else "success")
    client.start_session("still-running")
    client.flush(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        assert store.count() == 12  # the running session has exported nothing yet
        assert [s.name for s in store.sessions(limit=3)] == ["job-2", "job-1", "job-0"]  # newest first
        page2 = store.sessions(limit=5, offset=5)
        assert [s.name for s in page2] == ["job-0", "job-2", "job-1", "job-0", "job-2"]
        assert {s.user_id for s in store.sessions(user="u1", limit=None)} == {"u1"}
        assert store.count(user="u1") == 6 and store.count(thread="t3") == 3
        assert [s.name for s in store.sessions(state="fail")] == ["job-2"]
        assert store.count(name="job-1") == 4 and store.count(name="job-*") == 12 and store.count(name="nope") == 0
        assert store.count(since="1h") == 12 and store.count(since="2999-01-01") == 0
        frame = store.sessions_frame(user="u0")
        assert len(frame) == 6 and set(frame["user_id"]) == {"u0"} and "input_tokens" in frame.columns
        assert len(store.turns_frame(page2[0].session_id)) == 0
        with pytest.raises(ConfigError, match="state='done'.*success, fail, indeterminate, unfinished"):
            store.sessions(state="done")
        with pytest.raises(ConfigError, match="since='soon'.*30m, 2h, 7d"):
            store.sessions(since="soon")
        with pytest.raises(ConfigError, match="limit=-1"):
            store.sessions(limit=-1)
        with pytest.raises(ConfigError, match="cannot be filtered by usr; the filters are user, thread"):
            store.count(usr="u1")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="folder path"):
        sessionkit.open_store(42)  # type: ignore[arg-type]
    client.shutdown(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        assert store.count(state="success") == 11 and store.count(state="unfinished") == 0
        assert store.count(state="indeterminate") == 1  # ended by shutdown


def test_a_session_continued_in_two_processes_is_one_stored_session(tmp_path):
    first = sessionkit.Client(file_dir=tmp_path, service_name="front")
    with first.session("chat", session_id="conv-42", user_id="u") as s:
        with s.turn("one"):
            pass
    first.shutdown(timeout=5)
    second = sessionkit.Client(file_dir=tmp_path, service_name="back")
    with second.session("chat", session_id="conv-42", user_id="u") as again:
        with again.turn("two"):
            pass
        with again.turn("three"):
            pass
    second.shutdown(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        (stored,) = store.sessions()
        assert stored.session_id == "conv-42" and stored.turn_count == 3
        assert len(store.session("conv-42").turns) == 3  # type: ignore[union-attr]


# -- retention ----------------------------------------------------------------------------------------------
def test_the_size_limit_removes_the_oldest_sessions_whole(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path, store_max_mb=0.5)
    tracer = client.tracer
    for i in range(1500):
        with client.session(f"s{i:05d}"):
            for _ in range(4):
                with tracer.start_as_current_span("work", attributes={"payload": "x" * 100}):
                    pass
        if i % 100 == 0:
            client.flush(timeout=5)
    client.shutdown(timeout=10)
    db = tmp_path / "sessionkit.db"
    with sqlite3.connect(db) as conn:
        pages, free, size = (
            conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size")
        )
        names = [r[0] for r in conn.execute("SELECT name FROM sessions ORDER BY start_ns")]
    assert (pages - free) * size <= 0.55 * 1024 * 1024
    assert 50 < len(names) < 1500
    assert names == [f"s{i:05d}" for i in range(1500 - len(names), 1500)]  # the newest, in a row
    counts = spans_per_session(db)
    assert set(counts.values()) == {5} and len(counts) == len(names)  # no half sessions
    with sessionkit.open_store(tmp_path) as store:
        assert store.count() == len(names)  # the kept count follows the removals


def test_the_age_limit_removes_old_sessions_and_keeps_new_ones(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    for name in ("old-1", "old-2"):
        with client.session(name):
            pass
    client.shutdown(timeout=5)
    three_days = 3 * 86400 * 10**9
    with sqlite3.connect(tmp_path / "sessionkit.db") as conn:
        conn.execute("UPDATE sessions SET start_ns = start_ns - ?, last_ns = last_ns - ?", (three_days, three_days))
    client = sessionkit.Client(file_dir=tmp_path, store_max_age_days=2)
    with client.session("new"):
        pass
    client.shutdown(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        assert [s.name for s in store.sessions()] == ["new"]
    assert set(spans_per_session(tmp_path / "sessionkit.db")) == {store.sessions()[0].session_id}


@pytest.mark.parametrize(
    ("setting", "value", "fix"),
    [
        ("store_max_mb", 0, "greater than 0"),
        ("store_max_age_days", float("inf"), "finite"),
        ("store_max_mb", "big", "number"),
    ],
)
def test_bad_retention_settings_are_named(tmp_path, setting, value, fix):
    with pytest.raises(ConfigError) as info:
        sessionkit.Client(file_dir=tmp_path, **{setting: value})
    assert info.value.field == setting and fix in str(info.value).lower()


def test_retention_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SESSIONKIT_STORE_MAX_MB", "64")
    monkeypatch.setenv("SESSIONKIT_STORE_MAX_AGE_DAYS", "none")
    config = sessionkit.Config.resolve(file_dir=tmp_path)
    assert (config.store_max_mb, config.store_max_age_days) == (64.0, None)


# -- faults -----------------------------------------------------------------------------------------------
def test_a_damaged_store_is_a_clear_error_at_init(tmp_path):
    (tmp_path / "sessionkit.db").write_bytes(b"this is not a database " * 100)
    with pytest.raises(ConfigError) as info:
        sessionkit.Client(file_dir=tmp_path)
    message = str(info.value)
    assert info.value.field == "file_dir" and "sessionkit.db" in message and "Move the file away" in message
    proc = run_cli("sessions", "--dir", str(tmp_path))
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr


def test_a_store_from_a_newer_sessionkit_is_refused_by_name(tmp_path):
    with sqlite3.connect(tmp_path / "sessionkit.db") as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(ConfigError, match="newer sessionkit"):
        sessionkit.Client(file_dir=tmp_path)


def test_a_locked_store_is_counted_and_logged_once_never_raised(tmp_path, caplog):
    client = sessionkit.Client(file_dir=tmp_path, export_interval=0.1)
    with client.session("before"):
        pass
    assert client.flush(timeout=5)
    holder = sqlite3.connect(tmp_path / "sessionkit.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process's long write
    caplog.set_level(logging.DEBUG, logger="sessionkit")
    try:
        for i in range(3):
            with client.session(f"while-locked-{i}"):  # the agent goes on; nothing raises here
                pass
            client.flush(timeout=8)
        stats = client.stats()
        assert stats.spans_failed_export >= 1 and stats.export_errors >= 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "local store" in r.getMessage()]
    assert len(errors) == 1 and "locked" in errors[0].getMessage()
    with client.session("after"):
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the pipeline tries again once an export succeeds
        client.flush(timeout=2)
        with sessionkit.open_store(tmp_path) as store:
            if store.count(name="after"):
                break
        time.sleep(0.2)
    client.shutdown(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        assert store.count(name="after") == 1 and store.count(name="before") == 1
    stats = client.stats()
    assert stats.spans_ended == stats.spans_exported + stats.spans_failed_export + stats.dropped_spans


def test_a_full_disk_is_counted_and_logged_never_raised(tmp_path, caplog):
    from sessionkit._export.factory import unwrap

    client = sessionkit.Client(file_dir=tmp_path)
    with client.session("first"):
        pass
    assert client.flush(timeout=5)
    exporter = unwrap(client.exporter)
    conn = exporter.writer.connection()  # type: ignore[union-attr]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "database or disk is full"
    caplog.set_level(logging.ERROR, logger="sessionkit")
    for i in range(200):
        with client.session(f"full-{i}", user_id="x" * 200):
            with client.tracer.start_as_current_span("work", attributes={"big": "y" * 2000}):
                pass
    client.flush(timeout=5)
    stats = client.stats()
    assert stats.spans_failed_export > 0
    messages = [r.getMessage() for r in caplog.records if "local store" in r.getMessage()]
    assert len(messages) == 1 and "full" in messages[0]
    client.shutdown(timeout=5)


# -- old stores -------------------------------------------------------------------------------------------
def test_an_old_json_lines_store_is_moved_in_once_with_a_message(tmp_path):
    from sessionkit._store.codec import spans_to_otlp_json

    memory = sessionkit.Client(exporter="memory", service_name="old")
    with memory.session("legacy", user_id="old-user") as s:
        with memory.tracer.start_as_current_span(
            "chat m",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": 7,
                "gen_ai.usage.output_tokens": 3,
            },
        ):
            pass
    memory.flush(timeout=5)
    spans = memory.exporter.get_finished_spans()  # type: ignore[union-attr]
    (tmp_path / "spans-20261101-000000-42.jsonl").write_text(
        json.dumps(spans_to_otlp_json(spans)) + "\n" + "not json\n", encoding="utf-8"
    )
    (tmp_path / "events-20261101-000000-42.jsonl").write_text("{}\n", encoding="utf-8")
    proc = run_cli("sessions", "--dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "moving 2 JSON-lines files" in proc.stderr and "imported 2 spans" in proc.stderr
    assert s.id[:8] in proc.stdout and "old-user" in proc.stdout and "7/3" in proc.stdout
    assert not list(tmp_path.glob("*.jsonl")) and len(list((tmp_path / "imported-jsonl").glob("*.jsonl"))) == 2
    again = run_cli("sessions", "--dir", str(tmp_path))
    assert "moving" not in again.stderr and again.stdout.count("old-user") == 1
    memory.shutdown(timeout=1)


# -- export ------------------------------------------------------------------------------------------------
def _varied_spans():
    """Spans with every kind of field the encoder reads: events, links, a remote parent, an
    error status, array and bytes attributes, trace state."""
    memory = sessionkit.Client(exporter="memory", service_name="varied", resource_attributes={"deployment": "test"})
    tracer = memory.tracer
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with memory.session("varied", user_id="u", tags=["a", "b"]) as s:
        with tracer.start_as_current_span("server", kind=SpanKind.SERVER) as span:
            span.set_attribute("numbers", [1, 2, 3])
            span.set_attribute("ratio", 0.5)
            span.set_attribute("whole", 2.0)
            span.set_attribute("flag", True)
            span.set_attribute("blob", b"\x00\x01")
            span.add_event("step", {"n": 1, "label": "one"})
            with tracer.start_as_current_span("linked", links=[Link(remote, {"why": "batch"})]) as child:
                child.set_status(Status(StatusCode.ERROR, "bad"))
    memory.flush(timeout=5)
    spans = list(memory.exporter.get_finished_spans())  # type: ignore[union-attr]
    memory.shutdown(timeout=1)
    return s, spans


def _span_bytes(requests):
    found = {}
    for request in requests:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    found[span.span_id.hex()] = (
                        span.SerializeToString(),
                        rs.resource.SerializeToString(),
                        ss.scope.SerializeToString(),
                    )
    return found


def test_export_sends_the_stored_spans_byte_for_byte(tmp_path, receiver):
    from sessionkit._store.writer import StoreWriter

    session, spans = _varied_spans()
    writer = StoreWriter(tmp_path, max_bytes=None, max_age=None)  # what the file exporter writes with
    writer.write_spans(spans)
    writer.close()
    proc = run_cli("export", "--endpoint", receiver.endpoint, "--dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"sent {len(spans)} spans" in proc.stdout
    received = []
    for body in receiver.raw:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        received.append(request)
    expected = _span_bytes([encode_spans(spans)])
    assert _span_bytes(received) == expected and len(expected) == len(spans) == 3


def test_export_jsonl_and_since(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    for name in ("old", "new"):
        with client.session(name):
            with client.tracer.start_as_current_span("w"):
                pass
    client.shutdown(timeout=5)
    with sqlite3.connect(tmp_path / "sessionkit.db") as conn:
        conn.execute("UPDATE sessions SET start_ns = start_ns - ? WHERE name = 'old'", (86400 * 10**9 * 2,))
    out = tmp_path / "all.jsonl"
    assert run_cli("export", "--jsonl", str(out), "--dir", str(tmp_path)).returncode == 0
    names = [
        span["name"]
        for line in out.read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    assert sorted(names) == ["new", "old", "w", "w"]
    recent = tmp_path / "recent.jsonl"
    proc = run_cli("export", "--jsonl", str(recent), "--since", "1d", "--dir", str(tmp_path))
    assert proc.returncode == 0 and "wrote 2 spans" in proc.stdout
    bad = run_cli("export", "--jsonl", str(recent), "--since", "yesterday", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "since='yesterday'" in bad.stderr


def test_export_to_a_collector_that_refuses_says_so(tmp_path, dead_port):
    client = sessionkit.Client(file_dir=tmp_path)
    with client.session("s"):
        pass
    client.shutdown(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        with pytest.raises(sessionkit.StoreError, match="did not take the spans"):
            store.export(f"http://127.0.0.1:{dead_port}", timeout=1)
        with pytest.raises(ConfigError, match="endpoint='127.0.0.1:4318'"):
            store.export("127.0.0.1:4318")


# -- the CLI ----------------------------------------------------------------------------------------------
def test_the_cli_filters_pages_and_prints_json(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    for i in range(6):
        session = client.start_session(f"task-{i}", user_id="ann" if i < 4 else "bob", thread_id=f"th{i % 2}")
        session.end("fail" if i == 3 else "success", "timeout" if i == 3 else None)
    client.shutdown(timeout=5)

    def names(*args: str) -> list[str]:
        proc = run_cli("sessions", "--dir", str(tmp_path), "--json", *args)
        assert proc.returncode == 0, proc.stderr
        return [s["name"] for s in json.loads(proc.stdout)]

    assert names() == [f"task-{i}" for i in range(5, -1, -1)]
    assert names("--user", "bob") == ["task-5", "task-4"]
    assert names("--thread", "th1", "--user", "ann") == ["task-3", "task-1"]
    assert names("--state", "fail") == ["task-3"]
    assert names("--name", "task-[12]") == ["task-2", "task-1"]
    assert names("--limit", "2", "--offset", "2") == ["task-3", "task-2"]
    assert names("--since", "2999-01-01") == []
    table = run_cli("sessions", "--dir", str(tmp_path), "--user", "ann", "--limit", "3")
    assert "1-3 of 4 sessions" in table.stdout and "--offset 3" in table.stdout and "task-0" not in table.stdout
    none = run_cli("sessions", "--dir", str(tmp_path), "--user", "nobody")
    assert "No sessions match" in none.stdout
    with sessionkit.open_store(tmp_path) as store:
        failed = store.sessions(state="fail")[0]
    shown = run_cli("show", failed.session_id[:6], "--dir", str(tmp_path), "--json")
    data = json.loads(shown.stdout)
    assert data["session_id"] == failed.session_id and data["end_reason"] == "timeout"
    assert [s["name"] for s in data["spans"]] == ["task-3"]  # the session's record alone
    text = run_cli("show", failed.session_id, "--dir", str(tmp_path))
    assert f"session {failed.session_id}" in text.stdout and "state=fail" in text.stdout
    assert run_cli("sessions", "--dir", str(tmp_path), "--limit", "-1").returncode == 2
    assert run_cli("sessions", "--dir", str(tmp_path), "--state", "done").returncode == 2


def test_show_says_when_a_prefix_names_several_sessions(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    for sid in ("abc-1", "abc-2"):
        with client.session("x", session_id=sid):
            pass
    client.shutdown(timeout=5)
    proc = run_cli("show", "abc", "--dir", str(tmp_path))
    assert proc.returncode == 1 and "several sessions have an id starting 'abc'" in proc.stderr
    assert run_cli("show", "abc-2", "--dir", str(tmp_path)).returncode == 0


def test_events_reach_the_store_through_the_logs_signal_when_spans_go_elsewhere(tmp_path):
    client = sessionkit.Client(exporter="memory", logs_exporter="file", file_dir=tmp_path)
    with client.session("chat", user_id="u") as s:
        pass
    client.shutdown(timeout=5)
    with sqlite3.connect(tmp_path / "sessionkit.db") as conn:
        rows = conn.execute("SELECT name, session_id, attributes FROM events ORDER BY time_ns").fetchall()
        assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 0  # the spans went to memory
    assert [(name, sid) for name, sid, _ in rows] == [("session.start", s.id), ("session.end", s.id)]
    assert json.loads(rows[1][2])["sessionkit.session.end_state"] == "success"


def test_a_snapshot_reads_one_moment_of_the_store(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    with client.session("first"):
        pass
    assert client.flush(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        with store.snapshot():
            assert store.count() == 1
            with client.session("second"):
                pass
            assert client.flush(timeout=5)
            assert store.count() == 1 and [s.name for s in store.sessions()] == ["first"]
        assert store.count() == 2  # after the block: the store as it is now
    client.shutdown(timeout=5)


def test_a_long_export_reports_its_progress(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    for i in range(300):
        with client.session(f"s{i}"):
            for _ in range(3):
                with client.tracer.start_as_current_span("w"):
                    pass
    client.shutdown(timeout=10)
    seen: list[tuple[int, int]] = []
    with sessionkit.open_store(tmp_path) as store:
        sent = store.export_jsonl(tmp_path / "out.jsonl", progress=lambda done, total: seen.append((done, total)))
    assert sent == 1200 and len(seen) == 3  # batches of 512
    assert [d for d, _ in seen] == [512, 1024, 1200] and {t for _, t in seen} == {1200}


def test_show_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    with client.session("long") as s:
        for _ in range(3000):  # far more output than a pipe holds
            with client.tracer.start_as_current_span("step"):
                pass
    client.shutdown(timeout=10)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionkit", "show", s.id, "--dir", str(tmp_path), "--width", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"session ")
    proc.stdout.close()  # `sessionkit show ID | head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "Traceback" not in err


# -- faults, round 3: relative folders, a store being made, newer schemas, damage, exit codes, live sessions
def store_with_sessions(folder: Path, count: int = 2) -> list[str]:
    client = sessionkit.Client(file_dir=folder, export_interval=0.1)
    ids = []
    for i in range(count):
        with client.session(f"s{i}") as s:
            with client.tracer.start_as_current_span("work"):
                pass
        ids.append(s.id)
    client.shutdown(timeout=5)
    return ids


def test_a_relative_store_folder_works_for_the_cli_and_the_api(tmp_path, monkeypatch):
    ids = store_with_sessions(tmp_path / "relstore")
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    for args, extra in ((("sessions", "--dir", "relstore"), {}), (("sessions",), {"SESSIONKIT_FILE_DIR": "relstore"})):
        proc = subprocess.run(
            [sys.executable, "-m", "sessionkit", *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            cwd=tmp_path,
        )
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert all(i[:8] in proc.stdout for i in ids)
    with sessionkit.open_store("relstore") as store:
        assert store.count() == 2
    with sessionkit.open_store(".") as store:  # a folder with no store in it: empty, not an error
        assert store.count() == 0


def test_the_cli_refuses_a_store_of_a_newer_schema_with_exit_2(tmp_path):
    store_with_sessions(tmp_path)
    with sqlite3.connect(tmp_path / "sessionkit.db") as conn:
        conn.execute("PRAGMA user_version=99")
    for args in (("sessions",), ("show", "x"), ("export", "--jsonl", str(tmp_path / "out.jsonl"))):
        proc = run_cli(*args, "--dir", str(tmp_path))
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "newer sessionkit" in proc.stderr and "Traceback" not in proc.stderr


def test_a_reader_waits_for_a_store_its_first_writer_is_still_making(tmp_path):
    from sessionkit._store.schema import connect, db_path

    path = db_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()  # the file exists; its tables are not made yet

    def make_tables() -> None:
        time.sleep(0.5)
        connect(path).close()

    maker = threading.Thread(target=make_tables)
    maker.start()
    try:
        with sessionkit.open_store(tmp_path) as store:
            assert store.count() == 0 and store.sessions() == []  # no "no such table"
    finally:
        maker.join()


def test_a_damaged_page_is_caught_at_init(tmp_path):
    store_with_sessions(tmp_path, 40)
    path = tmp_path / "sessionkit.db"
    data = bytearray(path.read_bytes())
    page = 4096
    for at in range(3 * page, len(data) - page, page):  # every page past the schema's: scribbled on
        data[at + 100 : at + 400] = b"\xa5" * 300
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as info:
        sessionkit.Client(file_dir=tmp_path)
    assert info.value.field == "file_dir" and "damaged" in str(info.value)


def test_a_large_store_passes_the_init_check(tmp_path, monkeypatch):
    from sessionkit._store import schema

    store_with_sessions(tmp_path, 3)
    monkeypatch.setattr(schema, "QUICK_CHECK_BYTES", 0)  # every store is "large": both ends of each table
    schema.check_usable(tmp_path)  # a sound store: no error
    sessionkit.Client(file_dir=tmp_path).shutdown(timeout=2)


def test_export_exits_2_for_a_store_fault_and_1_for_a_refusing_collector(tmp_path, dead_port):
    (tmp_path / "sessionkit.db").write_bytes(b"not a database " * 200)
    proc = run_cli("export", "--jsonl", str(tmp_path / "out.jsonl"), "--dir", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    good = tmp_path / "good"
    store_with_sessions(good)
    proc = run_cli("export", "--endpoint", f"http://127.0.0.1:{dead_port}", "--dir", str(good))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_size_retention_never_removes_a_live_session(tmp_path):
    from sessionkit._store.retention import Retention

    client = sessionkit.Client(file_dir=tmp_path, export_interval=0.1, store_max_mb=None)
    live = client.start_session("long-live", session_id="live-1")
    with client.tracer.start_as_current_span("live-work"):
        pass
    assert client.flush(timeout=5)
    ended = []
    for i in range(30):
        with (
            client.session(f"ended-{i}") as s,
            client.tracer.start_as_current_span("work", attributes={"pad": "x" * 4000}),
        ):
            pass
        ended.append(s.id)
    assert client.flush(timeout=5)
    conn = sqlite3.connect(tmp_path / "sessionkit.db", isolation_level=None)
    try:
        from sessionkit._store.retention import used_bytes

        limit = int(used_bytes(conn) * 0.6)  # over the limit, but under twice it
        Retention(max_bytes=limit, max_age=None).written(conn, 10_000)
        left = {r[0] for r in conn.execute("SELECT session_id FROM sessions")}
        Retention(max_bytes=1, max_age=None).written(conn, 10_000)  # a runaway: live sessions past twice the limit
        after_runaway = {r[0] for r in conn.execute("SELECT session_id FROM sessions")}
    finally:
        conn.close()
    assert "live-1" in left and len(left) < 31  # the oldest by start, but still running: kept; ended ones went
    assert after_runaway == set()  # the disk is bounded all the same
    live.end()
    client.shutdown(timeout=5)


def _schema_1_store(folder):
    """A store as sessionkit with schema 1 made it: every table but ``findings``."""
    from sessionkit._store import schema

    folder.mkdir(parents=True, exist_ok=True)
    conn = schema.connect(folder / schema.DB_NAME)  # (made at this version's schema, then taken back)
    conn.executescript("BEGIN;DROP INDEX findings_kind;DROP TABLE findings;PRAGMA user_version=1;COMMIT;")
    conn.close()


def test_a_store_of_schema_1_gains_the_findings_table_when_written(tmp_path):
    _schema_1_store(tmp_path / "old")
    client = sessionkit.Client(exporter="file", file_dir=str(tmp_path / "old"))

    @client.tool
    def lookup(order: str) -> str:
        return order

    with client.session("after the upgrade") as session:
        with session.turn("loop"):
            for _ in range(3):
                lookup("A-1")
    assert client.flush(10)
    stats = client.stats()
    client.shutdown(timeout=5)
    assert stats.spans_exported >= 5 and stats.spans_failed_export == 0
    with sessionkit.open_store(tmp_path / "old") as store:
        assert [f.kind for f in store.findings(session.id)] == ["loop"]
        assert store.sessions(finding="loop")[0].session_id == session.id


def test_a_store_of_schema_1_opened_to_read_is_brought_up_to_date(tmp_path):
    import sqlite3

    _schema_1_store(tmp_path / "old")
    with sessionkit.open_store(tmp_path / "old") as store:
        assert store.sessions() == [] and store.findings() == [] and store.count(finding="loop") == 0
    conn = sqlite3.connect(str(tmp_path / "old" / "sessionkit.db"))
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM findings").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_store_of_schema_1_that_cannot_be_written_is_read_without_findings(tmp_path, monkeypatch):
    import sqlite3

    from sessionkit._store import schema

    _schema_1_store(tmp_path / "old")
    real = schema.connect

    def no_writer(path, *, readonly=False, timeout_ms=schema.BUSY_TIMEOUT_MS):
        if not readonly:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real(path, readonly=True, timeout_ms=timeout_ms)

    monkeypatch.setattr(schema, "connect", no_writer)
    with sessionkit.open_store(tmp_path / "old") as store:
        assert store.sessions() == [] and store.findings() == [] and store.count(finding="loop") == 0
    monkeypatch.undo()
    conn = sqlite3.connect(str(tmp_path / "old" / "sessionkit.db"))
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # (left as it was)
    finally:
        conn.close()

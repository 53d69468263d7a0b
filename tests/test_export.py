"""Export over real OTLP/HTTP to a receiver on 127.0.0.1, faults included, and the file store."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest
import sessionkit

from grpc_receiver import GrpcOtlpReceiver
from helpers import read_sessions, run_python, session_id_of
from otlp_receiver import OtlpReceiver


def test_spans_arrive_over_otlp_http_with_session_identity_and_resource(receiver):
    c = sessionkit.Client(endpoint=receiver.endpoint, service_name="support-bot", headers={"x-team": "core"})
    try:
        with c.session("triage", thread_id="conv-42", user_id="u-7") as s:
            with c.tracer.start_as_current_span("lookup"):
                pass
        assert c.flush(timeout=10)
        assert receiver.wait_for(lambda spans: any(x.name == "triage" for x in spans))
        spans = {x.name: x for x in receiver.spans}
        assert set(spans) == {"triage", "lookup"}  # a session shorter than export_interval needs no start marker
        lookup = spans["lookup"]
        assert lookup.attributes["session.id"] == s.id
        assert lookup.attributes["user.id"] == "u-7"
        assert lookup.attributes["gen_ai.conversation.id"] == "conv-42"
        # The top-level span is the session's first turn, a trace of its own; the session's
        # record is a trace apart that carries the id under its own name (no extra turn).
        assert lookup.attributes["sessionkit.turn.index"] == 1 and not lookup.parent_span_id
        record = spans["triage"]
        assert record.trace_id == s.trace_id != lookup.trace_id
        assert record.attributes["sessionkit.session.id"] == s.id and "session.id" not in record.attributes
        assert record.attributes["sessionkit.session.turns"] == 1
        assert lookup.resource["service.name"] == "support-bot"
        assert lookup.resource["openinference.project.name"] == "support-bot"
        assert receiver.headers[0]["x-team"] == "core"
        stats = c.stats()
        assert (stats.spans_exported, stats.dropped_spans, stats.export_errors) == (2, 0, 0)
    finally:
        c.shutdown(timeout=2)


def test_a_running_session_shows_each_turn_as_it_ends(receiver):
    c = sessionkit.Client(endpoint=receiver.endpoint, export_interval=0.2)
    try:
        s = c.start_session("still-running")
        with s.turn("first question"):
            pass
        assert receiver.wait_for(lambda spans: any(x.attributes.get("session.id") == s.id for x in spans), 5)
        (turn,) = [x for x in receiver.spans if x.attributes.get("session.id") == s.id]
        assert turn.name == "turn 1: first question" and turn.attributes["sessionkit.turn.index"] == 1
        assert turn.attributes["sessionkit.session.name"] == "still-running"
        assert s.is_active  # the session goes on; its record follows when it ends
        s.end()
    finally:
        c.shutdown(timeout=2)


def test_per_session_a_running_session_is_announced_by_a_start_marker(receiver):
    c = sessionkit.Client(endpoint=receiver.endpoint, export_interval=0.2, trace_per="session")
    try:
        s = c.start_session("still-running")
        assert receiver.wait_for(lambda spans: any(x.attributes.get("session.id") == s.id for x in spans), 5)
        marker = next(x for x in receiver.spans if x.attributes.get("session.id") == s.id)
        assert marker.name == "session.start"
        assert marker.attributes["sessionkit.session.name"] == "still-running"
        s.end()
    finally:
        c.shutdown(timeout=2)


def test_a_process_that_crashes_mid_session_loses_only_its_open_turn(receiver):
    code = textwrap.dedent(f"""
        import os, time, sessionkit
        c = sessionkit.init(endpoint="{receiver.endpoint}", export_interval=0.2)
        s = c.start_session("doomed")
        with s.turn("one"):
            pass
        with s.turn("two"):
            print(s.id, flush=True)
            time.sleep(1.5)
            os._exit(1)  # no atexit, no flush: a crash in the middle of turn 2
    """)
    rc, out, err, _ = run_python(code)
    assert rc == 1, err
    session_id = out.strip()
    kept = [x for x in receiver.spans if x.attributes.get("session.id") == session_id]
    assert [x.attributes["sessionkit.turn.index"] for x in kept] == [1]


@pytest.mark.parametrize("collector", ["refused", "hanging"])
def test_exit_with_a_dead_collector_respects_the_shutdown_timeout(collector, dead_port):
    hanging = OtlpReceiver(mode="hang").start() if collector == "hanging" else None
    endpoint = hanging.endpoint if hanging else f"http://127.0.0.1:{dead_port}"
    code = textwrap.dedent(f"""
        import time, sessionkit
        c = sessionkit.init(endpoint="{endpoint}", export_timeout=30, shutdown_timeout=1.5,
                            export_interval=0.1, auto_start_session=True)
        for i in range(200):
            with c.tracer.start_as_current_span("op"):
                pass
        time.sleep(0.5)  # let the exporter get stuck on the dead collector
        print(time.time(), flush=True)
    """)
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
        exited = time.time()
        assert proc.returncode == 0, err
        exit_seconds = exited - float(out.strip().splitlines()[-1])
        assert exit_seconds <= 1.5 + 1.0, f"exit took {exit_seconds:.2f}s"
    finally:
        if hanging:
            hanging.stop()


def test_flush_and_shutdown_return_within_their_timeouts_when_the_collector_hangs():
    with OtlpReceiver(mode="hang") as hanging:
        c = sessionkit.Client(endpoint=hanging.endpoint, export_timeout=30, export_interval=0.05)
        with c.session("s"):
            pass
        time.sleep(0.3)
        started = time.monotonic()
        assert c.flush(timeout=0.5) is False
        flushed = time.monotonic() - started
        started = time.monotonic()
        c.shutdown(timeout=0.5)
        shut = time.monotonic() - started
        assert flushed < 1.5 and shut < 1.5, (flushed, shut)


def test_queue_is_bounded_and_drops_are_counted_and_logged_once(caplog):
    with OtlpReceiver(mode="hang") as hanging:
        c = sessionkit.Client(
            endpoint=hanging.endpoint,
            max_queue_size=50,
            max_export_batch_size=10,
            export_timeout=30,
            export_interval=0.05,
        )
        try:
            with caplog.at_level(logging.WARNING, logger="sessionkit"):
                with c.session("flood"):
                    time.sleep(0.2)
                    for _ in range(1000):
                        with c.tracer.start_as_current_span("op"):
                            pass
            stats = c.stats()
            assert stats.queue_size <= 50
            # At most one batch (10) is stuck in the exporter, the queue holds 50: the rest dropped.
            assert stats.dropped_spans >= 1000 + 1 - 50 - 10 - 1
            assert stats.spans_started == stats.spans_ended == 1001  # the ops and the session's record
            assert len([r for r in caplog.records if "queue full" in r.getMessage()]) == 1
        finally:
            c.shutdown(timeout=0.5)


def test_export_errors_are_counted_when_the_collector_rejects(dead_port):
    with OtlpReceiver(mode="status:400") as rejecting:
        c = sessionkit.Client(endpoint=rejecting.endpoint, export_timeout=2)
        try:
            with c.session("rejected"):
                pass
            c.flush(timeout=5)
            stats = c.stats()
            assert stats.export_errors >= 1 and stats.spans_failed_export == 1 and stats.spans_exported == 0
        finally:
            c.shutdown(timeout=1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_exports_its_own_spans_once(receiver):
    code = textwrap.dedent(f"""
        import os, sessionkit
        c = sessionkit.init(endpoint="{receiver.endpoint}", export_interval=60)
        with c.session("parent-session") as s:
            with c.tracer.start_as_current_span("before-fork"):
                pass
            pid = os.fork()
            if pid == 0:
                with c.tracer.start_as_current_span("in-child"):
                    pass
                c.flush(timeout=5)
                os._exit(0)
            os.waitpid(pid, 0)
            with c.tracer.start_as_current_span("after-fork"):
                pass
        c.flush(timeout=5)
    """)
    rc, out, err, _ = run_python(code)
    assert rc == 0, err
    names = sorted(x.name for x in receiver.spans)
    assert names == ["after-fork", "before-fork", "in-child", "parent-session"]
    session_ids = {session_id_of(x) for x in receiver.spans}
    assert len(session_ids) == 1  # the child's span belongs to the session it was forked in


def test_otlp_grpc_export(tmp_path):
    with GrpcOtlpReceiver() as server:
        c = sessionkit.Client(exporter="otlp-grpc", endpoint=server.endpoint, service_name="grpc-svc")
        try:
            with c.session("over-grpc", user_id="u-1") as s:
                with c.tracer.start_as_current_span("step"):
                    pass
            assert c.flush(timeout=10)
            assert server.wait_for(lambda spans: len(spans) >= 2)  # the step and the root
            step = next(x for x in server.spans if x.name == "step")
            assert step.attributes["session.id"] == s.id
            assert step.resource["service.name"] == "grpc-svc"
        finally:
            c.shutdown(timeout=2)


def test_offline_init_writes_the_file_store_and_the_cli_reads_it(tmp_path):
    store = tmp_path / "store"
    c = sessionkit.init()  # no endpoint: the embedded file exporter
    with c.session("checkout", thread_id="conv-1", user_id="u-9") as s:
        with c.tracer.start_as_current_span(
            "chat m",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": 30,
                "gen_ai.usage.output_tokens": 7,
            },
        ):
            pass
        with c.tracer.start_as_current_span("tool"):
            pass
    failing = c.start_session("broken")
    failing.end("fail", "no stock")
    c.flush(timeout=5)
    assert [p.name for p in store.glob("*.db")] == ["sessionkit.db"]  # one database, no other files
    assert not list(store.glob("*.jsonl"))

    stored = {x.id: x for x in read_sessions(store)}
    assert set(stored) == {s.id, failing.id}
    checkout = stored[s.id]
    assert (checkout.name, checkout.thread_id, checkout.user_id, checkout.state) == (
        "checkout",
        "conv-1",
        "u-9",
        "success",
    )
    assert (len(checkout.work_spans), len(checkout.llm_spans), checkout.input_tokens, checkout.output_tokens) == (
        2,
        1,
        30,
        7,
    )

    env = {"SESSIONKIT_FILE_DIR": str(store)}
    listing = subprocess.run(
        [sys.executable, "-m", "sessionkit", "sessions"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout
    line = next(row for row in listing.splitlines() if row.startswith(s.id[:8]))
    # name, thread, user, state, duration, turns, spans, llm calls, tokens, cost, errors
    assert line.split()[1:12] == ["checkout", "conv-1", "u-9", "success", line.split()[5], "2", "2", "1", "30/7"] + [
        "incomplete",  # "m" is a model nobody has a price for: never $0
        "0",
    ]
    assert "fail" in next(row for row in listing.splitlines() if row.startswith(failing.id[:8]))

    def show(*extra: str) -> list[str]:
        return subprocess.run(
            [sys.executable, "-m", "sessionkit", "show", s.id[:8], *extra],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            check=True,
        ).stdout.splitlines()

    lines = show("--tree")
    assert lines[0].startswith(f"session {s.id}")
    assert lines[1].startswith("turn 1") and "llm=1" in lines[1] and "tokens=30/7" in lines[1]
    assert lines[2].startswith("    chat m") and "input_tokens=30" in lines[2]
    assert lines[3].startswith("turn 2") and lines[4].startswith("    tool")
    assert lines[-1].startswith("2 turns") and "cost=incomplete" in lines[-1]
    lines = show("--width", "80")  # the waterfall
    assert lines[0].startswith(f"session {s.id}")
    assert lines[1].startswith("turn 1") and "llm=1 tokens=30/7" in lines[1]
    assert lines[2].startswith("chat m [chat]") and "|" in lines[2] and "tokens=30/7" in lines[3]
    assert lines[4].startswith("turn 2") and lines[5].startswith("tool ")
    assert lines[-1].startswith("2 turns") and "cost=incomplete" in lines[-1]


def test_init_defers_the_exporter_stack_and_pydantic_until_they_are_needed(receiver):
    # import + init must not pay for what only exporting (requests, protobuf) or reading
    # results (pydantic models) needs; the first export builds the exporter in the export thread.
    code = textwrap.dedent(f"""
        import sys
        import sessionkit
        client = sessionkit.init(endpoint={receiver.endpoint!r}, instrument_llm_calls=False)
        heavy = ("requests", "google.protobuf", "pydantic", "opentelemetry.exporter.otlp.proto.http.trace_exporter")
        print("after init:", sorted(m for m in heavy if m in sys.modules))
        with client.session("s"):
            pass
        assert client.flush(timeout=10)
        print("after export:", sorted(m for m in heavy if m in sys.modules and m != "pydantic"))
        print("exporter:", type(client.exporter).__name__, client.stats().spans_exported)
    """)
    code_, out, err, _ = run_python(code)
    assert code_ == 0, err
    assert "after init: []" in out
    assert (
        "after export: ['google.protobuf', 'opentelemetry.exporter.otlp.proto.http.trace_exporter', 'requests']" in out
    )
    assert "exporter: OTLPSpanExporter 1" in out
    assert receiver.wait_for(lambda spans: [x.name for x in spans] == ["s"])


def test_a_missing_grpc_exporter_is_a_config_error_at_init(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "grpc" in name else real(name, *a))
    with pytest.raises(sessionkit.ConfigError, match=r"pip install 'sessionkit\[grpc\]'"):
        sessionkit.Client(exporter="otlp-grpc", endpoint="http://127.0.0.1:4317")

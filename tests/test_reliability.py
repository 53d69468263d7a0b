"""Faults sessionkit must survive: a misbehaving collector, process events, load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sessionkit

from helpers import read_sessions, run_python, session_id_of, until
from otlp_receiver import OtlpReceiver

FAULTS = ["refused", "hang", "slow:3", "status:500", "status:503", "status:429", "reset", "garbage"]


def accounted(stats) -> int:
    """Every ended span is exported, failed, dropped, queued or in flight: none vanish."""
    return (
        stats.spans_exported
        + stats.spans_failed_export
        + stats.dropped_spans
        + stats.queue_size
        + stats.spans_in_flight
    )


@pytest.mark.parametrize("fault", FAULTS)
def test_a_misbehaving_collector_never_raises_and_every_span_is_accounted_for(fault, dead_port):
    receiver = None if fault == "refused" else OtlpReceiver(mode=fault).start()
    endpoint = f"http://127.0.0.1:{dead_port}" if receiver is None else receiver.endpoint
    c = sessionkit.Client(
        endpoint=endpoint,
        export_timeout=1,
        shutdown_timeout=1,
        export_interval=0.05,
        max_queue_size=200,
        max_export_batch_size=50,
    )
    try:

        @c.tool(name="work")
        def work(i):
            return i

        with c.session("under-fault"):
            for i in range(1000):
                assert work(i) == i  # the agent's own calls go on
        c.flush(timeout=1)
        stats = c.stats()
        assert stats.spans_started == stats.spans_ended >= 1001  # + a start marker, if the session was announced
        assert accounted(stats) == stats.spans_ended
        assert stats.queue_size <= 200  # memory stays bounded
        assert stats.spans_exported == 0
        assert stats.dropped_spans > 0 or stats.spans_failed_export > 0
        started = time.monotonic()
        c.shutdown(timeout=1)
        assert time.monotonic() - started < 1 + 1.5
    finally:
        if receiver:
            receiver.stop()


def test_retries_back_off_instead_of_storming():
    with OtlpReceiver(mode="status:503") as receiver:
        c = sessionkit.Client(endpoint=receiver.endpoint, export_timeout=4, export_interval=0.05)
        try:
            with c.session("s"):
                pass
            # the batch fails for good once export_timeout runs out: until then it was retried
            # with exponential backoff (1 s, 2 s, ...), a handful of requests, never a storm
            assert until(lambda: c.stats().spans_failed_export > 0, timeout=20)
            assert 2 <= receiver.requests <= 5, receiver.requests
        finally:
            c.shutdown(timeout=0.5)


def test_when_the_collector_comes_back_export_resumes_and_nothing_queued_is_lost():
    with OtlpReceiver(mode="status:503") as receiver:
        c = sessionkit.Client(endpoint=receiver.endpoint, export_timeout=10, export_interval=0.05)
        try:
            with c.session("outage") as s:
                for i in range(300):
                    with c.tracer.start_as_current_span("op", attributes={"i": i}):
                        pass
            assert until(lambda: receiver.requests >= 1)  # an export was tried, and refused
            assert receiver.spans == []
            receiver.mode = "ok"  # the collector is back
            assert c.flush(timeout=15)
            assert receiver.wait_for(lambda spans: len(spans) >= 301, 15)
            ops = sorted(x.attributes["i"] for x in receiver.spans if x.name == "op")
            assert ops == list(range(300))
            assert all(session_id_of(x) == s.id for x in receiver.spans)
            assert c.stats().dropped_spans == 0 and c.stats().spans_failed_export == 0
        finally:
            c.shutdown(timeout=1)


def test_sigterm_ends_open_sessions_and_flushes(tmp_path):
    store = tmp_path / "sigterm"
    code = textwrap.dedent("""
        import os, signal, threading, time, sessionkit
        c = sessionkit.init(auto_start_session=True, export_interval=60)
        s = c.start_session("imperative")
        with c.tracer.start_as_current_span("before-term"):
            pass
        ready = threading.Event()
        def worker():
            with c.session("in-thread"):
                ready.set()
                time.sleep(30)
        threading.Thread(target=worker, daemon=True).start()
        ready.wait()
        print(s.id, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SESSIONKIT_FILE_DIR": str(store)},
    )
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    stored = {x.name: x for x in read_sessions(store)}
    assert set(stored) == {"default", "imperative", "in-thread"}
    for session in stored.values():
        assert session.state == "indeterminate"
        assert "SIGTERM" in session.root.attributes["sessionkit.session.end_reason"]
    assert [sp.name for sp in stored["imperative"].work_spans] == ["before-term"]


def test_keyboard_interrupt_fails_the_running_session_and_the_exit_hook_ends_the_rest(tmp_path):
    store = tmp_path / "kbd"
    code = textwrap.dedent("""
        import sessionkit
        c = sessionkit.init(auto_start_session=True, export_interval=60)
        c.start_session("left-open")
        with c.session("interrupted"):
            raise KeyboardInterrupt
    """)
    rc, _, err, _ = run_python(code, env={"SESSIONKIT_FILE_DIR": str(store)})
    assert rc != 0 and "KeyboardInterrupt" in err
    stored = {x.name: x for x in read_sessions(store)}
    assert stored["interrupted"].state == "fail"
    assert stored["interrupted"].root.attributes["sessionkit.session.end_reason"].startswith("KeyboardInterrupt")
    assert stored["left-open"].state == "indeterminate" and stored["default"].state == "indeterminate"


def test_an_unhandled_exception_in_a_thread_fails_its_session_only(client):
    results = {}

    def crashing():
        with client.session("crashing") as s:
            results["crashing"] = s
            raise RuntimeError("boom in a thread")

    def fine():
        with client.session("fine") as s:
            results["fine"] = s
            time.sleep(0.05)

    hooks = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: hooks.append(args.exc_type)
    try:
        threads = [threading.Thread(target=crashing), threading.Thread(target=fine)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        threading.excepthook = previous_hook
    assert hooks == [RuntimeError]  # the user's thread error reaches them unchanged
    assert results["crashing"].end_state.value == "fail"
    assert results["crashing"].end_reason == "RuntimeError: boom in a thread"
    assert results["fine"].end_state.value == "success"


LOAD = """
import asyncio, json, threading, time, sessionkit
c = sessionkit.init(endpoint=ENDPOINT, service_name="load")  # default settings: queue, batch, interval
ids = {}

def thread_worker(n):
    with c.session(f"t{n}") as s:
        ids[f"t{n}"] = s.id
        for _ in range(1000):
            with c.tracer.start_as_current_span("op", attributes={"w": f"t{n}"}):
                pass

async def task_worker(n):
    async with c.session(f"a{n}") as s:
        ids[f"a{n}"] = s.id
        for i in range(1000):
            with c.tracer.start_as_current_span("op", attributes={"w": f"a{n}"}):
                if i % 100 == 0:
                    await asyncio.sleep(0)

started = time.monotonic()
threads = [threading.Thread(target=thread_worker, args=(n,)) for n in range(64)]
for t in threads:
    t.start()

async def tasks():
    await asyncio.gather(*(task_worker(n) for n in range(64)))

asyncio.run(tasks())
for t in threads:
    t.join()
assert c.flush(timeout=60)
s = c.stats()
print(json.dumps({"ids": ids, "dropped": s.dropped_spans, "failed": s.spans_failed_export,
                  "seconds": time.monotonic() - started}))
"""


def test_load_64_threads_and_64_tasks_lose_no_span_and_mix_none(receiver):
    # Default settings, in a fresh process, against the receiver in this one.
    code, out, err, _ = run_python(LOAD.replace("ENDPOINT", repr(receiver.endpoint)), timeout=240)
    assert code == 0, err[-2000:]
    result = json.loads(out)
    assert result["dropped"] == 0 and result["failed"] == 0
    expected = 128 * 1000
    assert receiver.wait_for(lambda spans: sum(x.name == "op" for x in spans) >= expected, 60)
    ops = [x for x in receiver.spans if x.name == "op"]
    assert len(ops) == expected
    assert all(x.attributes["session.id"] == result["ids"][x.attributes["w"]] for x in ops)
    print(f"\nload: {expected} spans from 64 threads + 64 tasks in {result['seconds']:.1f}s, 0 lost, 0 mixed")


def test_sessionkit_errors_inside_instrumentation_are_logged_not_raised(client, caplog, monkeypatch):
    # A processor failure must not reach the agent: break the stamping on purpose.
    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr("sessionkit._processor.set_clean_attributes", broken)
    with caplog.at_level("ERROR", logger="sessionkit"):
        with client.session("s"), client.tracer.start_as_current_span("still-works"):
            pass
    assert "error while stamping a span" in caplog.text
    assert any(s.name == "still-works" for s in client.exporter.get_finished_spans())


def test_the_stores_jsonl_export_is_valid_otlp_json(tmp_path):
    c = sessionkit.init()
    with c.session("s"):
        pass
    c.flush()
    out = tmp_path / "out.jsonl"
    with sessionkit.open_store(tmp_path / "store") as store:
        assert store.export_jsonl(out) == 1  # the session's record
    line = out.read_text().splitlines()[0]
    span = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16  # hex, as OTLP JSON wants

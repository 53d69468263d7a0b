"""Client: init and re-init, reconfiguring in place, providers, several clients, shutdown."""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import threading
import time

import pytest
import sessionkit
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sessionkit import EndState, SessionStateError

from helpers import run_python, spans_of


def by_name(spans, name):
    return [s for s in spans if s.name == name]


def test_strict_client_raises_on_misuse():
    c = sessionkit.Client(exporter="memory", strict=True)
    try:
        with pytest.raises(SessionStateError, match="start_session"):
            c.end_session()
    finally:
        c.shutdown(timeout=1)


def test_module_level_helpers_before_init_do_not_raise(caplog):
    assert sessionkit.current_session() is None
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        assert sessionkit.end_session() is None
    assert "before init" in caplog.text


def test_repeated_init_returns_the_same_client_and_duplicates_nothing():
    before = atexit._ncallbacks()
    c1 = sessionkit.init(exporter="memory", service_name="svc", auto_start_session=True)
    after_first = atexit._ncallbacks()
    auto = c1.current_session()
    c2 = sessionkit.init(exporter="memory", service_name="svc", auto_start_session=True)
    assert c2 is c1
    assert atexit._ncallbacks() == after_first <= before + 1  # one exit hook for the process, at most
    assert c1.current_session() is auto and len(c1.sessions()) == 1
    with c1.tracer.start_as_current_span("op"):
        pass
    assert len(by_name(spans_of(c1), "op")) == 1  # exported once, not once per init


def test_init_with_changed_settings_reconfigures_in_place_and_keeps_sessions():
    first = InMemorySpanExporter()
    second = InMemorySpanExporter()
    c = sessionkit.init(exporter=first, service_name="svc")
    s = c.start_session("long-running")
    c2 = sessionkit.init(exporter=second, service_name="svc")
    assert c2 is c and c.exporter is second
    assert s.is_active and c.current_session() is s
    with c.tracer.start_as_current_span("after-reinit"):
        pass
    s.end()
    c.flush(timeout=5)
    names = [x.name for x in second.get_finished_spans()]
    assert "after-reinit" in names and "long-running" in names
    assert "after-reinit" not in [x.name for x in first.get_finished_spans()]
    stamped = by_name(second.get_finished_spans(), "after-reinit")[0]
    assert stamped.attributes["session.id"] == s.id


def test_reload_then_init_returns_the_same_client():
    c = sessionkit.init(exporter="memory", auto_start_session=True)
    reloaded = importlib.reload(sessionkit)
    assert reloaded.init(exporter="memory", auto_start_session=True) is c
    assert len(c.sessions()) == 1


def test_auto_session_collects_spans_outside_any_session_and_survives_reinit(caplog):
    c = sessionkit.init(exporter="memory", auto_start_session=True, auto_session_name="notebook")
    auto = c.current_session()
    assert auto is not None and auto.name == "notebook"
    sessionkit.init(
        exporter="memory", auto_start_session=True, auto_session_name="notebook", strict=False, capture_content=True
    )
    assert c.current_session() is auto and auto.is_active
    with c.tracer.start_as_current_span("loose"):
        pass
    loose = by_name(spans_of(c), "loose")[0]
    assert loose.attributes["session.id"] == auto.id
    assert c.stats().spans_without_session == 0


def test_auto_session_ends_indeterminate_at_exit(tmp_path):
    store = tmp_path / "exit-store"
    code = (
        "import sessionkit\n"
        "c = sessionkit.init(auto_start_session=True)\n"
        "with c.tracer.start_as_current_span('work'): pass\n"
        "print(c.current_session().id)\n"
    )
    rc, out, err, _ = run_python(code, env={"SESSIONKIT_FILE_DIR": str(store)})
    assert rc == 0, err
    from helpers import read_sessions

    sessions = read_sessions(store)
    assert [s.id for s in sessions] == [out.strip()]
    root = sessions[0].root
    assert root is not None
    assert root.attributes["sessionkit.session.end_state"] == "indeterminate"
    assert "exited" in root.attributes["sessionkit.session.end_reason"]


def test_global_provider_is_left_alone_unless_asked(client):
    assert trace.get_tracer_provider() is not client.tracer_provider


def test_attach_to_a_provider_the_user_already_has():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    c = sessionkit.Client(tracer_provider=provider)
    c2 = sessionkit.Client(tracer_provider=provider)  # a second client on it adds its own processor
    try:
        assert c.exporter is None  # the user's provider exports; sessionkit stamps and counts
        with c.session("attached") as s:
            with provider.get_tracer("user").start_as_current_span("user-span"):
                pass
        with c2.session("second") as s2:
            with provider.get_tracer("user").start_as_current_span("user-span-2"):
                pass
        span = by_name(exporter.get_finished_spans(), "user-span")[0]
        assert span.attributes["session.id"] == s.id
        assert by_name(exporter.get_finished_spans(), "user-span-2")[0].attributes["session.id"] == s2.id
        assert s.summary().span_count == 1 and s2.summary().span_count == 1  # each counts its own, once
    finally:
        c.shutdown(timeout=1)
        c2.shutdown(timeout=1)


def test_disabled_client_still_runs_sessions_and_records_nothing():
    c = sessionkit.Client(enabled=False)
    try:
        with c.session("quiet") as s:
            with s.span("work"):
                pass
        assert s.end_state is EndState.SUCCESS
        assert c.tracer_provider is None and c.exporter is None
        assert c.stats().spans_started == 0
    finally:
        c.shutdown(timeout=1)


def test_two_clients_never_see_each_others_spans():
    a = sessionkit.Client(exporter="memory", service_name="a")
    b = sessionkit.Client(exporter="memory", service_name="b")
    try:
        with a.session("sa") as sa:
            with a.tracer.start_as_current_span("a-op"):
                pass
        with b.session("sb"):
            with b.tracer.start_as_current_span("b-op"):
                pass
        a_names = {s.name for s in spans_of(a)}
        b_names = {s.name for s in spans_of(b)}
        assert "a-op" in a_names and "b-op" not in a_names
        assert "b-op" in b_names and "a-op" not in b_names
        assert all(
            sa.id in (s.attributes.get("session.id"), s.attributes.get("sessionkit.session.id")) for s in spans_of(a)
        )
    finally:
        a.shutdown(timeout=1)
        b.shutdown(timeout=1)


def _live_pipelines() -> int:
    from sessionkit._export.pipeline import ExportPipeline

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is ExportPipeline)


def test_reconfiguring_twenty_times_leaves_one_live_pipeline():
    # Each reconfigure that changes an export setting builds a new pipeline and drains the old
    # one in the background; fork hooks hold their pipeline weakly, so the old ones are let go.
    before = _live_pipelines()
    client = sessionkit.Client(exporter="memory")
    for i in range(20):
        client.configure(exporter="memory", export_interval=0.5 + i / 100)
    deadline = time.monotonic() + 10
    while any(t.name == "sessionkit-old-pipeline" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _live_pipelines() - before <= 1
    client.shutdown(timeout=1)


def test_configure_after_shutdown_is_a_clear_error():
    client = sessionkit.Client(exporter="memory")
    client.shutdown(timeout=1)
    with pytest.raises(SessionStateError, match="shut down"):
        client.configure(exporter="memory", service_name="other")
    assert client.shutdown(timeout=1) is True  # twice: nothing more


def test_the_plain_attributes_the_parts_read_follow_the_settings():
    client = sessionkit.Client(exporter="memory")
    try:
        assert client.recording and not client.closed
        first_tracer = client.tracer
        client.configure(enabled=False)
        assert not client.recording and client.tracer is not first_tracer
        with client.session("quiet"):
            with client.tracer.start_as_current_span("nothing"):
                pass
        assert client.stats().spans_started == 0
        client.configure(exporter="memory")
        assert client.recording
    finally:
        client.shutdown(timeout=1)
    assert client.closed


def test_a_session_takes_only_its_own_settings():
    client = sessionkit.Client(exporter="memory")
    try:
        with pytest.raises(TypeError, match="thread_id"):
            client.session("s", thread="conv-1")  # early: at the call, not when the block starts
        with pytest.raises(TypeError, match="no 'conversation'"):
            client.start_session("s", conversation="conv-1")
        assert client.sessions() == []
    finally:
        client.shutdown(timeout=1)


def test_repr_and_html_of_a_client():
    client = sessionkit.Client(exporter="memory", service_name="svc")
    try:
        with client.session("visible"):
            assert "sessions=1" in repr(client) and "svc" in repr(client)
            page = client._repr_html_()
            assert "visible" in page and "memory" in page
    finally:
        client.shutdown(timeout=1)

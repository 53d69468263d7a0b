"""SessionRegistry: the one answer to "which session is this code in?", and the session index."""

from __future__ import annotations

import threading

import pytest
import sessionkit
from opentelemetry import trace
from sessionkit import EndState
from sessionkit._registry import RECENT_TRACES, TRIM_BATCH


def test_resolve_prefers_the_context_then_the_main_threads_imperative_session_then_auto():
    client = sessionkit.Client(exporter="memory", auto_start_session=True)
    try:
        auto = client.current_session()
        assert auto is not None and auto.name == client.config.auto_session_name
        ambient = client.start_session("imperative")
        assert client.current_session() is ambient
        seen: list = []
        thread = threading.Thread(target=lambda: seen.append(client.current_session()))
        thread.start()
        thread.join()
        assert seen == [ambient]  # a thread started in it carries it (and would fall back to it)
        with client.session("scoped") as scoped:
            assert client.current_session() is scoped
        assert client.current_session() is ambient
        ambient.end()
        assert client.current_session() is auto
        auto.end()
        assert client.current_session() is None
    finally:
        client.shutdown(timeout=1)


def test_a_session_of_another_client_is_not_this_clients_current_session():
    a = sessionkit.Client(exporter="memory")
    b = sessionkit.Client(exporter="memory")
    try:
        with a.session("a") as sa:
            assert a.current_session() is sa
            assert b.current_session() is None
    finally:
        a.shutdown(timeout=1)
        b.shutdown(timeout=1)


def test_span_parent_is_the_current_span_else_a_new_turn_of_the_resolved_session(client):
    with client.session("s") as s:
        with trace.use_span(trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)):
            parent = client.span_parent()
            assert not trace.get_current_span(parent).get_span_context().is_valid  # a new trace ...
            with client.tracer.start_as_current_span("top", context=parent) as top:
                assert top.attributes["session.id"] == s.id  # ... which is a turn of s
                assert top.attributes["sessionkit.turn.index"] == 1
        with client.tracer.start_as_current_span("inner") as inner:
            assert trace.get_current_span(client.span_parent()) is inner
    assert trace.get_current_span(client.span_parent()).get_span_context().is_valid is False


def test_end_session_ends_the_resolved_session_or_the_one_given(client):
    first = client.start_session("first")
    second = client.start_session("second")
    assert client.end_session() is second and second.end_state is EndState.SUCCESS
    assert client.end_session("fail", "gave up", session=first) is first
    assert (first.end_state, first.end_reason) == (EndState.FAIL, "gave up")
    with pytest.raises(ValueError, match="unknown end state"):
        client.start_session("third").end("maybe")


def test_the_index_forgets_old_ended_sessions_but_never_a_live_one(client):
    live = client.start_session("live")
    for i in range(RECENT_TRACES + TRIM_BATCH + 10):  # past the bound: the index is trimmed
        with client.session(f"s{i}"):
            pass
    late = client.tracer.start_span("late", context=client.span_parent())
    late.end()
    assert late.attributes["session.id"] == live.id  # still found, and still resolved
    assert live.summary().span_count == 1
    live.end()


def test_sessions_started_and_active_are_counted(client):
    with client.session("a"), client.session("b"):
        assert len(client.sessions()) == 2
        assert client.stats().sessions_active == 2
    assert client.stats().sessions_started == 2 and client.sessions() == []

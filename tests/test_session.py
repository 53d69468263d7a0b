from __future__ import annotations

import asyncio
import logging

import pytest
import sessionkit
from opentelemetry.trace import StatusCode
from sessionkit import EndState

from helpers import spans_of


def by_name(spans, name):
    return [s for s in spans if s.name == name]


def test_session_exposes_its_identity_and_ends_once(client):
    s = client.start_session("triage", thread_id="conv-42", user_id="u-7", tags=["beta"], metadata={"tier": "pro"})
    assert (s.name, s.thread_id, s.user_id, s.tags, s.metadata) == (
        "triage",
        "conv-42",
        "u-7",
        ["beta"],
        {"tier": "pro"},
    )
    assert len(s.trace_id) == 32 and int(s.trace_id, 16) != 0
    assert s.is_active and s.end_state is None and s.started_at is not None
    s.add_tags("vip", "beta")
    s.set_metadata(region="eu")
    s.end("fail", reason="tool crashed")
    s.end("success")  # a second end is a no-op
    assert (s.end_state, s.end_reason, s.is_active) == (EndState.FAIL, "tool crashed", False)
    root = by_name(spans_of(client), "triage")
    assert len(root) == 1
    attrs = root[0].attributes
    assert attrs["sessionkit.session.end_state"] == "fail"
    assert attrs["sessionkit.session.end_reason"] == "tool crashed"
    assert list(attrs["tag.tags"]) == ["beta", "vip"]
    assert '"region": "eu"' in attrs["metadata"] and '"tier": "pro"' in attrs["metadata"]
    assert root[0].status.status_code is StatusCode.ERROR


def test_unknown_end_state_is_a_clear_error(client):
    s = client.start_session("x")
    with pytest.raises(ValueError, match="'success', 'fail' or 'indeterminate'"):
        s.end("done")
    assert s.is_active


def test_context_manager_session_fails_with_the_exception_and_reraises_it(client):
    boom = KeyError("order-9")
    with pytest.raises(KeyError) as info:
        with client.session("handle") as s:
            raise boom
    assert info.value is boom
    assert s.end_state is EndState.FAIL
    assert s.end_reason == "KeyError: 'order-9'"
    assert client.current_session() is None


def test_async_context_manager_session(client):
    async def handle():
        async with client.session("async-handle", thread_id="t1") as s:
            assert client.current_session() is s
            with s.span("step"):
                await asyncio.sleep(0)
        return s

    s = asyncio.run(handle())
    assert s.end_state is EndState.SUCCESS
    step = by_name(spans_of(client), "step")[0]
    assert step.attributes["session.id"] == s.id
    assert step.attributes["gen_ai.conversation.id"] == "t1"


def test_summary_counts_spans_llm_calls_tokens_and_errors(client):
    with client.session("s") as s:
        tracer = client.tracer
        with tracer.start_as_current_span(
            "chat m",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 5,
            },
        ):
            pass
        with pytest.raises(RuntimeError):
            with tracer.start_as_current_span("tool"):
                raise RuntimeError("x")
        s.record_event("checkpoint", step=2)
    summary = s.summary()
    assert isinstance(summary, sessionkit.SessionSummary)
    assert (summary.span_count, summary.llm_calls, summary.input_tokens, summary.output_tokens, summary.errors) == (
        2,
        1,
        12,
        5,
        1,
    )
    assert summary.duration_seconds > 0
    root = by_name(spans_of(client), "s")[0]
    assert [e.name for e in root.events] == ["checkpoint"]
    assert root.attributes["sessionkit.session.input_tokens"] == 12


def test_end_session_with_nothing_active_warns_once_and_returns_none(client, caplog):
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        assert client.end_session() is None
    assert len([r for r in caplog.records if "no active session" in r.getMessage()]) == 1


def test_imperative_session_is_the_default_for_later_code_on_the_main_thread(client):
    # Code that runs in another context than the one the session was started in (a callback,
    # a kernel that copies the context per cell) must still find the session started on the
    # main thread.
    import contextvars

    s = contextvars.copy_context().run(client.start_session, "cell-1")
    assert client.current_session() is s  # found although this context never saw it
    assert contextvars.copy_context().run(client.end_session) is s
    assert client.current_session() is None


def test_span_outside_any_session_is_exported_unstamped_and_counted(client):
    with client.tracer.start_as_current_span("orphan"):
        pass
    orphan = by_name(spans_of(client), "orphan")[0]
    assert "session.id" not in orphan.attributes
    assert client.stats().spans_without_session == 1


def test_every_span_in_a_session_is_stamped_even_from_other_tracers(client):
    other = client.tracer_provider.get_tracer("some.library")
    with client.session("s", thread_id="conv-1", user_id="u-1", tags=["a", "b"]) as s:
        with other.start_as_current_span("library-span"):
            pass
    span = by_name(spans_of(client), "library-span")[0]
    assert span.attributes["session.id"] == s.id
    assert span.attributes["user.id"] == "u-1"
    assert span.attributes["gen_ai.conversation.id"] == "conv-1"
    assert span.attributes["sessionkit.session.name"] == "s"
    assert list(span.attributes["tag.tags"]) == ["a", "b"]
    assert span.resource.attributes["service.name"] == "test-svc"
    assert span.resource.attributes["openinference.project.name"] == "test-svc"


def test_session_is_a_new_trace_even_inside_another_span(client):
    with client.tracer.start_as_current_span("outer") as outer:
        with client.session("inner") as inner:
            pass
        other = client.start_session("other")
        other.end()
    root = by_name(spans_of(client), "inner")[0]
    assert root.parent is None
    assert root.context.trace_id != outer.get_span_context().trace_id
    assert inner.trace_id != other.trace_id


@pytest.mark.parametrize("trace_per", ["turn", "session"])
def test_an_ended_session_still_takes_late_spans(trace_per):
    # An ended session keeps only its root's ids; its parent context is made again on demand.
    client = sessionkit.Client(exporter="memory", trace_per=trace_per)
    s = client.start_session("done")
    s.end()
    with s.span("late"):
        pass
    with s:  # re-entering an ended session neither raises nor starts a new session
        with client.tracer.start_as_current_span("later"):
            pass
    spans = {x.name: x for x in spans_of(client)}
    root = spans["done"]
    for name in ("late", "later"):
        assert spans[name].attributes["session.id"] == s.id
        if trace_per == "session":  # in the session's one trace, under its root
            assert spans[name].context.trace_id == root.context.trace_id
            assert spans[name].parent.span_id == root.context.span_id
        else:  # each a turn of its own
            assert spans[name].parent is None and spans[name].attributes["sessionkit.turn.implicit"] is True
    assert s.summary().span_count == 2  # late spans still count into their session
    client.shutdown(timeout=1)


def test_metadata_over_the_cap_is_cut_at_a_key_boundary_and_stays_json(client):
    import json as _json

    with client.session("big") as s:
        s.set_metadata({f"key{i:04d}": i for i in range(3000)})
    (record,) = [
        x for x in client.exporter.get_finished_spans() if x.attributes.get("sessionkit.span.type") == "session"
    ]
    text = record.attributes["metadata"]
    data = _json.loads(text)
    assert isinstance(data, dict) and len(text) <= 8192  # a mapping, not a JSON string of cut JSON text
    kept = [k for k in data if k != "..."]
    assert kept == [f"key{i:04d}" for i in range(len(kept))] and all(data[k] == int(k[3:]) for k in kept)
    assert data["..."] == f"{3000 - len(kept)} more"

"""Other libraries' spans in the session, through the global OpenTelemetry provider.

The global provider can be set once per process, so each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import textwrap

from helpers import run_python

LIBRARY = """
import json, sys
import sessionkit
from opentelemetry import trace

library = trace.get_tracer("some.library")  # taken before sessionkit starts, as libraries do

def spans_of(client):
    return [
        {"name": s.name, "session": s.attributes.get("session.id"), "service": s.resource.attributes["service.name"]}
        for s in client.exporter.get_finished_spans()
        if s.instrumentation_scope.name == "some.library"
    ]
"""


def run(code: str) -> tuple[dict, str]:
    status, out, err, _ = run_python(textwrap.dedent(LIBRARY) + textwrap.dedent(code))
    assert status == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def test_a_librarys_spans_are_stamped_and_exported_by_default():
    found, err = run(
        """
        client = sessionkit.init(exporter="memory", service_name="svc")
        with client.session("s") as s:
            with library.start_as_current_span("library call"):
                pass
        with library.start_as_current_span("outside any session"):
            pass
        print(json.dumps({"spans": spans_of(client), "session": s.id,
                          "provider": type(trace.get_tracer_provider()).__name__}))
        """
    )
    assert found["provider"] == "GlobalProvider"
    assert found["spans"] == [
        {"name": "library call", "session": found["session"], "service": "svc"},
        {"name": "outside any session", "session": None, "service": "svc"},
    ]
    assert "Overriding" not in err


def test_re_running_init_switches_the_target_with_no_warning_no_duplicates_and_no_losses():
    found, err = run(
        """
        seen = []
        for round in range(3):
            client = sessionkit.init(exporter="memory", service_name=f"svc-{round}")
            with client.session(f"s{round}") as s:
                for i in range(5):
                    with library.start_as_current_span(f"call {round}.{i}"):
                        pass
            seen.append({"session": s.id, "spans": spans_of(client)})
            client.exporter.clear()
        print(json.dumps(seen))
        """
    )
    assert "Overriding" not in err and "WARNING" not in err
    for round, run_of in enumerate(found):
        names = [s["name"] for s in run_of["spans"]]
        assert names == [f"call {round}.{i}" for i in range(5)]  # each once, none lost
        assert {s["session"] for s in run_of["spans"]} == {run_of["session"]}
        assert {s["service"] for s in run_of["spans"]} == {f"svc-{round}"}


def test_a_span_goes_to_the_client_of_its_session_only():
    found, _ = run(
        """
        a = sessionkit.init(exporter="memory", service_name="a")
        b = sessionkit.Client(exporter="memory", service_name="b")
        with b.session("in b") as s:
            with library.start_as_current_span("in b's session"):
                pass
        with library.start_as_current_span("in no session"):
            pass
        print(json.dumps({"a": spans_of(a), "b": spans_of(b), "session": s.id}))
        """
    )
    assert [s["name"] for s in found["b"]] == ["in b's session"]
    assert found["b"][0]["session"] == found["session"]
    assert [s["name"] for s in found["a"]] == ["in no session"]  # the default client's


def test_a_global_provider_the_program_set_is_kept_and_stamps_session_spans():
    found, err = run(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        theirs = TracerProvider()
        exported = InMemorySpanExporter()
        theirs.add_span_processor(SimpleSpanProcessor(exported))
        trace.set_tracer_provider(theirs)
        for round in range(3):  # re-init: one processor on their provider, not three
            client = sessionkit.init(exporter="memory", service_name="svc", capture_content=bool(round))
        with client.session("s") as s:
            with library.start_as_current_span("library call"):
                pass
        with client.session("without") as plain:
            pass
        mine = spans_of(client)
        their_spans = [
            {"name": x.name, "session": x.attributes.get("session.id"), "turn": x.attributes.get("sessionkit.turn.index")}
            for x in exported.get_finished_spans()
        ]
        print(json.dumps({"kept": trace.get_tracer_provider() is theirs, "theirs": their_spans, "mine": mine,
                          "session": s.id, "counted": s.summary().span_count - plain.summary().span_count}))
        """
    )
    assert found["kept"] is True
    assert found["theirs"] == [{"name": "library call", "session": found["session"], "turn": 1}]
    assert found["mine"] == []  # exported by their provider, not again by sessionkit
    assert found["counted"] == 1  # and counted in its session
    assert "Overriding" not in err


def test_set_global_false_leaves_the_global_provider_alone():
    found, _ = run(
        """
        client = sessionkit.init(exporter="memory", set_global=False)
        with client.session("s"):
            with library.start_as_current_span("library call") as span:
                recording = span.is_recording()
        print(json.dumps({"provider": type(trace.get_tracer_provider()).__name__, "recording": recording,
                          "spans": spans_of(client)}))
        """
    )
    assert found == {"provider": "ProxyTracerProvider", "recording": False, "spans": []}


def test_after_shutdown_the_librarys_spans_are_not_recorded():
    found, _ = run(
        """
        client = sessionkit.init(exporter="memory")
        client.shutdown()
        with library.start_as_current_span("after") as span:
            recording = span.is_recording()
        print(json.dumps({"recording": recording}))
        """
    )
    assert found == {"recording": False}


def test_set_global_is_checked_at_the_call():
    status, _, err, _ = run_python("import sessionkit; sessionkit.Client(set_global='sometimes')")
    assert status != 0 and "set_global" in err


def test_the_anthropic_sdks_own_spans_land_in_the_session_and_the_call_counts_once():
    found, _ = run(
        """
        import anthropic
        from sessionkit.fake_llm import FakeLLMServer

        client = sessionkit.init(exporter="memory")
        with FakeLLMServer() as server:
            sdk = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="k", max_retries=0)
            with client.session("s") as s:
                sdk.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        spans = client.exporter.get_finished_spans()
        own = [x for x in spans if x.instrumentation_scope.name.startswith("com.anthropic")]
        wire = [x for x in spans if x.instrumentation_scope.name == "sessionkit" and x.attributes.get("http.response.status_code")]
        print(json.dumps({
            "own": [(x.attributes.get("session.id"), bool(x.attributes.get("sessionkit.llm.counted_in_child"))) for x in own],
            "wire_parent_is_own": [w.parent.span_id for w in wire] == [o.context.span_id for o in own],
            "session": s.id, "llm_calls": s.summary().llm_calls,
        }))
        """
    )
    assert found["own"] == [[found["session"], True]]
    assert found["wire_parent_is_own"] is True
    assert found["llm_calls"] == 1

"""Turns: a session is a sequence of turns, each its own trace (or, per session, one tree);
explicit and implicit turns; the session's record; resuming a session elsewhere; cost; a
stream read after its session ended; the session events on the logs signal."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import textwrap

import openai
import pytest
import sessionkit
from opentelemetry.trace import StatusCode
from sessionkit.fake_llm import FakeLLMServer

from helpers import record_of, run_python, session_id_of, spans_of, turns_of


@pytest.fixture
def capturing():
    c = sessionkit.Client(exporter="memory", capture_content=True)
    yield c
    c.shutdown(timeout=2)


@pytest.fixture
def server():
    with FakeLLMServer() as s:
        yield s


def by_name(client):
    return {s.name: s for s in spans_of(client)}


# -- explicit turns --------------------------------------------------------------------------------
def test_an_explicit_turn_is_a_new_trace_with_the_stamp_index_input_and_output(capturing):
    @capturing.tool
    def lookup(order: str) -> str:
        return "shipped"

    with capturing.session("chat", thread_id="conv-1", user_id="u-1") as s:
        with capturing.tracer.start_as_current_span("outer-noise"):
            pass
        with s.turn("Where is my order?") as turn:
            lookup("o-1")
            turn.set_output("It has shipped.")
    spans = by_name(capturing)
    root, tool = spans["turn 2: Where is my order?"], spans["execute_tool lookup"]  # named by its message
    assert root.parent is None and tool.parent.span_id == root.context.span_id
    a = root.attributes
    assert (a["session.id"], a["user.id"], a["gen_ai.conversation.id"]) == (s.id, "u-1", "conv-1")
    assert a["sessionkit.turn.index"] == 2 and tool.attributes["sessionkit.turn.index"] == 2  # the noise was turn 1
    assert a["openinference.span.kind"] == "CHAIN" and a["sessionkit.span.type"] == "turn"
    assert (a["input.value"], a["output.value"]) == ("Where is my order?", "It has shipped.")
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}
    ]
    assert json.loads(a["gen_ai.output.messages"])[0]["role"] == "assistant"
    record = record_of(capturing, s)
    assert record.context.trace_id not in {root.context.trace_id, tool.context.trace_id}
    assert "session.id" not in record.attributes and record.attributes["sessionkit.session.turns"] == 2
    assert "gen_ai.conversation.id" not in record.attributes  # Phoenix would group by it too
    assert record.attributes["sessionkit.session.thread_id"] == "conv-1"


def test_an_async_turn_and_concurrent_turns_of_two_sessions_never_mix(capturing):
    async def talk(user: str) -> sessionkit.Session:
        async with capturing.session("chat", user_id=user) as s:
            for n in range(3):
                async with s.turn(f"{user} says {n}") as turn:
                    with capturing.tracer.start_as_current_span(f"{user}-work"):
                        await asyncio.sleep(0.001)
                    turn.set_output(f"answer {n}")
        return s

    async def both() -> list[sessionkit.Session]:
        return list(await asyncio.gather(talk("a"), talk("b")))

    sessions = asyncio.run(both())
    for s in sessions:
        roots = turns_of(capturing, s)
        assert [r.attributes["sessionkit.turn.index"] for r in roots] == [1, 2, 3]
        assert len({r.context.trace_id for r in roots}) == 3
        work = [x for x in spans_of(capturing) if x.name == f"{s.user_id}-work"]
        assert {w.context.trace_id for w in work} == {r.context.trace_id for r in roots}
        assert all(w.attributes["session.id"] == s.id for w in work)


def test_a_turn_that_raises_is_an_error_and_the_exception_propagates(capturing):
    with capturing.session("chat") as s:
        with pytest.raises(KeyError):
            with s.turn("boom"):
                raise KeyError("no such order")
        with s.turn("fine"):
            pass
    roots = turns_of(capturing, s)
    assert [r.status.status_code for r in roots] == [StatusCode.ERROR, StatusCode.UNSET]
    assert s.end_state is sessionkit.EndState.SUCCESS  # the session went on after the failed turn


def test_a_turns_message_and_answer_are_recorded_by_default_and_llm_content_is_not(client, server):
    """What the program gave sessionkit is the turn's, recorded with default settings; the LLM
    request's messages stay off until ``capture_content``."""
    from openai import OpenAI

    llm = OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    with client.session("chat") as s:
        with s.turn("Where is order o-1?") as turn:
            llm.chat.completions.create(model="m", messages=[{"role": "user", "content": "Where is order o-1?"}])
            turn.set_output("It has shipped.")
    (root,) = turns_of(client, s)
    assert (root.attributes["input.value"], root.attributes["output.value"]) == (
        "Where is order o-1?",
        "It has shipped.",
    )
    assert root.name == "turn 1: Where is order o-1?"
    (call,) = [x for x in spans_of(client) if x.attributes.get("gen_ai.operation.name") == "chat"]
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "input.", "output.")) for k in call.attributes)


def test_with_capture_turn_content_off_a_turn_has_no_input_or_output(make_client):
    client = make_client(capture_turn_content=False)
    with client.session("chat") as s:
        with s.turn("private message") as turn:
            turn.set_output("private answer")
    (root,) = turns_of(client, s)
    assert "input.value" not in root.attributes and "output.value" not in root.attributes
    assert root.name == "turn"  # not named by a message it does not record
    assert root.attributes["sessionkit.turn.index"] == 1


def test_a_long_or_redacted_message_names_the_turn_as_recorded(make_client):
    client = make_client(redact=lambda text: text.replace("secret", "[x]"))
    with client.session("chat") as s:
        with s.turn("my secret " + "long " * 30 + "\nsecond line"):
            pass
    (root,) = turns_of(client, s)
    assert root.name.startswith("turn 1: my [x] long") and root.name.endswith("…")
    assert "secret" not in root.name and "second line" not in root.name
    assert len(root.name) == len("turn 1: ") + 61


def test_the_turn_decorator_records_the_named_argument_as_the_message(make_client):
    client = make_client()

    @client.turn(input="message")
    def answer(user: str, message: str) -> str:
        return "reply to " + message

    with client.session("chat") as s:
        answer("u-1", "hello there")
    (root,) = turns_of(client, s)
    assert (root.attributes["input.value"], root.attributes["output.value"]) == ("hello there", "reply to hello there")
    with pytest.raises(TypeError, match="has no argument 'msg'"):
        client.turn(input="msg")(answer.__wrapped__)


# -- implicit turns and the decorator ------------------------------------------------------------------
def test_each_top_level_call_is_a_turn_and_nested_calls_are_not(capturing):
    @capturing.tool
    def lookup(order: str) -> str:
        return "shipped"

    @capturing.agent
    def agent(question: str) -> str:
        lookup("o-1")
        lookup("o-2")
        return "answer to " + question

    with capturing.session("chat") as s:
        agent("one")
        agent("two")
        lookup("o-3")
    roots = turns_of(capturing, s)
    assert [(r.name, r.attributes["sessionkit.turn.index"]) for r in roots] == [
        ("invoke_agent agent", 1),
        ("invoke_agent agent", 2),
        ("execute_tool lookup", 3),
    ]
    assert all(r.attributes["sessionkit.turn.implicit"] is True for r in roots)
    assert json.loads(roots[0].attributes["input.value"]) == {"question": "one"}  # its arguments
    assert roots[0].attributes["output.value"] == "answer to one"  # its return value
    nested = [x for x in spans_of(capturing) if x.name == "execute_tool lookup" and x.parent is not None]
    assert len(nested) == 4 and all("sessionkit.turn.implicit" not in x.attributes for x in nested)
    summary = s.summary()
    assert summary.turn_count == 3 and [t.implicit for t in summary.turns] == [True, True, True]


def test_the_turn_decorator_makes_each_call_a_turn_sync_and_async(capturing):
    @capturing.tool
    def lookup(order: str) -> str:
        return "shipped"

    @capturing.turn
    def handle(message: str) -> str:
        lookup("o-1")
        return "reply to " + message

    @capturing.turn(name="async-turn")
    async def ahandle(message: str) -> str:
        lookup("o-2")
        return "async reply to " + message

    with capturing.session("chat") as s:
        handle("hello")
        asyncio.run(ahandle("hi"))
    handle("outside any session")  # just runs
    roots = turns_of(capturing, s)
    assert [r.name for r in roots] == ["turn 1: hello", "async-turn"]
    assert [(r.attributes["input.value"], r.attributes["output.value"]) for r in roots] == [
        ("hello", "reply to hello"),
        ("hi", "async reply to hi"),
    ]
    tools = [x for x in spans_of(capturing) if x.name == "execute_tool lookup"]
    assert [t.attributes.get("sessionkit.turn.index") for t in tools[:2]] == [1, 2]
    assert all(t.parent is not None for t in tools[:2])  # inside their turns, not turns themselves


def test_channels_and_history_loads_belong_to_the_turn_they_happen_in(client):
    with client.session("chat", thread_id="c") as s:
        with s.turn("hi"):
            with s.history_load("redis") as load:
                load.record(messages=3)
            with s.channel("discord", "ch-1"):
                pass
    (root,) = turns_of(client, s)
    inner = [x for x in spans_of(client) if x.name in ("history.load", "channel discord")]
    assert len(inner) == 2 and all(x.context.trace_id == root.context.trace_id for x in inner)
    assert all(x.attributes["sessionkit.turn.index"] == 1 for x in inner)


# -- trace_per="session" -------------------------------------------------------------------------------
def test_per_session_the_turns_are_children_of_one_root():
    c = sessionkit.Client(exporter="memory", trace_per="session")
    try:
        with c.session("tree") as s:
            with s.turn("first"):
                with c.tracer.start_as_current_span("work-1"):
                    pass
            with c.tracer.start_as_current_span("work-2"):  # an implicit turn, under the root too
                pass
        spans = by_name(c)
        root = spans["tree"]
        assert root.attributes["session.id"] == s.id and root.parent is None  # one tree, its root the session
        assert spans["turn 1: first"].parent.span_id == root.context.span_id
        assert spans["work-1"].parent.span_id == spans["turn 1: first"].context.span_id
        assert spans["work-2"].parent.span_id == root.context.span_id
        assert {x.context.trace_id for x in spans.values()} == {root.context.trace_id}
        assert (
            spans["work-1"].attributes["sessionkit.turn.index"],
            spans["work-2"].attributes["sessionkit.turn.index"],
        ) == (
            1,
            2,
        )
        assert s.summary().turn_count == 2 and s.summary().trace_per == "session"
    finally:
        c.shutdown(timeout=1)


def test_trace_per_is_validated_and_read_from_the_environment(monkeypatch):
    with pytest.raises(sessionkit.ConfigError, match="trace_per"):
        sessionkit.Client(exporter="memory", trace_per="request")
    monkeypatch.setenv("SESSIONKIT_TRACE_PER", "session")
    c = sessionkit.Client(exporter="memory")
    assert c.config.trace_per == "session"
    c.shutdown(timeout=1)


# -- resume and continue -------------------------------------------------------------------------------
def test_a_session_continued_in_another_process_carries_the_same_id_at_the_receiver(receiver):
    first = textwrap.dedent(f"""
        import sessionkit
        c = sessionkit.init(endpoint="{receiver.endpoint}", capture_content=True)
        with c.session("chat", user_id="u-1") as s:
            with s.turn("turn in process one"):
                pass
        print(s.id)
    """)
    rc, out, err, _ = run_python(first)
    assert rc == 0, err
    session_id = out.strip()
    second = textwrap.dedent(f"""
        import sessionkit
        c = sessionkit.init(endpoint="{receiver.endpoint}", capture_content=True)
        s = c.start_session("chat", session_id="{session_id}", user_id="u-1")
        with s.turn("turn in process two"):
            pass
        s.end()
        print(s.id)
    """)
    rc, out, err, _ = run_python(second)
    assert rc == 0, err
    assert out.strip() == session_id
    assert receiver.wait_for(lambda spans: len([x for x in spans if x.name.startswith("turn 1: ")]) == 2)
    turns = [x for x in receiver.spans if x.name.startswith("turn 1: ")]
    assert {x.attributes["session.id"] for x in turns} == {session_id}
    assert sorted(x.attributes["input.value"] for x in turns) == ["turn in process one", "turn in process two"]
    assert len({x.trace_id for x in turns}) == 2
    records = [x for x in receiver.spans if x.attributes.get("sessionkit.span.type") == "session"]
    assert [x.attributes["sessionkit.session.id"] for x in records] == [session_id, session_id]  # one per process


def test_a_session_continued_in_the_same_process_in_a_block(client):
    with client.session("chat", user_id="u") as first:
        with first.turn("one"):
            pass
    with client.session("chat", session_id=first.id, user_id="u") as again:
        with again.turn("two"):
            pass
    assert again.id == first.id and again is not first
    assert again.previous_id is None  # the same session continued, not a new one after it
    ids = {x.attributes["session.id"] for x in spans_of(client) if x.attributes.get("sessionkit.span.type") == "turn"}
    assert ids == {first.id}


@pytest.mark.parametrize("bad", ["", "x" * 257, "line\nbreak", "tab\there", 42, None.__class__])
def test_a_bad_session_id_is_refused_at_the_call_naming_the_setting(client, bad):
    with pytest.raises((TypeError, ValueError), match="session_id"):
        client.session("chat", session_id=bad)
    with pytest.raises((TypeError, ValueError), match="session_id"):
        client.start_session("chat", session_id=bad)
    assert client.sessions() == []


def test_a_session_id_of_256_printable_characters_is_taken_as_it_is(client):
    wanted = "conv:" + "é" * 251
    with client.session("chat", session_id=wanted) as s:
        pass
    assert s.id == wanted and s.summary().session_id == wanted


# -- cost ----------------------------------------------------------------------------------------------
def test_cost_of_a_known_model_an_unknown_one_and_your_own_prices():
    c = sessionkit.Client(exporter="memory", prices={"house-model": {"input": 2.0, "output": 10.0}})
    try:

        @c.llm(model="gpt-4o-mini", provider="openai")
        def known() -> dict:
            return {"usage": {"prompt_tokens": 1000, "completion_tokens": 100}}

        @c.llm(model="house-model")
        def own() -> dict:
            return {"usage": {"prompt_tokens": 1000, "completion_tokens": 100}}

        @c.llm(model="nobody-knows-this-model")
        def unknown() -> dict:
            return {"usage": {"prompt_tokens": 5, "completion_tokens": 5}}

        with c.session("priced") as priced:
            known()
            own()
        with c.session("partly") as partly:
            known()
            unknown()
        spans = {x.name: x for x in spans_of(c)}
        # gpt-4o-mini: 0.15 / 0.60 USD per million tokens (genai-prices); house-model: the setting.
        assert spans["chat gpt-4o-mini"].attributes["llm.cost.total"] == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)
        assert spans["chat house-model"].attributes["llm.cost.total"] == pytest.approx(1000 * 2e-6 + 100 * 10e-6)
        assert "llm.cost.total" not in spans["chat nobody-knows-this-model"].attributes
        whole = priced.summary()
        assert whole.cost_usd == pytest.approx(0.00021 + 0.003) and whole.cost_incomplete is False
        assert [t.cost_usd for t in whole.turns] == [pytest.approx(0.00021), pytest.approx(0.003)]
        part = partly.summary()
        assert part.cost_usd is None and part.cost_incomplete is True  # never $0 for an unknown price
        assert part.turns[1].cost_incomplete and part.turns[0].cost_usd == pytest.approx(0.00021)
        assert record_of(c, priced).attributes["sessionkit.session.cost_usd"] == pytest.approx(0.00321)
        assert record_of(c, partly).attributes["sessionkit.session.cost_incomplete"] is True
    finally:
        c.shutdown(timeout=1)


def test_cached_input_tokens_are_priced_at_the_cached_rate(server):
    c = sessionkit.Client(exporter="memory", llm_base_urls=[server.url])
    try:
        sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        with c.session("cached"):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        (span,) = [x for x in spans_of(c) if x.name.startswith("chat")]
        a = span.attributes
        cached = a.get("gen_ai.usage.cache_read.input_tokens", 0)
        expected_in = (a["gen_ai.usage.input_tokens"] - cached) * 0.15e-6 + cached * 0.075e-6
        assert a["llm.cost.prompt"] == pytest.approx(expected_in)
        assert a["llm.cost.completion"] == pytest.approx(a["gen_ai.usage.output_tokens"] * 0.6e-6)
    finally:
        c.shutdown(timeout=1)


@pytest.mark.parametrize(
    ("prices", "fix"),
    [
        ({"m": {"input": 1.0}}, "'input' and 'output'"),
        ({"m": {"input": 1.0, "output": -1.0}}, "0 or more"),
        ({"m": {"input": 1.0, "output": float("inf")}}, "finite"),
        ({"m": {"input": 1.0, "output": 2.0, "reasoning": 3.0}}, "cache_read"),
    ],
)
def test_bad_prices_are_refused_naming_the_setting_and_the_fix(prices, fix):
    with pytest.raises(sessionkit.ConfigError, match="prices") as caught:
        sessionkit.Client(exporter="memory", prices=prices)
    assert fix in str(caught.value)


# -- a stream read after its session ended ---------------------------------------------------------------
def test_a_stream_finished_after_its_session_ended_is_counted_in_the_exported_record(server):
    c = sessionkit.Client(exporter="memory", llm_base_urls=[server.url])
    try:
        sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)

        @c.session("handler")
        def handler():
            # A web handler returning a streaming response: the body is read after it returns.
            return sdk.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )

        stream = handler()
        records = [x for x in spans_of(c) if x.attributes.get("sessionkit.span.type") == "session"]
        assert records == []  # the record waits for the session's open LLM call
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text
        (record,) = [x for x in spans_of(c) if x.attributes.get("sessionkit.span.type") == "session"]
        reported = server.reported[-1]
        assert record.attributes["sessionkit.session.llm_calls"] == 1
        assert record.attributes["sessionkit.session.input_tokens"] == reported.input_tokens
        assert record.attributes["sessionkit.session.output_tokens"] == reported.output_tokens
        assert record.attributes["sessionkit.session.end_state"] == "success"
        (llm,) = [x for x in spans_of(c) if x.name.startswith("chat")]
        assert record.end_time < llm.end_time  # it ended when the handler returned, sent when the stream ended
    finally:
        c.shutdown(timeout=1)


def test_a_stream_finished_after_its_turn_block_is_counted_in_the_turn(server):
    c = sessionkit.Client(exporter="memory", llm_base_urls=[server.url])
    try:
        sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        with c.session("chat") as s:
            with s.turn("hi"):
                stream = sdk.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
            assert turns_of(c, s) == []  # the turn's root waits for its stream
            for _ in stream:
                pass
        (root,) = turns_of(c, s)
        assert root.attributes["sessionkit.turn.llm_calls"] == 1
        assert root.attributes["sessionkit.turn.output_tokens"] == server.reported[-1].output_tokens
        assert root.attributes["sessionkit.turn.cost_usd"] > 0
        (turn,) = s.summary().turns
        assert turn.time_to_first_token_seconds is not None and turn.time_to_first_token_seconds > 0
    finally:
        c.shutdown(timeout=1)


def test_a_stream_never_read_is_still_sent_at_shutdown(server):
    c = sessionkit.Client(exporter="memory", llm_base_urls=[server.url])
    sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    with c.session("abandoned"):
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )  # never read, never closed
    assert [x for x in spans_of(c) if x.attributes.get("sessionkit.span.type") == "session"] == []
    exporter = c.exporter
    c.shutdown(timeout=2)
    records = [x for x in exporter.get_finished_spans() if x.attributes.get("sessionkit.span.type") == "session"]
    assert len(records) == 1  # the waiting record went out when the client shut down


# -- the session events --------------------------------------------------------------------------------
def events_of(client):
    return [(r.log_record.event_name, dict(r.log_record.attributes)) for r in client.log_exporter.get_finished_logs()]


def test_session_start_and_end_events_with_the_previous_session_of_the_user():
    c = sessionkit.Client(exporter="memory", logs_exporter="memory")
    try:
        with c.session("chat", user_id="u-1") as first:
            pass
        with c.session("chat", user_id="u-1") as second:
            pass
        with c.session("chat", user_id="u-2") as other:
            pass
        events = events_of(c)
        assert [(name, a["session.id"]) for name, a in events] == [
            ("session.start", first.id),
            ("session.end", first.id),
            ("session.start", second.id),
            ("session.end", second.id),
            ("session.start", other.id),
            ("session.end", other.id),
        ]
        assert "session.previous_id" not in events[0][1]
        assert events[2][1]["session.previous_id"] == first.id and second.previous_id == first.id
        assert "session.previous_id" not in events[4][1]  # another user's first session
        assert events[1][1]["sessionkit.session.end_state"] == "success"
        assert record_of(c, second).attributes["session.previous_id"] == first.id
    finally:
        c.shutdown(timeout=1)


def test_session_events_reach_an_otlp_receiver_when_otel_logs_exporter_says_so(receiver, monkeypatch):
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "otlp")
    c = sessionkit.Client(endpoint=receiver.endpoint, service_name="events-svc")
    try:
        assert c.config.effective_logs_exporter == "otlp"
        with c.session("chat") as s:
            pass
        assert c.flush(timeout=10)
        assert receiver.wait_for(lambda spans: len(receiver.logs) >= 2)
        assert [(e.event_name, e.attributes["session.id"]) for e in receiver.logs] == [
            ("session.start", s.id),
            ("session.end", s.id),
        ]
        assert receiver.logs[0].resource["service.name"] == "events-svc"
    finally:
        c.shutdown(timeout=2)


def test_session_events_go_over_grpc_with_the_traces(monkeypatch):
    from grpc_receiver import GrpcOtlpReceiver

    with GrpcOtlpReceiver() as server:
        c = sessionkit.Client(exporter="otlp-grpc", endpoint=server.endpoint, logs_exporter="otlp")
        try:
            with c.session("chat") as s:
                pass
            assert c.flush(timeout=10)
            assert server.wait_for(lambda spans: len(server.logs) >= 2)
            assert [(e.event_name, e.attributes["session.id"]) for e in server.logs] == [
                ("session.start", s.id),
                ("session.end", s.id),
            ]
        finally:
            c.shutdown(timeout=2)


def test_the_local_store_keeps_the_session_events(tmp_path):
    store = tmp_path / "store"
    c = sessionkit.Client(file_dir=store)
    assert c.config.effective_logs_exporter == "file"
    with c.session("chat") as s:
        pass
    c.shutdown(timeout=5)
    db = sqlite3.connect(store / "sessionkit.db")
    rows = db.execute("SELECT name, session_id, attributes FROM events ORDER BY time_ns").fetchall()
    assert [(name, sid) for name, sid, _ in rows] == [("session.start", s.id), ("session.end", s.id)]
    assert all(json.loads(attrs)["session.id"] == s.id for _, _, attrs in rows)


def test_without_a_logs_exporter_no_events_and_no_logs_sdk(client):
    assert client.config.effective_logs_exporter == "none"
    with client.session("chat"):
        pass
    assert client.log_exporter is None


# -- the summary and its display ---------------------------------------------------------------------------
def test_the_summary_counts_each_turn(server):
    c = sessionkit.Client(exporter="memory", llm_base_urls=[server.url])
    try:
        sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        with c.session("chat") as s:
            with s.turn("one"):
                sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "1"}])
                sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "2"}])
            with s.turn("two"), c.tracer.start_as_current_span("fails") as span:
                span.set_status(StatusCode.ERROR)
        one, two = s.summary().turns
        reported = server.reported
        assert (one.index, one.llm_calls, one.input_tokens) == (
            1,
            2,
            reported[0].input_tokens + reported[1].input_tokens,
        )
        assert (two.index, two.llm_calls, two.errors, two.cost_usd) == (2, 0, 1, None)
        assert one.cost_usd > 0 and one.duration_seconds > 0 and not one.active
        html = s._repr_html_()
        # outside a kernel no spans are kept: the figures, and a table of the turns
        assert "<b>turns</b>" in html and html.count("<tr>") == 1 + len(s.summary().turns)
    finally:
        c.shutdown(timeout=1)


def test_an_ended_turns_record_and_all_spans_carry_the_session(client):
    with client.session("chat") as s:
        with s.turn("x"):
            with client.tracer.start_as_current_span("inner"):
                pass
    assert all(session_id_of(x) == s.id for x in spans_of(client))


def test_a_top_level_llm_call_is_a_turn_with_the_messages_as_input_and_output(server):
    c = sessionkit.Client(exporter="memory", llm_base_urls=[server.url], capture_content=True)
    try:
        sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        with c.session("chat") as s:
            sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is o-1?"}])
        (root,) = turns_of(c, s)
        a = root.attributes
        assert root.name == "chat gpt-4o-mini" and root.parent is None
        assert a["sessionkit.turn.implicit"] is True and a["sessionkit.turn.index"] == 1
        assert "Where is o-1?" in a["input.value"] and a["output.value"].startswith(server.reply)  # the answer
        assert json.loads(a["gen_ai.input.messages"])[0]["role"] == "user"
    finally:
        c.shutdown(timeout=1)


def test_sessionkit_show_prints_a_per_session_trace_turn_by_turn(tmp_path):
    store = tmp_path / "store"
    c = sessionkit.Client(file_dir=store, trace_per="session", capture_content=True)
    with c.session("tree") as s:
        with s.turn("first question") as turn:
            turn.set_output("first answer")
        with s.turn("second question"):
            pass
    c.shutdown(timeout=5)
    rc, out, err, _ = run_python(
        f"from sessionkit._cli import main; main(['show', {s.id[:8]!r}, '--dir', {str(store)!r}, '--tree'])"
    )
    assert rc == 0, err
    lines = out.splitlines()
    turn_lines = [line for line in lines if line.startswith("turn ")]
    assert [line.split()[1] for line in turn_lines] == ["1", "2"]
    assert "  in:  first question" in lines and "  out: first answer" in lines
    assert lines[-1].startswith("2 turns") and "state=success" in lines[-1]
    rc, out, err, _ = run_python(  # the waterfall: one trace, its turns told apart by their index
        f"from sessionkit._cli import main; main(['show', {s.id[:8]!r}, '--dir', {str(store)!r}, '--width', '90'])"
    )
    assert rc == 0, err
    headers = [line.split()[1] for line in out.splitlines() if re.match(r"turn \d+  \S+  \d+ spans", line)]
    assert headers == ["1", "2"] and "turn 1  in:  first question" in out


def test_an_open_turn_keeps_its_trace_while_many_others_come_and_go(client):
    # The registry forgets old traces past its bound, but never one still in use: a span that
    # starts late in a long open turn still belongs to that turn, not to a new one.
    from sessionkit._registry import RECENT_TRACES, TRIM_BATCH

    busy = client.start_session("busy")
    with client.session("long") as s, s.turn("a long turn"):
        with client.tracer.start_as_current_span("early") as early:
            for _ in range(RECENT_TRACES + TRIM_BATCH + 10):  # another session's many turns
                with busy.span("x"):
                    pass
            with client.tracer.start_as_current_span("late") as late:
                pass
    busy.end()
    assert early.attributes["sessionkit.turn.index"] == late.attributes["sessionkit.turn.index"] == 1
    assert "sessionkit.turn.implicit" not in late.attributes
    assert s.summary().turn_count == 1

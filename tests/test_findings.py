"""Findings and budgets (docs/insights.md), with the real openai and anthropic SDKs against the
fake server on 127.0.0.1: a tool loop, context growth toward a declared window, a 429 burst,
budgets that warn and that refuse a request before it is sent; findings over OTLP to a
receiver in another process; the detectors' settings and a detector of the user's own."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
import sessionkit

from otlp_receiver import OtlpReceiverProcess

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look an order up",
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
        },
    }
]


@pytest.fixture
def oai(server) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    yield sdk
    sdk.close()


def kinds(session: sessionkit.Session) -> list[str]:
    return [f.kind for f in session.findings]


def hex_ids(spans: list[Any]) -> list[str]:
    return [format(s.context.span_id, "016x") for s in spans]


@pytest.mark.parametrize("capture", [False, True], ids=["capture-off", "capture-on"])
def test_a_tool_called_five_times_with_the_same_arguments_is_one_loop_finding(make_client, oai, capture, caplog):
    client = make_client(capture_content=capture)

    @client.tool
    def lookup_order(order: str) -> str:
        return "pending"

    @client.tool
    def other(order: str) -> str:
        return "x"

    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        with client.session("support") as session:
            with session.turn("where is my order?"):
                for attempt in range(5):  # each request differs (the attempt), the tool call does not
                    reply = oai.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": f"where is A-1? (attempt {attempt})"}],
                        tools=TOOLS,
                    )
                    (call,) = reply.choices[0].message.tool_calls
                    lookup_order(**json.loads(call.function.arguments))
                    other(f"B-{attempt}")  # a tool called with new arguments each time: no loop
    (finding,) = session.findings
    assert finding.kind == "loop" and finding.severity is sessionkit.Severity.WARNING
    assert finding.turn == 1 and finding.figures == {"tool": "lookup_order", "calls": 5}
    assert client.flush(5)
    tool_spans = [s for s in client.exporter.get_finished_spans() if s.name == "execute_tool lookup_order"]
    assert list(finding.evidence) == hex_ids(tool_spans)
    assert "lookup_order was called 5 times" in finding.message
    assert [r for r in caplog.records if "lookup_order was called 5 times" in r.getMessage()]  # logged once
    assert len([r for r in caplog.records if "loop in session" in r.getMessage()]) == 1
    assert session.summary().findings == session.findings


def test_the_same_request_sent_again_after_its_answer_is_a_loop(make_client, oai):
    client = make_client()
    with client.session("resend") as session:
        for _ in range(3):
            oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "status?"}])
    (finding,) = session.findings
    assert finding.kind == "loop" and finding.figures["model"] == "gpt-4o-mini"
    assert len(finding.evidence) == 2  # reported at the first resend


def test_context_growth_at_the_turn_that_crosses_the_declared_window(make_client, server, oai):
    def converse(client: sessionkit.Client, turns: int) -> sessionkit.Session:
        messages: list[dict[str, str]] = []
        with client.session("long") as session:
            for n in range(turns):
                messages.append({"role": "user", "content": f"question {n}: " + "tell me more " * 40})
                with session.turn(messages[-1]["content"]):
                    reply = oai.chat.completions.create(model="ctx-model", messages=messages)
                messages.append({"role": "assistant", "content": reply.choices[0].message.content})
        return session

    converse(make_client(), 6)  # what each turn sends, as the server counts it
    sent = [r.input_tokens for r in server.reported]
    window = math.ceil(sent[3] / 0.85)  # the 4th turn at 85% of the window
    assert sent[2] / window < 0.8 <= sent[3] / window
    session = converse(make_client(context_windows={"ctx-model": window}), 6)
    crossing = [f for f in session.findings if f.kind == "context_growth" and f.turn == 4]
    (finding,) = crossing
    assert finding.severity is sessionkit.Severity.WARNING
    assert finding.figures["input_tokens"] == sent[3] and finding.figures["context_window"] == window
    growth = finding.figures["growth_per_turn"]
    assert growth > 0 and finding.figures["overflow_turn"] == 4 + math.ceil((window - sent[3]) / int(growth))
    assert "85%" in finding.message and "trim or summarise" in finding.message
    # turns 5 and 6 cross it again (each its own finding); the steady growth is one info finding
    assert [f.turn for f in session.findings if f.kind == "context_growth" and f.severity.value != "info"] == [4, 5, 6]
    assert [f.turn for f in session.findings if f.kind == "context_growth" and f.severity.value == "info"] == [5]


def test_a_429_burst_is_a_retry_storm_with_its_wasted_tokens(make_client, server):
    client = make_client(prices={"claude-d": {"input": 3.0, "output": 15.0}})
    sdk = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="k", max_retries=3)
    try:
        with client.session("stormy") as session:
            server.fail_next(3, 429)
            sdk.messages.create(model="claude-d", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    finally:
        sdk.close()
    assert [r.status for r in server.reported] == [429, 429, 429, 200]
    (finding,) = session.findings
    assert finding.kind == "retry_storm" and finding.figures["failed_calls"] == 3
    assert finding.figures["errors"] == "429"
    assert finding.figures["resent_input_tokens"] == 3 * server.reported[-1].input_tokens
    assert finding.figures["wasted_usd"] == pytest.approx(3 * server.reported[-1].input_tokens * 3.0 / 1e6)
    assert client.flush(5)
    failed = [s for s in client.exporter.get_finished_spans() if s.attributes.get("http.response.status_code") == 429]
    assert list(finding.evidence) == hex_ids(failed)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_budget_with_raise_refuses_the_next_request_before_it_is_sent(make_client, server, provider):
    client = make_client(prices={"priced": {"input": 1000.0, "output": 1000.0}})  # $0.001 per token
    if provider == "openai":
        sdk: Any = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=2)

        def ask() -> None:
            sdk.chat.completions.create(model="priced", messages=[{"role": "user", "content": "hi"}])
    else:
        sdk = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="k", max_retries=2)

        def ask() -> None:
            sdk.messages.create(model="priced", max_tokens=10, messages=[{"role": "user", "content": "hi"}])

    try:
        with pytest.raises(sessionkit.BudgetExceeded) as raised:
            with client.session("capped", budget=sessionkit.Budget(usd=0.001, on_exceed="raise")) as session:
                ask()  # costs more than the budget: sent, and the budget is spent
                ask()  # refused before it is sent (no SDK retry turns it into a connection error)
    finally:
        sdk.close()
    assert len(server.reported) == 1  # the server saw the first request only
    error = raised.value
    assert error.limit == "usd" and error.limit_value == 0.001 and error.consumed > 0.001
    assert error.session_id == session.id and "budget" in str(error)
    assert session.end_state is sessionkit.EndState.FAIL
    budget = [f for f in session.findings if f.kind == "budget"]
    assert [f.severity.value for f in budget] == ["error"]
    assert budget[0].figures["limit"] == "usd" and budget[0].figures["share"] > 1


def test_a_budget_that_warns_raises_nothing_and_reports_both_levels(make_client, oai, server):
    client = make_client()
    with client.session("watched", budget=sessionkit.Budget(llm_calls=5)) as session:
        for n in range(6):
            oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{n}"}])
    assert len(server.reported) == 6  # nothing refused
    budget = [f for f in session.findings if f.kind == "budget"]
    assert [(f.severity.value, f.figures["consumed"]) for f in budget] == [("warning", 4), ("error", 5)]
    assert session.end_state is sessionkit.EndState.SUCCESS


def test_a_callable_on_exceed_is_called_once_with_the_exception(make_client, oai):
    seen: list[sessionkit.BudgetExceeded] = []
    client = make_client(budget=sessionkit.Budget(tokens=20, on_exceed=seen.append))  # the client-wide default
    with client.session("default budget"):
        for n in range(4):
            oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{n}"}])
    (error,) = seen
    assert error.limit == "tokens" and error.consumed >= 20


def test_findings_reach_an_otlp_receiver_in_another_process(server, oai):
    with OtlpReceiverProcess() as receiver:
        client = sessionkit.Client(endpoint=receiver.endpoint, budget=sessionkit.Budget(tokens=100_000))

        @client.tool
        def lookup_order(order: str) -> str:
            return "pending"

        with client.session("over the wire") as session:
            with session.turn("loop"):
                for _ in range(3):
                    lookup_order("A-1")
                oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert client.flush(10)
        client.shutdown(timeout=5)
        spans = receiver.spans()
    (record,) = [s for s in spans if s.attributes.get("sessionkit.span.type") == "session"]
    (turn,) = [s for s in spans if s.attributes.get("sessionkit.span.type") == "turn"]
    for span in (record, turn):
        (event,) = [a for n, a in zip(span.events, span.event_attributes) if n == "sessionkit.finding"]
        assert event["sessionkit.finding.kind"] == "loop" and event["sessionkit.finding.turn"] == 1
        assert json.loads(event["sessionkit.finding.figures"]) == {"calls": 3, "tool": "lookup_order"}
        assert len(event["sessionkit.finding.evidence"]) == 3
    assert record.attributes["sessionkit.session.findings"] == 1
    assert record.attributes["sessionkit.session.finding_kinds"] == ["loop"]
    assert record.attributes["gen_ai.agent.token_budget.limit"] == 100_000
    assert record.attributes["gen_ai.agent.token_budget.consumed"] == sum(
        r.input_tokens + r.output_tokens for r in server.reported
    )
    assert session.findings[0].kind == "loop"


def test_findings_can_be_switched_off_by_kind(make_client, oai):
    client = make_client(findings=["budget"])

    @client.tool
    def lookup_order(order: str) -> str:
        return "pending"

    with client.session("quiet", budget=sessionkit.Budget(llm_calls=1)) as session:
        with session.turn("x"):
            for _ in range(4):
                lookup_order("A-1")
            oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert kinds(session) == ["budget"]
    none = make_client(findings="none")
    with none.session("silent") as session:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert session.findings == []


def test_a_detector_of_your_own_runs_in_every_session(make_client, oai):
    class ExpensiveModel(sessionkit.Detector):
        kind = "expensive_model"

        def span_ended(self, span: sessionkit.EndedSpan) -> None:
            if span.llm and span.model == "gpt-4o":
                self.report(sessionkit.Severity.INFO, f"{span.model} used", {"model": span.model}, [span.span_id])

    client = make_client(detectors=[ExpensiveModel])
    with client.session("mine") as session:
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    (finding,) = session.findings
    assert finding.kind == "expensive_model" and finding.figures == {"model": "gpt-4o"}


def test_a_turn_much_dearer_or_slower_than_the_median_is_found(make_client, oai):
    client = make_client(prices={"cheap": {"input": 1.0, "output": 1.0}, "dear": {"input": 100.0, "output": 100.0}})
    with client.session("spiky") as session:
        for n in range(5):
            with session.turn(f"q{n}"):
                model = "dear" if n == 4 else "cheap"
                oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "same size"}])
    (spike,) = [f for f in session.findings if f.kind == "cost_spike"]
    assert spike.turn == 5 and spike.figures["ratio"] > 50


def test_failed_turns_in_a_row_are_an_error_streak(make_client, oai):
    client = make_client()
    with client.session("broken") as session:
        for n in range(4):
            with pytest.raises(openai.InternalServerError):
                with session.turn(f"q{n}"):
                    oai.chat.completions.create(model="error-500", messages=[{"role": "user", "content": "hi"}])
    streaks = [f for f in session.findings if f.kind == "error_streak"]
    assert [(f.turn, f.figures) for f in streaks] == [(3, {"failed_turns": 3})]


@pytest.mark.parametrize(
    ("settings", "fix"),
    [
        ({"findings": ["loops"]}, "unknown: loops"),
        ({"finding_thresholds": {"loop": 0}}, "above 0"),
        ({"finding_thresholds": {"loops": 3}}, "unknown: 'loops'"),
        ({"context_windows": {"m": "big"}}, "whole number"),
        ({"detectors": [object]}, "sessionkit.Detector"),
        ({"budget": 5}, "sessionkit.Budget"),
    ],
)
def test_bad_finding_settings_name_the_setting_and_the_fix(settings, fix):
    with pytest.raises(sessionkit.ConfigError, match=fix) as raised:
        sessionkit.Client(exporter="memory", **settings)
    assert next(iter(settings)) in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({}, "at least one limit"),
        ({"usd": -1}, "above 0"),
        ({"usd": float("inf")}, "finite"),
        ({"turns": 2.5}, "whole number"),
        ({"usd": 1, "on_exceed": "stop"}, "'warn', 'raise' or a callable"),
        ({"usd": 1, "warn_at": 2}, "between 0 and 1"),
    ],
)
def test_a_bad_budget_is_a_clear_error(kwargs, fix):
    with pytest.raises(ValueError, match=fix):
        sessionkit.Budget(**kwargs)


def test_the_budget_and_finding_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SESSIONKIT_BUDGET", "usd=0.5,llm_calls=10,on_exceed=raise")
    monkeypatch.setenv("SESSIONKIT_FINDINGS", "loop,budget")
    monkeypatch.setenv("SESSIONKIT_FINDING_THRESHOLDS", "loop=5,spike_factor=4")
    client = sessionkit.Client(exporter="memory")
    try:
        assert client.config.budget == sessionkit.Budget(usd=0.5, llm_calls=10, on_exceed="raise")
        assert client.config.findings == ("loop", "budget")
        assert client.config.finding_thresholds == {"loop": 5.0, "spike_factor": 4.0}
    finally:
        client.shutdown(timeout=2)


def test_a_session_takes_only_a_budget_object(make_client):
    client = make_client()
    with pytest.raises(TypeError, match="sessionkit.Budget"):
        client.start_session("x", budget={"usd": 1})


def test_findings_reach_the_store_the_cli_filter_and_the_waterfall(tmp_path, server, oai):
    import os
    import subprocess
    import sys

    client = sessionkit.Client(exporter="file", file_dir=str(tmp_path))

    @client.tool
    def lookup_order(order: str) -> str:
        return "pending"

    with client.session("loopy") as looping:
        with looping.turn("where is it?"):
            for _ in range(4):
                lookup_order("A-1")
    with client.session("calm") as calm:
        with calm.turn("hi"):
            lookup_order("A-2")
    assert client.flush(10)
    client.shutdown(timeout=5)
    with sessionkit.open_store(tmp_path) as store:
        (stored,) = store.findings(looping.id)
        assert stored == looping.findings[0]  # the same finding, read back
        assert [s.session_id for s in store.sessions(finding="loop")] == [looping.id]
        assert store.count(finding="loop") == 1 and store.findings(calm.id) == []
        assert store.session(looping.id[:8]).findings == looping.findings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "sessionkit", *args, "--dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listing = cli("sessions", "--finding", "loop")
    assert looping.id[:8] in listing and calm.id[:8] not in listing and "1: loop" in listing
    shown = cli("show", looping.id[:8], "--width", "120", "--color", "never")
    assert "! loop: tool lookup_order was called 4 times with the same arguments in turn 1" in shown
    assert shown.count("*execute_tool lookup_order") == 4  # the evidence spans, marked
    assert "findings=1" in shown

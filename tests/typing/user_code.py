"""User code as README.md and docs/api.md show it, checked by ``mypy --strict`` (in CI and in
tests/test_typing.py). Every documented call appears here once with the type the docs give it.
It is type-checked, never run: the names it does not define (an agent, a request) are typed stubs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Optional

import sessionkit
from sessionkit import (
    Channel,
    ChannelAttempt,
    Client,
    ClientStats,
    Config,
    ContinuedScope,
    EndState,
    HistoryLoad,
    HistoryLoaderDecorator,
    OpenChannel,
    Options,
    Session,
    SessionScope,
    SessionSummary,
    SpanRecord,
    Store,
    Turn,
    TurnSummary,
)
from sessionkit.api import reset_default_client, swap_default_client
from sessionkit.fake_llm import FakeLLMServer
from sessionkit.instrumentation import LLMHttpInstrumentor
from sessionkit.testing import Capture


def script(conversation_session_id: str, headers: Mapping[str, str], answer: str) -> None:
    client: Client = sessionkit.init(service_name="support-bot", endpoint="http://127.0.0.1:6006")
    s: Session = client.start_session(
        "triage", thread_id="conv-42", user_id="u-7", tags=["beta"], metadata={"tier": "pro"}
    )
    s.end("success")
    s.end(EndState.FAIL, reason="gave up")

    with client.session("triage", thread_id="conv-42") as s2:
        with s2.turn("Where is my order?") as turn:
            with s2.span("lookup", order="o-1"):
                pass
            turn.set_output(answer)
    summary: SessionSummary = s2.summary()
    turns: list[TurnSummary] = summary.turns
    cost: Optional[float] = summary.cost_usd
    print(turns, cost, summary.model_dump_json())

    s3 = client.start_session("triage", session_id=conversation_session_id)
    client = sessionkit.init(propagate_to=["tools.internal", "mcp"], sample_rate=0.25)
    continued: ContinuedScope = client.continue_session(headers)
    with continued as joined:
        if joined is not None:
            joined.record_event("joined")
    with client.continue_session(headers, trust=True, name="tools"):
        pass
    outgoing: dict[str, str] = client.propagation_headers()
    print(s3.id, outgoing)

    with s3.channel_attempt("discord") as attempt:
        assert isinstance(attempt, ChannelAttempt)
        attempt.opened("c-1")
    channel: Channel = s3.open_channel("discord", "c-2", purpose="support")
    channel.record("message", size=3)
    channel.close()
    with s3.channel("slack", "c-3") as ch:
        ch.record("hello")
    open_now: list[OpenChannel] = client.open_channels()
    with s3.history_load("postgres", turn=7) as load:
        assert isinstance(load, HistoryLoad)
        load.record(messages=12, cache_hit=False)
    print(open_now)

    flushed: bool = client.flush(timeout=5.0)
    stats: ClientStats = client.stats()
    print(flushed, stats.dropped_spans, stats.backpressure_waits)
    ended: bool = client.shutdown(timeout=5.0)
    print(ended)


def the_issue_four() -> None:
    """The four lines that were untrue (issue 28)."""
    client = sessionkit.Client(exporter="memory")
    session = client.start_session("x")
    session.client.flush()
    with session.turn("hi") as turn:
        turn.session.end()
    sessionkit.init(display_spans=True, store_max_mb=10)
    channel = session.open_channel("discord", "c")
    channel.session.end()


def members(session: Session, turn: Turn) -> None:
    ids: tuple[str, str, Optional[str]] = (session.id, session.trace_id, session.previous_id)
    when: tuple[datetime, Optional[datetime]] = (session.started_at, session.ended_at)
    state: tuple[Optional[EndState], Optional[str], bool] = (session.end_state, session.end_reason, session.is_active)
    session.add_tags("a", "b")
    session.set_metadata({"k": 1}, other=2)
    seen: list[Turn] = session.turns
    html: str = session.html(turn=1)
    sampled: bool = session.sampled
    print(ids, when, state, seen, html, sampled, session.name, session.thread_id, session.user_id)
    print(session.tags, session.metadata)
    figures: tuple[int, Optional[str], bool, bool, Optional[float]] = (
        turn.index,
        turn.trace_id,
        turn.implicit,
        turn.is_active,
        turn.duration_seconds,
    )
    turn.set_input("q")
    turn.set_output("a")
    turn.end()
    one: TurnSummary = turn.summary()
    print(figures, one)


@sessionkit.agent
def planner(question: str) -> str:
    return question


@sessionkit.tool(name="search_orders", capture_content=True)
async def search_orders(order_id: str) -> dict[str, str]:
    return {"order": order_id}


@sessionkit.llm(model="gpt-4o-mini", provider="openai")
def ask(prompt: str) -> str:
    sessionkit.record_llm_usage(input_tokens=3, output_tokens=5, response_model="gpt-4o-mini")
    return prompt


@sessionkit.task
def step() -> int:
    return 1


@sessionkit.trace("helper")
def helper(x: int) -> int:
    return x


def decorated(client: Client) -> None:
    @client.session("handle_request")
    def handle(user_id: str, message: str) -> str:
        return message

    @client.turn
    def reply(message: str) -> str:
        return message

    @client.turn(name="handle")
    async def areply(message: str) -> str:
        return message

    @sessionkit.turn
    def module_reply(message: str) -> str:
        return message

    @sessionkit.history_loader("redis")
    def load_history(conversation_id: str) -> list[str]:
        return []

    @client.history_loader(source="postgres")
    def load_rows(thread_id: str) -> list[str]:
        return []

    @client.tool
    def lookup(order_id: str) -> str:
        return order_id

    answer: str = handle("u-1", reply("hi"))
    loaded: list[str] = load_history("c") + load_rows("t")
    found: str = lookup("o-1") + module_reply("x") + planner("q") + ask("p") + helper(1).__str__() + str(step())
    print(answer, loaded, found, asyncio.run(areply("x")), asyncio.run(search_orders("o-1")))
    loader: HistoryLoaderDecorator = client.history_loader
    scope: SessionScope = client.session("notebook")
    print(scope, loader)


async def in_async(client: Client) -> None:
    async with client.session("async") as s:
        async with s.turn("hi") as turn:
            turn.set_output("there")
        async with client.continue_session({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) as joined:
            print(joined)


def module_helpers() -> None:
    s: Session = sessionkit.start_session("m", user_id="u")
    with sessionkit.session("block") as block:
        current: Optional[Session] = sessionkit.current_session()
        print(block.id, current)
    ended: Optional[Session] = sessionkit.end_session("success", session=s)
    print(ended, sessionkit.flush(), sessionkit.get_client())
    sessionkit.shutdown()


def settings() -> None:
    options: Options = {"service_name": "bot", "exporter": "memory", "display_spans": "auto", "store_max_mb": 50}
    client = sessionkit.Client(**options)
    config: Config = client.config
    print(config.masked(), client.tracer, client.tracer_provider, client.exporter, client.log_exporter)
    print(client.redact("sk-secret"), client.prices.cost("gpt-4o", "openai", 10, 5))
    client.session_event("session.note", {"k": "v"})
    client.uninstrument()
    client.instrument()
    sessionkit.init(
        store_max_age_days=7,
        display_max_sessions=5,
        display_max_spans=100,
        shutdown_timeout=3.0,
        continue_incoming=False,
    )
    previous: Optional[Client] = swap_default_client(client, pinned=True)
    reset_default_client(timeout=2.0)
    print(previous)


def reading(since: timedelta) -> None:
    with sessionkit.open_store() as store:
        assert isinstance(store, Store)
        failed: list[SessionSummary] = store.sessions(state="fail", since="1d")
        spans: list[SpanRecord] = store.spans(failed[0].session_id)
        rows: list[SessionSummary] = store.sessions(user="u-7", since=since, limit=20)
        one: Optional[SessionSummary] = store.session("abc")
        its_turns: list[TurnSummary] = store.turns("abc")
        resolved: Optional[str] = store.resolve("ab")
        count: int = store.count(user="u-7")
        with store.snapshot():
            print(failed, spans, rows, one, its_turns, resolved, count)
        sent: int = store.export("http://127.0.0.1:4318", since=since, timeout=10.0)
        written: int = store.export_jsonl("/tmp/out.jsonl")
        print(sent, written, rows[0].session_id)
    with Store("/tmp/store") as explicit:
        print(explicit.count())
    table = sessionkit.SessionsTable([])
    print(table)


def testing_helpers() -> None:
    with Capture() as capture:
        spans: list[Any] = list(capture.spans())
        capture.assert_session(capture.session_ids()[0], state="success", turns=1, llm_calls=1)
        print(spans)
    server = FakeLLMServer().start()
    print(server.openai_base_url, server.anthropic_base_url, server.reported)
    server.stop()
    instrumentor = LLMHttpInstrumentor()
    instrumentor.instrument(capture_content=True)
    print(instrumentor.client)


def findings_and_budgets() -> None:
    class Expensive(sessionkit.Detector):
        kind = "expensive"
        sees = frozenset({"llm"})

        def span_ended(self, span: sessionkit.EndedSpan) -> None:
            if span.cost_usd > 0.05:
                self.report(sessionkit.Severity.WARNING, "dear", {"usd": span.cost_usd}, [span.span_id], span.turn)

        def turn_ended(self, turn: sessionkit.EndedTurn) -> None:
            print(turn.index, turn.cost_usd)

    client = sessionkit.Client(exporter="memory", detectors=[Expensive], findings=["loop", "budget"])
    budget = sessionkit.Budget(usd=0.5, tokens=200_000, on_exceed="raise")
    try:
        with client.session("capped", budget=budget) as session:
            found: list[sessionkit.Finding] = session.findings
            print([(f.kind, f.severity.value, f.message, f.evidence, f.turn) for f in found])
    except sessionkit.BudgetExceeded as stop:
        print(stop.limit, stop.limit_value, stop.consumed, stop.session_id)
    on_exceed: list[sessionkit.BudgetExceeded] = []
    client.start_session("warned", budget=sessionkit.Budget(llm_calls=5, on_exceed=on_exceed.append)).end()
    with sessionkit.open_store("/tmp/store") as store:
        loops: list[sessionkit.Finding] = store.findings(kind="loop")
        looping: list[SessionSummary] = store.sessions(finding="loop")
        print(loops, looping[0].findings)
    client.shutdown()

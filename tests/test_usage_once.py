"""Every LLM call's tokens counted once in what a dashboard receives (issue 29).

A framework's or SDK's own span of an LLM call and sessionkit's wire span under it describe one
call. Only the wire span keeps the usage, the cost and the LLM span kind; the other keeps its
detail. Checked with the real packages against the fake server on 127.0.0.1, exported over
OTLP/HTTP to a receiver in another process: the tokens summed over a session's spans equal the
tokens the fake server reported, in both conventions dashboards read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
import sessionkit
from langchain_core.messages import HumanMessage

from otlp_receiver import OtlpReceiverProcess, ReceivedSpan
from test_langchain import build_graph


@pytest.fixture
def collector():
    with OtlpReceiverProcess() as receiver:
        yield receiver


@pytest.fixture
def exporting(collector):
    made: list[sessionkit.Client] = []

    def make(**settings: Any) -> sessionkit.Client:
        client = sessionkit.Client(endpoint=collector.endpoint, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(timeout=5)


def received_session(client: sessionkit.Client, collector: OtlpReceiverProcess, session_id: str) -> list[ReceivedSpan]:
    assert client.flush(10)
    return [s for s in collector.spans() if s.attributes.get("session.id") == session_id]


def assert_counted_once(spans: list[ReceivedSpan], server, scope_or_kind: str) -> None:
    reported_in = sum(r.input_tokens for r in server.reported)
    reported_out = sum(r.output_tokens for r in server.reported)
    assert reported_in > 0 and server.reported
    for key, want in (
        ("gen_ai.usage.input_tokens", reported_in),
        ("gen_ai.usage.output_tokens", reported_out),
        ("llm.token_count.prompt", reported_in),  # what Phoenix sums
        ("llm.token_count.completion", reported_out),
        ("llm.token_count.total", reported_in + reported_out),
    ):
        assert sum(s.attributes.get(key, 0) for s in spans) == want, key
    llm = [s for s in spans if s.attributes.get("openinference.span.kind") == "LLM"]
    assert len(llm) == len(server.reported)  # one LLM span per call: the wire's
    assert all("http.response.status_code" in s.attributes for s in llm)
    # The framework's own span of each call is still there, with its detail and without usage.
    theirs = [s for s in spans if s.attributes.get("sessionkit.llm.counted_in_child")]
    assert len(theirs) == len(server.reported)
    for span in theirs:
        assert scope_or_kind in span.name or scope_or_kind in str(span.attributes.get("sessionkit.agents.span_type"))
        assert span.attributes.get("openinference.span.kind") != "LLM"
        assert not any(k.startswith(("gen_ai.usage.", "llm.token_count.", "llm.cost.")) for k in span.attributes)
    costed = [s for s in spans if "llm.cost.total" in s.attributes]
    assert {s.span_id for s in costed} <= {s.span_id for s in llm}


def run_anthropic(client: sessionkit.Client, server) -> sessionkit.Session:
    """Three turns through anthropic's SDK with its own OTel spans on."""
    sdk = anthropic.Anthropic(
        base_url=server.anthropic_base_url,
        api_key="k",
        max_retries=0,
        open_telemetry={"tracer_provider": client.tracer_provider},
    )
    with sdk, client.session("anthropic") as session:
        for question in QUESTIONS:
            with session.turn(question):
                sdk.messages.create(model="claude-d", max_tokens=10, messages=[{"role": "user", "content": question}])
    return session


def run_openai_agents(client: sessionkit.Client, server) -> sessionkit.Session:
    """Three Agents SDK runs (a tool call each) in one session."""
    from agents import Agent, Runner, set_default_openai_client, set_trace_processors
    from openai import AsyncOpenAI
    from sessionkit.integrations import openai_agents

    from test_openai_agents import get_weather

    set_trace_processors([openai_agents.processor()])  # the SDK's own exporter off: no network
    agent = Agent(name="Weather", instructions="Answer briefly.", tools=[get_weather], model="gpt-4o-mini")

    async def conversation() -> sessionkit.Session:
        llm = AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        set_default_openai_client(llm, False)
        try:
            with client.session("openai-agents") as session:
                for question in QUESTIONS:
                    await Runner.run(agent, question)
            return session
        finally:
            await llm.close()  # (its connections closed on their own loop, not left to the GC)

    return asyncio.run(conversation())


def run_langgraph(client: sessionkit.Client, server) -> sessionkit.Session:
    """Three invocations of a LangGraph agent (model and tool nodes) on one thread."""
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o-mini", base_url=server.openai_base_url, api_key="k", max_retries=0)
    graph = build_graph(server, model)
    try:
        with client.session("langgraph") as session:
            for question in QUESTIONS:
                graph.invoke({"messages": [HumanMessage(question)]}, {"configurable": {"thread_id": "t-1"}})
        return session
    finally:
        model.root_client.close()  # (its connections closed here, not left to the GC)


def run_pydantic_ai(client: sessionkit.Client, server) -> sessionkit.Session:
    """Three pydantic-ai runs continuing one message history, its own instrumentation on."""
    from openai import AsyncOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    async def conversation() -> sessionkit.Session:
        llm = AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        agent = Agent(OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(openai_client=llm)))
        Agent.instrument_all(InstrumentationSettings(tracer_provider=client.tracer_provider))
        try:
            with client.session("pydantic-ai") as session:
                history: list[Any] = []
                for question in QUESTIONS:
                    history = (await agent.run(question, message_history=history)).all_messages()
            return session
        finally:
            Agent.instrument_all(False)
            await llm.close()

    return asyncio.run(conversation())


QUESTIONS = ("Weather in Paris?", "And Rome?", "Thanks")
# framework -> (its run, a part of the name (or Agents span type) of its own span of a call)
RUNS: dict[str, tuple[Callable[[sessionkit.Client, Any], sessionkit.Session], str]] = {
    "anthropic": (run_anthropic, "anthropic.messages"),
    "openai-agents": (run_openai_agents, "response"),
    "langgraph": (run_langgraph, "chat"),
    "pydantic-ai": (run_pydantic_ai, "chat"),
}


@pytest.mark.parametrize("framework", list(RUNS))
def test_tokens_summed_over_the_exported_spans_are_the_servers(framework, server, exporting, collector):
    run, own_span = RUNS[framework]
    client = exporting()
    session = run(client, server)
    assert_counted_once(received_session(client, collector, session.id), server, own_span)

"""The OpenAI Agents SDK in the session, through the real ``openai-agents`` package against the
fake OpenAI server on 127.0.0.1 (tool calls included). The SDK's own trace export is switched
off: its processors are replaced by sessionkit's alone (no network)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    Runner,
    function_tool,
    input_guardrail,
    set_default_openai_client,
    set_trace_processors,
)
from openai import AsyncOpenAI
from sessionkit.integrations import openai_agents

from helpers import spans_of


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture
def server(server):
    # the Agents SDK's default client, pointed at the fake server
    set_default_openai_client(AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0), False)
    return server


@pytest.fixture
def make_client(make_client):
    def make(**settings):
        client = make_client(**settings)
        processor = openai_agents.processor()
        assert processor is not None  # set up: agents was imported
        set_trace_processors([processor])  # the SDK's exporter off: no network
        return client

    return make


def ancestors(client, span):
    parents = {s.context.span_id: s.parent.span_id for s in spans_of(client) if s.parent is not None}
    found, at = [], span.context.span_id
    while at in parents:
        at = parents[at]
        found.append(at)
    return found


def by_name(client):
    return {s.name: s for s in spans_of(client)}


def weather_agent():
    return Agent(name="Weather", instructions="Answer briefly.", tools=[get_weather], model="gpt-4o-mini")


def test_a_run_in_a_session_is_a_tree_of_agent_tool_and_llm_spans(server, make_client):
    client = make_client(capture_content=True)
    with client.session("support") as session:
        result = Runner.run_sync(weather_agent(), "Weather in Paris?")
    assert result.final_output.strip()
    spans = by_name(client)
    agent, tool = spans["invoke_agent Weather"], spans["execute_tool get_weather"]
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "Weather"
    assert agent.attributes["openinference.span.kind"] == "AGENT"
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert tool.attributes["gen_ai.tool.call.result"] == "sunny in Paris"
    assert agent.context.span_id in ancestors(client, tool)
    for span in spans_of(client):
        if span.attributes.get("sessionkit.span.type") != "session":
            assert span.attributes["session.id"] == session.id
    # The SDK's two model calls are seen on the wire inside its response spans, and counted once.
    wire = [s for s in spans_of(client) if s.attributes.get("http.response.status_code") == 200]
    sdk_calls = [s for s in spans_of(client) if s.attributes.get("sessionkit.agents.span_type") == "response"]
    assert len(wire) == 2 and len(sdk_calls) == 2
    assert {w.parent.span_id for w in wire} == {c.context.span_id for c in sdk_calls}
    assert all(c.attributes["sessionkit.llm.counted_in_child"] for c in sdk_calls)
    summary = session.summary()
    assert summary.llm_calls == 2
    assert summary.input_tokens == sum(r.input_tokens for r in server.reported)
    # One span per thing: the SDK's task span of the run is folded into the run's span (no
    # "Agent workflow" under "Agent workflow"); only a wire span shares its response span's name.
    names = {s.context.span_id: s.name for s in spans_of(client)}
    repeated = {s.name for s in spans_of(client) if s.parent is not None and names.get(s.parent.span_id) == s.name}
    assert repeated <= {"chat gpt-4o-mini"}
    assert [s.name for s in spans_of(client)].count("Agent workflow") == 1


def records_of(client):
    return [s for s in spans_of(client) if s.attributes.get("sessionkit.span.type") == "session"]


def wait_for_record(client, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not records_of(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    return records_of(client)


def test_runs_with_one_group_id_outside_a_session_are_one_conversation_a_turn_each(server, make_client):
    from agents import RunConfig

    client = make_client(conversation_idle_timeout=0.5)  # default settings otherwise: turn content on
    questions = ["Weather in Paris?", "And in Rome?", "Thanks!"]
    for question in questions:
        Runner.run_sync(weather_agent(), question, run_config=RunConfig(group_id="conversation-7"))
    turns = [s for s in spans_of(client) if s.attributes.get("sessionkit.span.type") == "turn"]
    assert [t.attributes["input.value"] for t in turns] == questions  # the user's message, not the history
    assert all(t.attributes["output.value"].strip() for t in turns)  # the final answer
    assert [t.attributes["sessionkit.turn.index"] for t in turns] == [1, 2, 3]
    assert [t.name for t in turns] == [f"turn {i}: {q}" for i, q in enumerate(questions, 1)]
    (session_id,) = {s.attributes.get("session.id") for s in spans_of(client) if "session.id" in s.attributes}
    runs = [s for s in spans_of(client) if s.attributes.get("sessionkit.agents.trace_id")]
    assert [r.parent.span_id for r in runs] == [t.context.span_id for t in turns]  # each run in its turn
    assert [r.attributes["input.value"] for r in runs] == questions
    assert not records_of(client)  # the conversation is still open ...
    (record,) = wait_for_record(client)  # ... until it has been idle for the timeout
    a = record.attributes
    assert (a["sessionkit.session.id"], a["sessionkit.session.thread_id"]) == (session_id, "conversation-7")
    assert a["sessionkit.session.turns"] == 3 and "idle" in a["sessionkit.session.end_reason"]
    Runner.run_sync(weather_agent(), "Hello again", run_config=RunConfig(group_id="conversation-7"))
    later = {s.attributes.get("session.id") for s in spans_of(client) if "session.id" in s.attributes}
    assert len(later - {session_id}) == 1  # after the idle end, the same group is a new session


def test_a_run_with_no_group_outside_a_session_is_a_session_of_its_own(server, make_client):
    client = make_client()
    Runner.run_sync(weather_agent(), "Weather?")
    (record,) = records_of(client)  # ended with the run
    session_id = record.attributes["sessionkit.session.id"]
    assert all(s.attributes.get("session.id") == session_id for s in spans_of(client) if s is not record)
    (run,) = [s for s in spans_of(client) if s.attributes.get("sessionkit.agents.trace_id")]
    assert run.attributes["input.value"] == "Weather?" and run.attributes["output.value"]


def test_a_streamed_run_keeps_the_tool_call(server, make_client):
    client = make_client(capture_content=True)

    async def main():
        with client.session("streamed"):
            result = Runner.run_streamed(weather_agent(), "Weather in Paris?")
            async for _ in result.stream_events():
                pass
            return result.final_output

    assert asyncio.run(main()).strip()
    spans = by_name(client)
    assert json.loads(spans["execute_tool get_weather"].attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert spans["invoke_agent Weather"].attributes["gen_ai.agent.name"] == "Weather"


def test_handoffs_and_guardrails_are_spans(server, make_client):
    client = make_client()

    @input_guardrail
    def polite(context, agent, text):
        return GuardrailFunctionOutput(output_info="ok", tripwire_triggered=False)

    expert = Agent(name="Expert", instructions="Answer.", model="gpt-4o-mini")
    triage = Agent(
        name="Triage", instructions="Hand off.", handoffs=[expert], input_guardrails=[polite], model="gpt-4o-mini"
    )
    with client.session("handoff"):
        Runner.run_sync(triage, "I need an expert")
    names = [s.name for s in spans_of(client)]
    assert "handoff Triage -> Expert" in names
    assert "invoke_agent Expert" in names
    guardrail = by_name(client)["guardrail polite"]
    assert guardrail.attributes["sessionkit.agents.guardrail.triggered"] is False
    assert guardrail.attributes["openinference.span.kind"] == "GUARDRAIL"


def test_with_the_integration_off_only_the_wire_calls_are_recorded(server, make_client):
    client = make_client(integrations="none")
    with client.session("off"):
        Runner.run_sync(weather_agent(), "Weather?")
    names = {s.name for s in spans_of(client)}
    assert not any(n.startswith(("invoke_agent", "execute_tool")) for n in names)
    assert "chat gpt-4o-mini" in names  # the model calls, on the wire

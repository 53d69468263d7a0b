"""Agent frameworks that need no integration module: their model calls go through the provider's
SDK (or httpx), so the wire hooks record them in the session. The real packages against the fake
OpenAI server on 127.0.0.1; a conversation of two messages (``client.conversation``), each a turn
with its message, every LLM call in it with the server's tokens."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from helpers import spans_of


def ask_smolagents(server: Any) -> Callable[[str], Any]:
    from smolagents import OpenAIServerModel, ToolCallingAgent, tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: the city's name.
        """
        return f"sunny in {city}"

    model = OpenAIServerModel(model_id="gpt-4o-mini", api_base=server.openai_base_url, api_key="k")
    agent = ToolCallingAgent(tools=[get_weather], model=model, max_steps=2, verbosity_level=0)
    return lambda question: agent.run(question)


def ask_agno(server: Any) -> Callable[[str], Any]:
    from agno.agent import Agent
    from agno.models.openai import OpenAIChat

    model = OpenAIChat(id="gpt-4o-mini", base_url=server.openai_base_url, api_key="k")
    agent = Agent(model=model, telemetry=False)  # (agno reports usage to its makers by default: off, no network)
    return lambda question: agent.run(question).content


FRAMEWORKS = {"smolagents": ask_smolagents, "agno": ask_agno}


@pytest.fixture
def loopback_only(monkeypatch):
    """Connections anywhere but 127.0.0.1 are refused and listed (a framework's telemetry)."""
    elsewhere: list[Any] = []
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "localhost"):
            elsewhere.append(address)
            raise ConnectionRefusedError(f"no network beyond loopback in tests: {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield elsewhere
    assert not elsewhere, f"the framework tried to reach {elsewhere}"


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_a_frameworks_calls_are_llm_spans_of_the_conversations_turns(framework, server, make_client, loopback_only):
    client = make_client()
    ask = FRAMEWORKS[framework](server)
    questions = ["Weather in Paris?", "And tomorrow?"]
    for question in questions:
        with client.conversation(f"{framework}-chat").turn(question) as turn:
            turn.set_output(str(ask(question)))
    session = client.conversation(f"{framework}-chat")
    spans = spans_of(client)
    llm = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(llm) == len(server.reported) >= 2
    assert all(s.attributes["session.id"] == session.id for s in llm)
    assert {s.attributes["sessionkit.turn.index"] for s in llm} == {1, 2}  # every call in its message's turn
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in llm) == sum(r.input_tokens for r in server.reported)
    roots = [s for s in spans if s.attributes.get("sessionkit.span.type") == "turn"]
    assert [r.attributes["input.value"] for r in roots] == questions
    assert all(r.attributes["output.value"] for r in roots)
    summary = session.summary()
    assert (summary.turn_count, summary.llm_calls) == (2, len(server.reported))

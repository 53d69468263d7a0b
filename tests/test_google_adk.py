"""Google ADK (the real ``google-adk``, its model calls through google-genai to the fake Gemini
server on 127.0.0.1), exported over OTLP to a receiver in another process.

- Runs on one ADK session, outside any sessionkit session, are one session, a turn per run,
  each with the run's message and final answer, ADK's user as the session's user.
- Each model call's tokens are on exactly one exported span (the wire's); ADK's own
  ``generate_content`` span keeps its detail without usage.
- Inside ``client.session(...)`` the runs are the caller's: no session of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sessionkit
from sessionkit.fake_llm import FakeProviderServer

from otlp_receiver import OtlpReceiverProcess

QUESTIONS = ("Weather in Paris?", "And in Rome?", "Thanks")


@pytest.fixture
def gemini(monkeypatch) -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
        monkeypatch.setenv("GOOGLE_API_KEY", "k")
        yield server


@pytest.fixture
def collector() -> Iterator[OtlpReceiverProcess]:
    with OtlpReceiverProcess() as receiver:
        yield receiver


def get_weather(city: str) -> dict[str, str]:
    """The weather in a city."""
    return {"sky": "sunny", "city": city}


async def converse(session: Any = None) -> tuple[str, list[str]]:
    """Three runs of an ADK agent on one ADK session (each a turn of ``session`` if given):
    ADK's session id and the final answers."""
    from google.adk.agents import Agent
    from google.adk.runners import InMemoryRunner
    from google.genai import types

    agent = Agent(name="weather", model="gemini-2.0-flash", instruction="Answer briefly.", tools=[get_weather])
    runner = InMemoryRunner(agent=agent, app_name="weather-app")
    adk_session = await runner.session_service.create_session(app_name="weather-app", user_id="ada")
    answers: list[str] = []
    try:
        for question in QUESTIONS:
            message = types.Content(role="user", parts=[types.Part(text=question)])
            with session.turn(question) if session is not None else _nothing():
                async for event in runner.run_async(user_id="ada", session_id=adk_session.id, new_message=message):
                    if event.is_final_response() and event.content and event.content.parts:
                        answers.append("".join(p.text or "" for p in event.content.parts))
    finally:
        await runner.close()
    return adk_session.id, answers


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_runs_on_one_adk_session_are_one_session_with_a_turn_per_run(gemini, collector):
    client = sessionkit.Client(service_name="adk", exporter="otlp", endpoint=collector.endpoint)
    try:
        adk_id, answers = asyncio.run(converse())
        assert len(answers) == 3
        session = client.conversation(adk_id)  # the open session of ADK's conversation
        assert len(session.turns) == 3 and session.user_id == "ada"
        session.end()
        assert client.flush(10)
    finally:
        client.shutdown(timeout=5)
    spans = [s for s in collector.spans() if s.attributes.get("session.id") == session.id]
    turns = sorted(
        (s for s in spans if s.attributes.get("sessionkit.span.type") == "turn"),
        key=lambda s: s.attributes["sessionkit.turn.index"],
    )
    assert [t.attributes.get("input.value") for t in turns] == list(QUESTIONS)
    assert [t.attributes.get("output.value") for t in turns] == answers
    assert {t.attributes.get("gen_ai.conversation.id") for t in turns} == {adk_id}
    assert {t.attributes.get("user.id") for t in turns} == {"ada"}
    # ADK's own agent spans are under the turns, in the session
    assert len([s for s in spans if s.name.startswith("invoke_agent")]) == 3
    # Each call's tokens once: only the wire's LLM span carries usage
    reported_in = sum(r[0] for r in gemini.reported)
    assert reported_in > 0
    assert sum(s.attributes.get("gen_ai.usage.input_tokens", 0) for s in spans) == reported_in
    assert sum(s.attributes.get("llm.token_count.prompt", 0) for s in spans) == reported_in
    theirs = [s for s in spans if s.attributes.get("sessionkit.llm.counted_in_child")]
    assert len(theirs) == len(gemini.reported) and all(s.name.startswith("generate_content") for s in theirs)
    assert not any(k.startswith("gen_ai.usage.") for s in theirs for k in s.attributes)


def test_runs_inside_a_session_are_the_callers(gemini):
    client = sessionkit.Client(exporter="memory")
    try:
        with client.session("mine") as session:
            asyncio.run(converse(session))
        assert client.flush(5)
        spans = client.exporter.get_finished_spans()
        ids = {s.attributes.get("session.id") for s in spans if s.attributes.get("sessionkit.span.type") != "session"}
        assert len([s for s in spans if s.name.startswith("invoke_agent")]) == 3
        assert len(session.turns) == 3
    finally:
        client.shutdown(timeout=5)
    assert ids == {session.id}

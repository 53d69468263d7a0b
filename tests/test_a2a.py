"""An agent served over A2A (the real ``a2a-sdk``, its JSON-RPC routes on uvicorn, in a process of
its own) whose executor asks the fake OpenAI server. The caller, in the test, talks to it with
a2a-sdk's client. Both processes export to an OTLP receiver in a third.

- With the agent's URL in the caller's ``propagate_to``, the agent's run continues the caller's
  session: its model call is in the caller's session and trace, under the caller's turn.
- Without, the agent's runs are a session of the A2A conversation (``contextId``): two messages
  of one context are one session of two turns, each with its message and the agent's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import sessionkit

from otlp_receiver import OtlpReceiverProcess
from test_distributed import Service

AGENT_SERVICE = """
import socket, sys
import sessionkit, uvicorn
from openai import AsyncOpenAI
from starlette.applications import Starlette
from a2a.helpers.proto_helpers import new_text_message
from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill

sessionkit.init(service_name="a2a-agent", exporter="otlp", endpoint=sys.argv[1], export_interval=0.1)
llm_url = sys.argv[2]


class Weather(AgentExecutor):
    async def execute(self, context, event_queue):
        async with AsyncOpenAI(base_url=llm_url, api_key="k", max_retries=0) as llm:
            reply = await llm.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": context.get_user_input()}]
            )
        await event_queue.enqueue_event(
            new_text_message(reply.choices[0].message.content, context_id=context.context_id, task_id=context.task_id)
        )

    async def cancel(self, context, event_queue):
        pass


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
url = "http://127.0.0.1:%d" % sock.getsockname()[1]
card = AgentCard(
    name="weather", description="Weather answers", version="1",
    supported_interfaces=[AgentInterface(url=url + "/", protocol_binding="JSONRPC", protocol_version="1.0")],
    capabilities=AgentCapabilities(streaming=False), default_input_modes=["text"], default_output_modes=["text"],
    skills=[AgentSkill(id="weather", name="weather", description="the weather", tags=["weather"])],
)
handler = DefaultRequestHandler(agent_executor=Weather(), task_store=InMemoryTaskStore(), agent_card=card)
app = Starlette(routes=create_agent_card_routes(card) + create_jsonrpc_routes(handler, "/"))
print("PORT", sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off")).run(sockets=[sock])
"""

QUESTIONS = ("Weather in Paris?", "And in Rome?")


@pytest.fixture
def collector() -> Iterator[OtlpReceiverProcess]:
    with OtlpReceiverProcess() as receiver:
        yield receiver


@pytest.fixture
def agent(collector, server) -> Iterator[Service]:
    service = Service(AGENT_SERVICE, collector.endpoint, server.openai_base_url)
    yield service
    service.stop()


async def ask(agent: Service, session: sessionkit.Session | None) -> list[str]:
    """Both questions in one A2A context (the second message names the first's context id);
    each a turn of ``session`` when there is one. The agent's answers, in order."""
    from a2a.client import ClientConfig, ClientFactory
    from a2a.types import Message, Part, Role, SendMessageRequest

    answers: list[str] = []
    async with httpx.AsyncClient() as http:
        a2a = await ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create_from_url(agent.url)
        context_id = ""
        try:
            for n, question in enumerate(QUESTIONS):
                message = Message(
                    message_id=f"m{n}", role=Role.ROLE_USER, parts=[Part(text=question)], context_id=context_id
                )
                with session.turn(question) if session is not None else _nothing():
                    async for event in a2a.send_message(SendMessageRequest(message=message)):
                        assert event.HasField("message")
                        context_id = event.message.context_id
                        answers.append(event.message.parts[0].text)
        finally:
            await a2a.close()
    return answers


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_an_a2a_agent_continues_the_callers_session_under_its_turns(agent, collector, server):
    client = sessionkit.Client(
        service_name="caller", exporter="otlp", endpoint=collector.endpoint, propagate_to=[agent.url]
    )
    try:
        with client.session("asks an agent") as session:
            answers = asyncio.run(ask(agent, session))
        assert len(answers) == 2 and all(a.startswith(server.reply) for a in answers)
        assert client.flush(10)
        assert collector.wait_for(lambda spans: len([s for s in spans if s.name.startswith("chat ")]) == 2)
    finally:
        client.shutdown(timeout=5)
    spans = collector.spans()
    ours = [s for s in spans if s.attributes.get("session.id") == session.id]
    turns = {s.span_id: s for s in ours if s.attributes.get("sessionkit.span.type") == "turn"}
    calls = [s for s in ours if s.name.startswith("chat ")]
    assert len(turns) == 2 and len(calls) == 2
    assert {c.resource.get("service.name") for c in calls} == {"a2a-agent"}
    for call in calls:  # each in its turn's trace, with that turn's index
        (turn,) = [t for t in turns.values() if t.trace_id == call.trace_id]
        assert call.attributes["sessionkit.turn.index"] == turn.attributes["sessionkit.turn.index"]
    # a2a-sdk's own spans of the request, on both sides, are in the session too
    assert any(s.name.startswith("a2a.client.") for s in ours)
    assert any(s.name.startswith("a2a.server.") and s.resource.get("service.name") == "a2a-agent" for s in ours)
    assert sum(s.attributes.get("gen_ai.usage.input_tokens", 0) for s in ours) == sum(
        r.input_tokens for r in server.reported
    )


def test_an_a2a_context_is_one_session_a_turn_per_message(agent, collector, server):
    answers = asyncio.run(ask(agent, None))  # a caller that carries no session
    assert len(answers) == 2 and all(a.startswith(server.reply) for a in answers)
    assert collector.wait_for(lambda spans: len([s for s in spans if s.name.startswith("chat ")]) == 2)
    spans = [s for s in collector.spans() if s.resource.get("service.name") == "a2a-agent"]
    calls = [s for s in spans if s.name.startswith("chat ")]
    (session_id,) = {c.attributes.get("session.id") for c in calls}
    assert session_id is not None
    (context_id,) = {c.attributes.get("gen_ai.conversation.id") for c in calls}
    assert context_id  # the A2A context id the agent gave the conversation
    assert collector.wait_for(
        lambda spans: len([s for s in spans if s.attributes.get("sessionkit.span.type") == "turn"]) == 2
    )
    turns = sorted(
        (s for s in collector.spans() if s.attributes.get("sessionkit.span.type") == "turn"),
        key=lambda s: s.attributes["sessionkit.turn.index"],
    )
    assert [t.attributes["session.id"] for t in turns] == [session_id, session_id]
    assert [t.attributes.get("input.value") for t in turns] == list(QUESTIONS)
    assert [t.attributes.get("output.value") for t in turns] == answers
    assert [t.name for t in turns] == [f"turn 1: {QUESTIONS[0]}", f"turn 2: {QUESTIONS[1]}"]

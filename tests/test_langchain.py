"""LangChain and LangGraph runs in the session: the real langchain-openai and langgraph packages
against the fake OpenAI server on 127.0.0.1, tool calls included. No ``callbacks=[...]``: the
handler comes with every run."""

from __future__ import annotations

import asyncio
import json
import operator
import time
import warnings
from typing import Annotated, TypedDict

import pytest
from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from helpers import spans_of


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


class State(TypedDict):
    messages: Annotated[list[AnyMessage], operator.add]


def build_graph(server, model=None):
    if model is None:
        model = ChatOpenAI(model="gpt-4o-mini", base_url=server.openai_base_url, api_key="k", max_retries=0)
    with_tools = model.bind_tools([get_weather])

    def agent(state: State) -> dict:
        return {"messages": [with_tools.invoke(state["messages"])]}

    def tools(state: State) -> dict:
        call = state["messages"][-1].tool_calls[0]
        return {"messages": [ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]}

    def route(state: State) -> str:
        return "tools" if state["messages"][-1].tool_calls else END

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=InMemorySaver())


def named(client, name):
    return [s for s in spans_of(client) if s.name == name]


def test_a_graph_run_is_spans_of_the_graph_its_nodes_tools_and_model_calls(server, make_client):
    client = make_client(capture_content=True)
    graph = build_graph(server)
    with client.session("support") as session:
        result = graph.invoke(
            {"messages": [HumanMessage("Weather in Paris?")]}, config={"configurable": {"thread_id": "t-1"}}
        )
    assert result["messages"][-1].content
    (root,) = named(client, "LangGraph")
    assert root.attributes["gen_ai.conversation.id"] == "t-1"
    nodes = [s for s in spans_of(client) if s.attributes.get("sessionkit.langgraph.node")]
    assert [s.attributes["sessionkit.langgraph.node"] for s in sorted(nodes, key=lambda s: s.start_time)] == [
        "agent",
        "tools",
        "agent",
    ]
    (tool_span,) = named(client, "execute_tool get_weather")
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert tool_span.attributes["gen_ai.tool.call.result"] == "sunny in Paris"
    models = named(client, "chat gpt-4o-mini")
    wire = [s for s in models if s.attributes.get("http.response.status_code") == 200]
    chat = [s for s in models if s.attributes.get("sessionkit.langchain.run_type") == "llm"]
    assert len(wire) == 2 and len(chat) == 2
    assert {w.parent.span_id for w in wire} == {c.context.span_id for c in chat}  # the wire call inside its run
    assert session.summary().llm_calls == 2  # counted once
    assert all(s.attributes.get("session.id") == session.id for s in spans_of(client) if s.parent is not None)
    assert not any(s.name.startswith(("ChannelWrite", "Branch")) for s in spans_of(client))  # hidden runs
    assert not named(client, "route")  # the conditional edge's path function: routing, not work


def test_invocations_on_one_thread_outside_a_session_are_one_conversation_a_turn_each(server, make_client):
    client = make_client(conversation_idle_timeout=0.5)  # default settings otherwise: turn content on
    graph = build_graph(server)
    questions = ["Weather in Paris?", "And in Rome?", "Thanks!"]
    for question in questions:
        graph.invoke({"messages": [HumanMessage(question)]}, config={"configurable": {"thread_id": "t-9"}})
    turns = [s for s in spans_of(client) if s.attributes.get("sessionkit.span.type") == "turn"]
    assert [t.attributes["input.value"] for t in turns] == questions  # the newest message, not the state
    answers = [t.attributes["output.value"] for t in turns]
    assert all(a.strip() and not a.startswith(("[", "{")) for a in answers)  # the answer's text
    (session_id,) = {s.attributes.get("session.id") for s in spans_of(client) if "session.id" in s.attributes}
    graphs = [
        s for s in spans_of(client) if s.attributes.get("gen_ai.conversation.id") == "t-9" and s.name == "LangGraph"
    ]
    assert [g.attributes["output.value"] for g in graphs] == answers
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not named_type(client, "session"):
        time.sleep(0.05)
    (record,) = named_type(client, "session")  # ended once idle
    assert record.attributes["sessionkit.session.id"] == session_id
    assert record.attributes["sessionkit.session.thread_id"] == "t-9"
    assert record.attributes["sessionkit.session.turns"] == 3


def named_type(client, kind):
    return [s for s in spans_of(client) if s.attributes.get("sessionkit.span.type") == kind]


def test_async_runs_and_streams_are_followed(server, make_client):
    client = make_client()
    model = ChatOpenAI(model="gpt-4o-mini", base_url=server.openai_base_url, api_key="k", max_retries=0)

    async def main():
        with client.session("async"):
            answer = await model.ainvoke("hello")
            chunks = [c async for c in model.astream("hello again")]
        return answer.content, "".join(c.content for c in chunks)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plain, streamed = asyncio.run(main())
    assert plain and streamed
    chat = [s for s in spans_of(client) if s.attributes.get("sessionkit.langchain.run_type") == "llm"]
    assert len(chat) == 2
    wire = [s for s in spans_of(client) if s.attributes.get("http.response.status_code") == 200]
    assert {w.parent.span_id for w in wire} == {c.context.span_id for c in chat}


def test_a_failing_tool_is_an_error_span(server, make_client):
    client = make_client()

    @tool
    def broken(city: str) -> str:
        """Always fails."""
        raise RuntimeError("the weather service is down")

    with client.session("errors"), pytest.raises(RuntimeError):
        broken.invoke({"city": "Paris"})
    (span,) = named(client, "execute_tool broken")
    assert span.attributes["error.type"] == "RuntimeError"
    assert span.status.status_code.name == "ERROR"


def test_with_the_integration_off_no_run_spans(server, make_client):
    client = make_client(integrations=["openai_agents"])
    with client.session("off"):
        build_graph(server).invoke(
            {"messages": [HumanMessage("Weather?")]}, config={"configurable": {"thread_id": "x"}}
        )
    assert not any(s.attributes.get("sessionkit.langchain.run_type") for s in spans_of(client))
    assert named(client, "chat gpt-4o-mini")  # the model calls, on the wire


def test_a_retriever_is_a_retriever_span(make_client):
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    class Orders(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager):
            return [Document(page_content=f"order for {query}"), Document(page_content="another")]

    client = make_client(capture_content=True)
    with client.session("rag"):
        assert len(Orders().invoke("o-1")) == 2
    (span,) = [s for s in spans_of(client) if s.attributes.get("sessionkit.langchain.run_type") == "retriever"]
    assert span.name == "retrieve Orders"
    assert span.attributes["openinference.span.kind"] == "RETRIEVER"
    assert span.attributes["sessionkit.retriever.documents"] == 2
    assert span.attributes["input.value"] == "o-1"


class Count(TypedDict):
    n: int


def test_a_nodes_own_chains_stay_while_its_routing_step_goes(make_client):
    from langchain_core.runnables import RunnableLambda

    def work(state: Count) -> dict:
        chain = RunnableLambda(lambda x: x + 1, name="first") | RunnableLambda(lambda x: x * 2, name="second")
        return {"n": chain.invoke(state["n"])}

    def decide(state: Count) -> str:
        return END

    graph = StateGraph(Count)
    graph.add_node("work", work)
    graph.add_edge(START, "work")
    graph.add_conditional_edges("work", decide, [END])
    client = make_client()
    with client.session("s"):
        assert graph.compile().invoke({"n": 1}) == {"n": 4}
    names = {s.name for s in spans_of(client)}
    assert {"work", "first", "second"} <= names  # the node and the steps of the chain it ran
    assert "decide" not in names  # the conditional edge's path function

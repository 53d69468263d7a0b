from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import threading
import warnings

import pytest
import sessionkit
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from sessionkit import EndState

from helpers import root_of, spans_of


@pytest.fixture
def default_client():
    return sessionkit.init(exporter="memory", service_name="deco")


@pytest.fixture
def no_context_errors(caplog):
    """Fails the test on any 'different Context' error or warning from OpenTelemetry."""
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("opentelemetry")]
    assert not bad, [r.getMessage() for r in bad]


def named(client, name):
    found = [s for s in spans_of(client) if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans_of(client)])
    return found[0]


# -- decorating at import time, before init ------------------------------------------------------
@sessionkit.agent
def planner(question: str) -> str:
    """Plan the answer."""
    return lookup(question.upper())


@sessionkit.tool(name="search_orders")
def lookup(order_id: str) -> dict:
    return {"order": order_id, "status": "shipped"}


@sessionkit.llm(model="local-llama")
def local_model(prompt: str) -> str:
    sessionkit.record_llm_usage(input_tokens=11, output_tokens=4)
    return "ok"


def test_decorated_before_init_runs_untraced_then_traced_after_init():
    assert sessionkit.get_client() is None
    assert planner("o-1") == {"order": "O-1", "status": "shipped"}  # no client: just runs
    client = sessionkit.init(exporter="memory")
    with client.session("s") as s:
        planner("o-2")
    agent_span = named(client, "invoke_agent planner")
    tool_span = named(client, "execute_tool search_orders")
    assert tool_span.parent.span_id == agent_span.context.span_id
    assert agent_span.parent is None  # a top-level call in a session with no open turn: a turn of its own
    assert agent_span.attributes["sessionkit.turn.index"] == 1 and tool_span.attributes["sessionkit.turn.index"] == 1
    assert root_of(client, s).context.trace_id != agent_span.context.trace_id  # the record is a trace apart
    assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent_span.attributes["gen_ai.agent.name"] == "planner"
    assert agent_span.attributes["openinference.span.kind"] == "AGENT"
    assert tool_span.attributes["gen_ai.tool.name"] == "search_orders"
    assert tool_span.attributes["openinference.span.kind"] == "TOOL"


def test_metadata_of_the_function_is_preserved():
    assert planner.__name__ == "planner" and planner.__doc__ == "Plan the answer."
    assert inspect.signature(lookup) == inspect.signature(lookup.__wrapped__)
    assert list(inspect.signature(lookup).parameters) == ["order_id"]

    @sessionkit.tool
    async def coro(x: int) -> int:
        return x

    @sessionkit.task
    async def agen():
        yield 1

    @sessionkit.task
    def gen():
        yield 1

    assert inspect.iscoroutinefunction(coro)
    assert inspect.isasyncgenfunction(agen)
    assert inspect.isgeneratorfunction(gen)
    assert not inspect.iscoroutinefunction(planner)


@pytest.mark.parametrize("trace_per", ["turn", "session"])
def test_agent_tool_llm_nest_as_one_tree_in_the_turn_or_under_the_session_root(trace_per):
    default_client = sessionkit.init(exporter="memory", trace_per=trace_per)

    @sessionkit.agent
    def support_agent(q):
        lookup(q)
        return local_model(q)

    with default_client.session("tree") as s:
        support_agent("o-3")
        support_agent("o-4")
    spans = [x for x in spans_of(default_client) if x.attributes.get("sessionkit.turn.index") == 1]
    by_name = {x.name: x for x in spans}
    root = root_of(default_client, s)
    agent_span = by_name["invoke_agent support_agent"]
    if trace_per == "session":  # one tree: the turn's top call under the session's root
        assert agent_span.parent.span_id == root.context.span_id
    else:  # the turn is a trace of its own, its top call the root
        assert agent_span.parent is None and agent_span.context.trace_id != root.context.trace_id
    for child in ("execute_tool search_orders", "chat local-llama"):
        assert by_name[child].parent.span_id == agent_span.context.span_id
        assert by_name[child].context.trace_id == agent_span.context.trace_id
    assert [t.index for t in s.turns] == [1, 2] and s.summary().turn_count == 2
    llm_span = by_name["chat local-llama"]
    assert llm_span.kind is SpanKind.CLIENT
    assert llm_span.attributes["gen_ai.request.model"] == "local-llama"
    assert llm_span.attributes["openinference.span.kind"] == "LLM"
    assert llm_span.attributes["gen_ai.usage.input_tokens"] == 11
    assert llm_span.attributes["llm.token_count.total"] == 15
    summary = s.summary()
    assert (summary.llm_calls, summary.input_tokens, summary.output_tokens, summary.span_count) == (2, 22, 8, 6)


def test_llm_usage_is_read_from_an_openai_shaped_result(default_client):
    @default_client.llm(model="m")
    def call():
        return {"usage": {"prompt_tokens": 7, "completion_tokens": 2}}

    with default_client.session("s"):
        call()
    span = named(default_client, "chat m")
    assert (span.attributes["gen_ai.usage.input_tokens"], span.attributes["gen_ai.usage.output_tokens"]) == (7, 2)


def test_record_llm_usage_rejects_negative_counts():
    with pytest.raises(ValueError, match="non-negative int"):
        sessionkit.record_llm_usage(input_tokens=-1)


def test_task_and_trace_are_plain_internal_spans(default_client):
    @sessionkit.task
    def step():
        return 1

    @sessionkit.trace(name="anything", custom="yes")
    def plain():
        return 2

    with default_client.session("s"):
        step()
        plain()
    task_span = named(default_client, "step")
    trace_span = named(default_client, "anything")
    assert task_span.kind is SpanKind.INTERNAL and trace_span.kind is SpanKind.INTERNAL
    assert task_span.attributes["openinference.span.kind"] == "CHAIN"
    assert trace_span.attributes["custom"] == "yes"
    assert "gen_ai.operation.name" not in trace_span.attributes


def test_exceptions_are_recorded_and_reraised_unchanged(default_client):
    error = ValueError("bad order")

    @sessionkit.tool
    def failing():
        raise error

    with default_client.session("s") as s:
        with pytest.raises(ValueError) as info:
            failing()
    assert info.value is error
    span = named(default_client, "execute_tool failing")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]
    assert s.summary().errors == 1


def test_async_function(default_client):
    @sessionkit.tool(name="fetch")
    async def fetch(x):
        await asyncio.sleep(0.01)
        assert trace.get_current_span().name == "execute_tool fetch"
        return x * 2

    async def main():
        async with default_client.session("s"):
            return await fetch(21)

    assert asyncio.run(main()) == 42
    span = named(default_client, "execute_tool fetch")
    assert (span.end_time - span.start_time) >= 10_000_000  # covers the await


def test_generator_span_covers_the_whole_iteration_and_not_the_consumer(default_client, no_context_errors):
    seen_in_consumer = []

    @sessionkit.task(name="stream")
    def stream(n):
        for i in range(n):
            assert trace.get_current_span().name == "stream"
            yield i
        return "done"

    with default_client.session("s"):
        for _item in stream(3):
            seen_in_consumer.append(getattr(trace.get_current_span(), "name", None))
    span = named(default_client, "stream")
    assert "stream" not in seen_in_consumer  # the consumer is not inside the generator's span
    assert span.attributes["sessionkit.generator.completed"] is True


def test_breaking_out_of_a_generator_early_ends_the_span_once(default_client, no_context_errors):
    closed = []

    @sessionkit.task(name="endless")
    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(trace.get_current_span().name)

    with default_client.session("s"):
        for item in endless():
            if item == 2:
                break
        gc.collect()
        abandoned = endless()
        next(abandoned)
        del abandoned
        gc.collect()
    spans = [x for x in spans_of(default_client) if x.name == "endless"]
    assert len(spans) == 2
    assert all(x.attributes["sessionkit.generator.completed"] is False for x in spans)
    assert closed == ["endless", "endless"]  # the generator's own finally ran inside its span


def test_generator_send_and_throw_pass_through(default_client):
    @sessionkit.task(name="echo")
    def echo():
        received = None
        while True:
            try:
                received = yield received
            except KeyError:
                received = "recovered"

    with default_client.session("s"):
        gen = echo()
        next(gen)
        assert gen.send("a") == "a"
        assert gen.throw(KeyError("k")) == "recovered"
        gen.close()
    assert len([x for x in spans_of(default_client) if x.name == "echo"]) == 1


def test_async_generator_early_exit_and_close_from_another_task(default_client, no_context_errors):
    @sessionkit.task(name="tokens")
    async def tokens():
        for i in range(100):
            await asyncio.sleep(0)
            yield i

    async def main():
        async with default_client.session("s"):
            async for item in tokens():
                if item == 1:
                    break
            agen = tokens()
            await agen.__anext__()
            await asyncio.create_task(agen.aclose())  # closed from another task
            full = [i async for i in tokens()]
            return full

    assert len(asyncio.run(main())) == 100
    spans = [x for x in spans_of(default_client) if x.name == "tokens"]
    assert sorted(x.attributes["sessionkit.generator.completed"] for x in spans) == [False, False, True]


def test_methods_classmethods_staticmethods_and_classes(default_client):
    class Bot:
        def __init__(self, name):
            self.name = name

        @sessionkit.tool
        def greet(self, who):
            return f"{self.name} greets {who}"

        @sessionkit.task
        @classmethod
        def build(cls):
            return cls("built")

        @sessionkit.task
        @staticmethod
        def util(x):
            return x + 1

    @sessionkit.agent
    class Planner:
        def plan(self, goal):
            return self._private(goal)

        def _private(self, goal):
            return [goal]

        async def aplan(self, goal):
            return goal

    with default_client.session("s"):
        assert Bot("b").greet("you") == "b greets you"
        assert Bot.build().name == "built"
        assert Bot.util(1) == 2 and Bot("x").util(2) == 3
        assert Planner().plan("g") == ["g"]
        assert asyncio.run(Planner().aplan("h")) == "h"
    names = [x.name for x in spans_of(default_client)]
    assert any(n.endswith("Bot.greet") for n in names)
    assert any(n.endswith("Bot.build") for n in names)
    assert len([n for n in names if n.endswith("Bot.util")]) == 2
    assert "invoke_agent Planner.plan" in names and "invoke_agent Planner.aplan" in names
    assert not any("_private" in n for n in names)
    assert inspect.iscoroutinefunction(Planner.aplan)


def test_content_is_not_captured_by_default(default_client):
    @sessionkit.tool(name="secretive")
    def secretive(card_number):
        return "ok"

    with default_client.session("s"):
        secretive("4111-1111")
    span = named(default_client, "execute_tool secretive")
    assert "input.value" not in span.attributes and "output.value" not in span.attributes
    assert not any("4111" in str(v) for v in span.attributes.values())


def test_content_capture_per_client_safe_serialization_and_truncation():
    client = sessionkit.init(exporter="memory", capture_content=True, max_content_length=64)

    class Opaque:
        def __repr__(self):
            return "<Opaque>"

    cyclic: dict = {}
    cyclic["self"] = cyclic

    @sessionkit.tool(name="t")
    def t(a, b=None):
        return Opaque()

    @sessionkit.tool(name="big")
    def big(text):
        return text

    @sessionkit.tool(name="opt-out", capture_content=False)
    def opt_out(x):
        return x

    with client.session("s"):
        t(Opaque(), b=cyclic)
        big("x" * 1000)
        opt_out("hidden")
    span = named(client, "execute_tool t")
    assert "<Opaque>" in span.attributes["input.value"]
    assert span.attributes["output.value"] == '"<Opaque>"'
    assert span.attributes["gen_ai.tool.call.arguments"] == span.attributes["input.value"]
    big_span = named(client, "execute_tool big")
    assert len(big_span.attributes["input.value"]) <= 64 and "chars]" in big_span.attributes["input.value"]
    assert "input.value" not in named(client, "execute_tool opt-out").attributes


def test_no_context_leak_after_calls_and_errors(default_client):
    @sessionkit.tool(name="x")
    def x(fail):
        if fail:
            raise RuntimeError("no")

    with default_client.session("s") as s:
        before = trace.get_current_span()
        x(False)
        with pytest.raises(RuntimeError):
            x(True)
        assert trace.get_current_span() is before
        assert default_client.current_session() is s
    assert not trace.get_current_span().get_span_context().is_valid
    assert default_client.current_session() is None


def test_outside_any_session_spans_follow_the_auto_session_rule():
    client = sessionkit.init(exporter="memory", auto_start_session=True)
    lookup("loose")
    span = named(client, "execute_tool search_orders")
    auto = client.current_session()
    assert span.attributes["session.id"] == auto.id
    assert span.parent is None and span.attributes["sessionkit.turn.index"] == 1  # a turn of the auto session


def test_outside_any_session_without_auto_session_the_call_is_unstamped_and_counted(default_client):
    lookup("loose")
    span = named(default_client, "execute_tool search_orders")
    assert "session.id" not in span.attributes
    assert default_client.stats().spans_without_session == 1


@pytest.mark.parametrize("settings", [{"enabled": False}, {"exporter": "none"}])
def test_disabled_decorators_just_call_the_function(settings):
    client = sessionkit.init(**settings)
    assert planner("o-9") == {"order": "O-9", "status": "shipped"}
    assert client.stats().spans_started == 0


def test_session_decorator_gives_each_call_its_own_session(default_client):
    @default_client.session("handle_request", tags=["api"])
    def handle(user_id, message):
        lookup(message)
        return default_client.current_session()

    @default_client.session("handle_async")
    async def ahandle():
        return default_client.current_session()

    first, second = handle("u1", "a"), handle("u2", "b")
    third = asyncio.run(ahandle())
    assert len({first.id, second.id, third.id}) == 3
    assert first.end_state is EndState.SUCCESS and first.tags == ["api"]
    tool_spans = [x for x in spans_of(default_client) if x.name == "execute_tool search_orders"]
    assert {x.attributes["session.id"] for x in tool_spans} == {first.id, second.id}

    @default_client.session("crashy")
    def crashy():
        raise OSError("disk")

    with pytest.raises(OSError):
        crashy()
    crashed = [x for x in spans_of(default_client) if x.name == "crashy"][0]
    assert crashed.attributes["sessionkit.session.end_state"] == "fail"


def test_many_threads_and_tasks_calling_one_decorated_function(default_client):
    # Each call carries its caller's label in its captured input, which the session stamp
    # knows nothing of: a call stamped into another worker's session shows a label of another.
    @sessionkit.tool(name="shared", capture_content=True)
    def shared(label):
        return label

    @sessionkit.tool(name="ashared", capture_content=True)
    async def ashared(label):
        await asyncio.sleep(0)
        return label

    ids: dict[str, str] = {}

    def thread_body(label):
        with default_client.session(label) as s:
            ids[label] = s.id
            for _ in range(50):
                shared(label)

    async def task_body(label):
        async with default_client.session(label) as s:
            ids[label] = s.id
            for _ in range(50):
                await ashared(label)

    threads = [threading.Thread(target=thread_body, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()

    async def all_tasks():
        await asyncio.gather(*(task_body(f"a{i}") for i in range(8)))

    asyncio.run(all_tasks())
    for t in threads:
        t.join()
    calls = [x for x in spans_of(default_client) if x.name in ("execute_tool shared", "execute_tool ashared")]
    assert len(calls) == 16 * 50
    for span in calls:
        label = json.loads(span.attributes["input.value"])["label"]
        assert span.attributes["session.id"] == ids[label]


def test_decorating_something_that_is_not_callable_is_a_clear_error():
    with pytest.raises(TypeError, match="decorates functions"):
        sessionkit.tool(name="x")(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="capture_content"):
        sessionkit.tool(capture_content="yes")  # type: ignore[arg-type]

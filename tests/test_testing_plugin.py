"""The pytest plugin users test their own agents with (``sessionkit_capture``), run through
pytest's ``pytester`` in a pytest of its own: found by its entry point, as in a user's project."""

from __future__ import annotations

import pytest
import sessionkit
from sessionkit.testing import Capture

pytest_plugins = ["pytester"]

AGENT = '''
import httpx
import sessionkit
from sessionkit.fake_llm import FakeLLMServer


@sessionkit.tool
def search_orders(order_id):
    return {"order": order_id, "status": "shipped"}


def my_agent(server, message, user_id="u-1"):
    """A user's agent: the default client, a decorated tool, an LLM call on the wire."""
    client = sessionkit.init()
    with client.session("support", user_id=user_id) as session:
        with session.turn(message):
            search_orders("o-1")
            httpx.post(
                f"{server.openai_base_url}/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": message}]},
            )
    return session
'''


@pytest.fixture
def user_project(pytester):
    pytester.makepyfile(agent=AGENT)
    pytester.makeconftest(
        """
import pytest
from sessionkit.fake_llm import FakeLLMServer

@pytest.fixture
def server():
    s = FakeLLMServer().start()
    yield s
    s.stop()
"""
    )
    return pytester


def test_the_fixture_captures_a_users_agent_and_its_assertions_pass(user_project):
    user_project.makepyfile(
        test_agent="""
import sessionkit
from agent import my_agent

def test_one_turn(sessionkit_capture, server):
    session = my_agent(server, "Where is my order?")
    assert sessionkit.get_client() is sessionkit_capture.client
    assert sessionkit_capture.session_ids() == [session.id]
    sessionkit_capture.assert_session(session, state="success", turns=1, llm_calls=1, errors=0, user_id="u-1")
    (tool,) = sessionkit_capture.spans(name="execute_tool search_orders")
    assert tool.attributes["session.id"] == session.id
    (call,) = sessionkit_capture.llm_calls(session)
    assert call.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert [t.attributes["sessionkit.turn.index"] for t in sessionkit_capture.turns(session)] == [1]

def test_each_test_starts_empty(sessionkit_capture):
    assert sessionkit_capture.spans() == []
    assert sessionkit_capture.session_ids() == []
"""
    )
    result = user_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_failed_assertion_names_the_figure_and_lists_the_spans(user_project):
    user_project.makepyfile(
        test_agent="""
from agent import my_agent

def test_wrong_turns(sessionkit_capture, server):
    session = my_agent(server, "hi")
    sessionkit_capture.assert_session(session, turns=3, llm_calls=2)
"""
    )
    result = user_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*turns: 1, expected 3; LLM calls: 1, expected 2*", "*execute_tool search_orders*"])


def test_the_default_client_from_before_comes_back(user_project):
    user_project.makepyfile(
        test_agent="""
import sessionkit

def test_a(sessionkit_capture):
    assert sessionkit.get_client() is sessionkit_capture.client

def test_b():
    assert sessionkit.get_client() is None  # the capture's client is gone with its test
"""
    )
    user_project.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_capture_as_a_context_manager_and_its_misuse():
    before = sessionkit.get_client()
    with Capture(capture_content=True) as capture:
        assert sessionkit.get_client() is capture.client and capture.client.config.capture_content
        with capture.client.session("s") as session, session.turn("x"):
            pass
        assert capture.record(session) is not None
        with pytest.raises(AssertionError, match="state is 'success', expected 'fail'"):
            capture.assert_session(session, state="fail")
        capture.clear()
        assert capture.spans() == []
    assert sessionkit.get_client() is before
    with pytest.raises(TypeError, match="memory"):
        Capture(exporter="otlp")
    with pytest.raises(TypeError, match="session id"):
        capture.spans(session=42)


def test_capture_counts_implicit_turns_with_one_trace_per_session_too():
    # With trace_per="session" an implicit turn's root is a child of the session's root.
    from sessionkit.testing import Capture

    with Capture(trace_per="session") as capture:
        with capture.client.session("one-trace") as session:
            for name in ("first", "second"):
                with capture.client.tracer.start_as_current_span(name):
                    pass
        capture.assert_session(session, state="success", turns=2)
        assert [s.name for s in capture.turns(session)] == ["first", "second"]

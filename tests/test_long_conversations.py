"""Long conversations: captured content stays valid JSON of the GenAI schema within its limit,
keeps the newest messages, says what it left out, and each message is read once per
conversation (a body's known prefix is skipped, not parsed)."""

from __future__ import annotations

import json

import httpx
import pytest
import sessionkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessionkit._payloads.body import captured, fit_json, fit_messages, split_body
from sessionkit.fake_llm import FakeLLMServer

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def server():
    with FakeLLMServer() as s:
        yield s


def converse(client, server, turns: int, words: int = 40) -> list:
    """A conversation as an agent sends it: the whole history again on every call."""
    history = [{"role": "system", "content": "You are a support agent."}]
    with client.session("long", thread_id="conv-long"):
        for turn in range(turns):
            history.append({"role": "user", "content": f"turn {turn}: " + "where is my order " * words})
            reply = httpx.post(
                server.openai_base_url + "/chat/completions", json={"model": "m", "messages": history}
            ).json()
            history.append({"role": "assistant", "content": reply["choices"][0]["message"]["content"]})
    return [s for s in client.exporter.get_finished_spans() if s.name == "chat m"]


def test_captured_messages_are_valid_json_keep_the_newest_and_count_the_rest(server):
    client = sessionkit.Client(exporter="memory", capture_content=True, llm_base_urls=[server.url])
    try:
        spans = converse(client, server, turns=60)
    finally:
        client.shutdown(timeout=1)
    assert len(spans) == 60
    for turn, span in enumerate(spans):
        text = span.attributes["gen_ai.input.messages"]
        assert len(text) <= 4096
        messages = json.loads(text)  # valid JSON at every turn, the long ones included
        assert all(set(m) == {"role", "parts"} and m["parts"][0]["type"] == "text" for m in messages)
        assert messages[-1]["parts"][0]["content"].startswith(f"turn {turn}: ")  # the newest, whole
        total = 2 * turn + 2  # system + the turns so far
        assert span.attributes.get("sessionkit.llm.input_messages.omitted", 0) == total - len(messages)
        assert span.attributes["input.value"] == text and span.attributes["input.mime_type"] == "application/json"
    assert spans[-1].attributes["sessionkit.llm.input_messages.omitted"] > 100


def test_new_only_capture_exports_each_message_once_per_conversation(server):
    client = sessionkit.Client(
        exporter="memory", capture_content=True, message_capture="new", llm_base_urls=[server.url]
    )
    try:
        spans = converse(client, server, turns=30, words=3)
    finally:
        client.shutdown(timeout=1)
    seen = []
    for turn, span in enumerate(spans):
        messages = json.loads(span.attributes["gen_ai.input.messages"])
        expected_new = 2 if turn == 0 else 2  # the first call: system + user; then: reply + user
        assert len(messages) == expected_new
        assert span.attributes.get("sessionkit.llm.input_messages.omitted", 0) == len(seen)
        seen += messages
    assert [m["role"] for m in seen[:3]] == ["system", "user", "assistant"] and len(seen) == 60


def test_without_capture_a_long_history_still_gives_the_model_and_parameters(server):
    client = sessionkit.Client(exporter="memory", llm_base_urls=[server.url])
    try:
        history = [{"role": "user", "content": "x" * 100}] * 400
        for _ in range(3):
            httpx.post(
                server.openai_base_url + "/chat/completions",
                json={"messages": history, "model": "big-model", "temperature": 0.3, "stream": False},
            )
            history = [*history, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]
        spans = [s for s in client.exporter.get_finished_spans() if s.name == "chat big-model"]
        assert len(spans) == 3
        assert all(s.attributes["gen_ai.request.temperature"] == 0.3 for s in spans)
        assert all("gen_ai.input.messages" not in s.attributes for s in spans)
    finally:
        client.shutdown(timeout=1)


def test_tool_arguments_and_results_stay_valid_json_when_cut():
    client = sessionkit.Client(exporter="memory", capture_content=True, max_content_length=200)
    try:

        @client.tool(name="search")
        def search(query: str, filters: dict) -> dict:
            return {"hits": [{"title": f"hit {i}", "body": "b" * 80} for i in range(20)]}

        with client.session("s"):
            search("q" * 500, {"tag": "t" * 300})
        (span,) = [s for s in client.exporter.get_finished_spans() if s.name == "execute_tool search"]
        arguments = json.loads(span.attributes["gen_ai.tool.call.arguments"])
        result = json.loads(span.attributes["gen_ai.tool.call.result"])
        assert set(arguments) == {"query", "filters"} and arguments["query"].startswith("qqq")
        assert "hits" in result and len(span.attributes["gen_ai.tool.call.result"]) <= 200
    finally:
        client.shutdown(timeout=1)


# -- the pure parts ----------------------------------------------------------------------------------------
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant"]), "content": st.text(max_size=40)},
        optional={
            "name": st.text(max_size=5),
            "tool_calls": st.lists(st.dictionaries(st.text(max_size=4), st.integers())),
        },
    ),
    max_size=12,
)
extras = st.dictionaries(
    st.sampled_from(["model", "stream", "temperature", "stop", "tools", "metadata"]),
    st.one_of(st.text(max_size=10), st.booleans(), st.floats(allow_nan=False), st.lists(st.text(max_size=5))),
)


@SETTINGS
@given(history=messages, added=messages, before=extras, after=extras, compact=st.booleans())
def test_split_body_reads_the_fields_and_only_the_new_messages(history, added, before, after, compact):
    def body(msgs):
        data = {**before, "messages": msgs, **{k: v for k, v in after.items() if k not in before}}
        separators = (",", ":") if compact else (", ", ": ")
        return json.dumps(data, separators=separators).encode(), {k: v for k, v in data.items() if k != "messages"}

    first_raw, fields = body(history)
    first = split_body(first_raw, "messages")
    assert first is not None and first.fields == fields and first.new == history and first.first == 0
    second_raw, _ = body(history + added)
    second = split_body(second_raw, "messages", (first.prefix, first.count))
    assert second is not None and second.fields == fields
    if history:
        assert second.first == len(history) and second.new == added  # the known part was skipped
    else:
        assert second.new == history + added
    assert second.count == len(history) + len(added)


@SETTINGS
@given(raw=st.binary(max_size=200), key=st.sampled_from(["messages", "input"]))
def test_split_body_never_raises_on_any_bytes(raw, key):
    split = split_body(raw, key)
    assert split is None or isinstance(split.new, list)


anything = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=300), st.binary(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=6),
    ),
    max_leaves=30,
)


@SETTINGS
@given(value=anything, limit=st.integers(min_value=16, max_value=400))
def test_fitted_json_is_always_valid_and_within_its_limit(value, limit):
    text = fit_json(value, limit)
    assert len(text) <= limit
    json.loads(text)
    redacted = captured(value, limit, lambda t: t.replace("a", "[REDACTED]"))
    assert len(redacted) <= limit
    if not isinstance(value, str):
        json.loads(redacted)


@SETTINGS
@given(
    texts=st.lists(
        st.text(max_size=60).map(lambda t: json.dumps({"role": "user", "parts": [t]})), min_size=1, max_size=30
    ),
    limit=st.integers(min_value=40, max_value=600),
)
def test_fitted_messages_keep_the_newest_whole_and_count_the_rest(texts, limit):
    text, omitted = fit_messages(texts, limit)
    kept = json.loads(text)
    assert len(text) <= limit and omitted == len(texts) - len(kept) and len(kept) >= 1
    if json.dumps(kept[-1]) == texts[-1] or len(texts[-1]) + 2 <= limit:
        assert kept == [json.loads(t) for t in texts[len(texts) - len(kept) :]]

"""Property-based: any input, of any type and size, never raises from sessionkit."""

from __future__ import annotations

import json
import math

import pytest
import sessionkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessionkit._payloads import anthropic as ap
from sessionkit._payloads import bedrock, cohere, gemini, ollama
from sessionkit._payloads import openai as op
from sessionkit._payloads.llm import LLMResult
from sessionkit._payloads.sse import NDJSONParser, SSEParser
from sessionkit._values import to_attribute, to_attributes, to_id, to_tags, to_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=50),
    st.binary(max_size=50),
    st.just(float("inf")),
)
anything = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.tuples(st.integers())), children, max_size=5),
        st.sets(st.integers(), max_size=5),
    ),
    max_leaves=20,
)


def cyclic() -> dict:
    d: dict = {"a": [1, 2]}
    d["self"] = d
    d["a"].append(d)
    return d


@SETTINGS
@given(value=anything)
def test_any_value_becomes_a_valid_attribute_or_nothing(value):
    converted = to_attribute(value)
    assert converted is None or isinstance(converted, (str, bool, int, float, list))
    if isinstance(converted, str):
        assert len(converted) <= 8192
    if isinstance(converted, int) and not isinstance(converted, bool):
        assert -(2**63) <= converted < 2**63
    assert isinstance(to_text(value, 100), str) and len(to_text(value, 100)) <= 100


def test_cyclic_and_hostile_values():
    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr for you")

    for value in (cyclic(), Hostile(), [Hostile()], {Hostile(): 1}, "x" * 10**6, float("nan")):
        assert isinstance(to_text(value), str)
        converted = to_attribute(value)
        assert isinstance(converted, str) and len(converted) <= 8192  # JSON, else a safe repr; capped
    assert to_attributes({1: float("nan"), None: "x", "ok": None}) == {"1": "nan", "null": "x"}
    assert len(to_text("x" * 10**6, 1000)) <= 1000


@SETTINGS
@given(
    name=anything,
    thread=anything,
    tags=anything,
    metadata=anything,
    attrs=st.dictionaries(st.text(min_size=1, max_size=8), anything, max_size=4),
    event=anything,
)
def test_sessions_take_any_name_tags_metadata_and_attributes(client, name, thread, tags, metadata, attrs, event):
    try:
        expected = None if thread is None else to_id(thread, "thread_id")
    except (TypeError, ValueError) as exc:
        # An id that cannot keep its identity is refused at the call, naming the setting.
        with pytest.raises(type(exc), match="thread_id"):
            client.start_session(name, thread_id=thread)
        expected = None
        thread = None
    s = client.start_session(name, thread_id=thread, tags=tags, metadata=metadata)
    s.add_tags(tags)
    if isinstance(metadata, dict):
        s.set_metadata(metadata)
    with s.span(to_text(name, 50) or "span", **attrs) as span:
        s.record_event(to_text(event, 20) or "event", **attrs)
    s.end("fail", reason=event)
    assert s.end_state is sessionkit.EndState.FAIL and s.thread_id == expected
    assert all(isinstance(t, str) for t in s.tags)
    attributes = span.attributes
    assert attributes["session.id"] == s.id and attributes["sessionkit.session.name"] == s.name
    assert attributes.get("gen_ai.conversation.id") == expected  # the id as given, or none at all
    root = next(
        x
        for x in client.exporter.get_finished_spans()
        if x.attributes.get("sessionkit.span.type") == "session" and x.attributes["sessionkit.session.id"] == s.id
    )
    json.loads(root.attributes.get("metadata", "{}"))  # the root's metadata is always valid JSON


@SETTINGS
@given(
    a=st.one_of(st.text(min_size=1, max_size=300), st.binary(min_size=1, max_size=300), st.integers()),
    b=st.one_of(st.text(min_size=1, max_size=300), st.binary(min_size=1, max_size=300), st.integers()),
)
def test_two_different_ids_never_become_the_same_text(a, b):
    def as_id(value):
        try:
            return to_id(value, "thread_id")
        except (TypeError, ValueError):
            return None

    x, y = as_id(a), as_id(b)
    if x is not None and y is not None and x == y:
        norm = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
        assert norm(a) == norm(b)


@SETTINGS
@given(args=st.lists(anything, max_size=3), result=anything)
def test_decorators_capture_any_input_and_output(args, result):
    c = sessionkit.Client(exporter="memory", capture_content=True, max_content_length=200)
    try:

        @c.tool(name="t")
        def tool(*a):
            return result

        with c.session("s"):
            assert tool(*args) is result
            tool(cyclic())
        span = next(x for x in c.exporter.get_finished_spans() if x.name == "execute_tool t")
        assert len(span.attributes["input.value"]) <= 200
    finally:
        c.shutdown(timeout=1)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
keys = st.sampled_from(
    [
        "id",
        "model",
        "usage",
        "choices",
        "delta",
        "message",
        "content",
        "type",
        "output",
        "error",
        "prompt_tokens",
        "input_tokens",
        "output_tokens",
        "stop_reason",
        "finish_reason",
        "text",
        "tool_calls",
        "function",
        "arguments",
        "name",
        "tool_call_id",
        "call_id",
        "role",
        "input",
        "tool_use_id",
        "index",
        "partial_json",
        "response",
        "messages",
        # the native APIs'
        "contents",
        "parts",
        "candidates",
        "usageMetadata",
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "functionCall",
        "functionResponse",
        "args",
        "finishReason",
        "done",
        "prompt_eval_count",
        "eval_count",
        "tokens",
        "billed_units",
        "toolUse",
        "toolResult",
        "toolUseId",
        "contentBlockDelta",
        "contentBlockStart",
        "metadata",
        "inputTokens",
        "outputTokens",
        "chunk",
        "body",
        "anthropic_version",
    ]
)
shaped = st.recursive(
    json_values,
    lambda children: st.dictionaries(keys, children, max_size=6) | st.lists(children, max_size=3),
    max_leaves=30,
)


@SETTINGS
@given(body=shaped, api=st.sampled_from(["openai.chat", "openai.completions", "openai.responses", "openai.embeddings"]))
def test_openai_payloads_of_any_shape_never_raise(body, api):
    op.parse_request(api, body)
    result = LLMResult()
    op.parse_response(api, body, result)
    json.dumps(result.output_messages())  # tool calls and all: always JSON
    for items in (body, [body], body.get("messages") if isinstance(body, dict) else None):
        json.dumps(op.convert_messages(api, items if isinstance(items, list) else []))
    for keep_text in (False, True):
        reader = op.StreamReader(api, keep_text=keep_text)
        reader.event("message", json.dumps(body))
        reader.event("message", json.dumps(body))  # a second chunk adds to what the first started
        json.dumps(reader.result.output_messages())
    for tokens in (result.input_tokens, result.output_tokens):
        assert tokens is None or (isinstance(tokens, int) and tokens >= 0)


@SETTINGS
@given(
    body=shaped, name=st.sampled_from(["message_start", "content_block_delta", "message_delta", "error", "x", "ping"])
)
def test_anthropic_payloads_of_any_shape_never_raise(body, name):
    request = ap.parse_request("anthropic.messages", body)
    assert request.model is None or isinstance(request.model, str)
    result = LLMResult()
    ap.parse_response("anthropic.messages", body, result)
    json.dumps(ap.convert_messages("anthropic.messages", [body] if isinstance(body, dict) else []))
    reader = ap.StreamReader("anthropic.messages")
    reader.event(name, json.dumps(body))
    reader.event(name, json.dumps(body))
    json.dumps(reader.result.output_messages())
    for tokens in (result.input_tokens, result.output_tokens, reader.result.input_tokens, reader.result.output_tokens):
        assert tokens is None or (isinstance(tokens, int) and tokens >= 0)


NATIVE = {
    gemini: ["gemini.generate", "gemini.stream", "gemini.embed"],
    ollama: ["ollama.chat", "ollama.generate", "ollama.embed"],
    cohere: ["cohere.chat", "cohere.embed"],
    bedrock: ["bedrock.converse", "bedrock.converse_stream", "bedrock.invoke", "bedrock.invoke_stream"],
}
NATIVE_APIS = [(module, api) for module, apis in NATIVE.items() for api in apis]


@SETTINGS
@given(body=shaped, which=st.sampled_from(NATIVE_APIS))
def test_native_payloads_of_any_shape_never_raise(body, which):
    module, api = which
    for messages in (False, True):
        request = module.parse_request(api, body, messages=messages)
        assert request.model is None or isinstance(request.model, str)
        json.dumps([request.input_messages, request.system_instructions, request.params])
    result = LLMResult()
    module.parse_response(api, body, result)
    json.dumps(result.output_messages())
    json.dumps(
        module.convert_messages(api, [body] if isinstance(body, dict) else body if isinstance(body, list) else [])
    )
    for keep_text in (False, True):
        reader = module.StreamReader(api, keep_text=keep_text)
        reader.event("message", json.dumps(body))
        reader.take(body)  # as botocore hands the events over: decoded
        reader.event("message", "{not json")
        json.dumps(reader.result.output_messages())
    for tokens in (result.input_tokens, result.output_tokens, reader.result.input_tokens, reader.result.output_tokens):
        assert tokens is None or (isinstance(tokens, int) and tokens >= 0)


@pytest.mark.parametrize("parser", [SSEParser, NDJSONParser])
@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_stream_parsers_on_any_bytes_cut_anywhere_read_the_same(parser, data, cuts):
    def read(pieces):
        reading = parser()
        events = [e for piece in pieces for e in reading.feed(piece)]
        return events + list(reading.flush())

    bounds = sorted({min(c, len(data)) for c in cuts})
    pieces, last = [], 0
    for bound in bounds:
        pieces.append(data[last:bound])
        last = bound
    pieces.append(data[last:])
    assert read(pieces) == read([data])


def test_nan_and_huge_numbers_are_kept_valid():
    assert to_attribute(float("nan")) == "nan" and to_attribute(2**80) == str(2**80)
    assert to_attribute([1.0, math.inf]) == "[1.0, Infinity]"
    assert to_tags("single") == ["single"] and to_tags(None) == []

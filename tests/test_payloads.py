"""Provider payload parsing: pure functions on recorded payloads. Nothing may raise."""

from __future__ import annotations

import json

import pytest
from sessionkit._payloads import anthropic as ap
from sessionkit._payloads import bedrock as bm
from sessionkit._payloads import gemini as gm
from sessionkit._payloads import ollama as om
from sessionkit._payloads import openai as op
from sessionkit._payloads.llm import LLMResult, match, normalize_base_urls
from sessionkit._payloads.sse import SSEParser

ANTHROPIC_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-x",'
    b'"usage":{"input_tokens":20,"cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"H\xc3\xa9llo"}}\n\n'
    b'event: some_future_event\ndata: {"type":"some_future_event","x":1}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)

OPENAI_STREAM = (
    b'data: {"id":"c1","model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","model":"gpt-x","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c1","model":"gpt-x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,'
    b'"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":1}}}\n\n'
    b"data: [DONE]\n\n"
)


def read(reader_cls, api, data: bytes, split: int | None = None) -> LLMResult:
    reader = reader_cls(api)
    parser = SSEParser()
    pieces = [data] if split is None else [data[:split], data[split:]]
    for piece in pieces:
        for name, payload in parser.feed(piece):
            reader.event(name, payload)
    for name, payload in parser.flush():
        reader.event(name, payload)
    return reader.result


def test_anthropic_stream_usage_counts_cached_input_and_final_output():
    result = read(ap.StreamReader, "anthropic.messages", ANTHROPIC_STREAM)
    assert (result.response_id, result.response_model) == ("msg_1", "claude-x")
    assert result.input_tokens == 27  # 20 fresh + 5 read from cache + 2 written to it
    assert (result.cache_read_tokens, result.cache_creation_tokens) == (5, 2)
    assert result.output_tokens == 15
    assert result.finish_reasons == ["end_turn"]
    assert "".join(result.output_text) == "Héllo"
    assert result.ended is True


def test_openai_stream_final_usage_chunk():
    result = read(op.StreamReader, "openai.chat", OPENAI_STREAM)
    assert (result.input_tokens, result.output_tokens, result.cache_read_tokens, result.reasoning_tokens) == (
        12,
        3,
        4,
        1,
    )
    assert result.finish_reasons == ["stop"] and "".join(result.output_text) == "Hi" and result.ended


@pytest.mark.parametrize(
    ("reader", "api", "data"),
    [
        (ap.StreamReader, "anthropic.messages", ANTHROPIC_STREAM),
        (op.StreamReader, "openai.chat", OPENAI_STREAM),
    ],
)
def test_events_split_at_every_byte_boundary_read_the_same(reader, api, data):
    whole = read(reader, api, data)
    for split in range(len(data) + 1):
        assert read(reader, api, data, split) == whole, split


def test_truncated_and_garbage_streams_keep_what_could_be_read():
    cut = (
        ANTHROPIC_STREAM[: ANTHROPIC_STREAM.index(b"event: message_delta")]
        + b'event: message_delta\ndata: {"type":"mess'
    )
    result = read(ap.StreamReader, "anthropic.messages", cut)
    assert result.input_tokens == 27 and result.output_tokens == 1 and not result.ended  # as of message_start
    garbage = b'data: not json\n\ndata: {"choices": "nope", "usage": [1,2]}\n\n\xff\xfe\n\ndata: 42\n\n'
    result = read(op.StreamReader, "openai.chat", garbage)
    assert result.input_tokens is None and result.output_text == []


@pytest.mark.parametrize(
    "body",
    [
        None,
        42,
        "text",
        [],
        {"choices": None},
        {"choices": [None, 3, {"message": 5}]},
        {"usage": {"prompt_tokens": "12", "completion_tokens": -3}},
        {"output": [{"type": "message", "content": "x"}]},
        {"error": {"type": "rate_limit"}},
    ],
)
@pytest.mark.parametrize("api", ["openai.chat", "openai.completions", "openai.responses", "openai.embeddings"])
def test_odd_openai_bodies_never_raise(api, body):
    result = LLMResult()
    op.parse_response(api, body, result)
    op.parse_request(api, body)
    assert result.input_tokens is None  # a string or negative count is not a count


@pytest.mark.parametrize(
    "body, expected",
    [
        (None, {}),
        ([], {}),
        ({"content": "x", "usage": None}, {}),  # content that is not a list, usage that is not a dict
        ({"content": [None, {"type": "tool_use", "name": "t"}]}, {"tool_calls": [{"id": None, "name": "t"}]}),
        ({"type": "error", "error": {"type": "overloaded_error"}}, {"error_type": "overloaded_error"}),
        ({"system": [{"type": "text", "text": "s"}]}, {"system": [{"type": "text", "content": "s"}]}),
    ],
)
def test_odd_anthropic_bodies_never_raise(body, expected):
    result = LLMResult()
    ap.parse_response("anthropic.messages", body, result)
    request = ap.parse_request("anthropic.messages", body)
    found = {
        "tool_calls": result.tool_calls,
        "error_type": result.error_type,
        "system": request.system_instructions,
    }
    assert {k: v for k, v in found.items() if v} == expected
    assert (result.input_tokens, result.output_tokens, result.output_text, request.model) == (None, None, [], None)
    assert request.input_messages in (None, [])


def test_request_parameters_and_messages():
    body = json.loads(
        '{"model":"gpt","temperature":0.5,"max_completion_tokens":9,"stop":"END","stream":true,'
        '"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"},'
        '{"type":"image_url","image_url":{"url":"data:..."}}]}]}'
    )
    request = op.parse_request("openai.chat", body)
    assert request.model == "gpt" and request.stream is True
    assert request.params == {
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 9,
        "gen_ai.request.stop_sequences": ("END",),
    }
    assert request.input_messages == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}, {"type": "image_url"}]},
    ]


def test_without_content_capture_the_messages_are_not_walked():
    # Each turn's request carries the whole history: building input messages nobody records
    # would cost more every turn. Model and parameters are still read.
    body = {"model": "gpt", "temperature": 0.5, "messages": [{"role": "user", "content": "hi"}] * 500}
    request = op.parse_request("openai.chat", body, messages=False)
    assert (request.model, request.params, request.input_messages) == ("gpt", {"gen_ai.request.temperature": 0.5}, None)
    anthropic_request = ap.parse_request("anthropic.messages", {**body, "system": "s"}, messages=False)
    assert anthropic_request.input_messages is None and anthropic_request.system_instructions is None
    assert anthropic_request.model == "gpt"


def test_the_stream_fast_path_counts_exactly_the_chunks_it_may_skip():
    # skim() takes only a lone, text-only chat delta after the ids are known; everything else
    # goes to the parser, and the result is the same either way.
    reader = op.StreamReader("openai.chat", keep_text=False)
    first = b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n'
    plain = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":null}]}\n\n'
    assert not reader.skim(first)  # no ids yet
    reader.event("message", first[6:-2].decode())
    assert reader.skim(plain) and reader.result.events == 2
    for other in (
        b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',  # a finish reason
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":1}}\n\n',  # usage
        # a tool call's first chunk: its id and name are read
        b'data: {"id":"c1","choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function",'
        b'"function":{"name":"f","arguments":""}}]},"finish_reason":null}]}\n\n',
        plain + plain,  # two events in one chunk
        plain[:-1],  # an unfinished event
        plain.replace(b"\n\n", b"\r\n\r\n"),  # CRLF line ends
    ):
        assert not reader.skim(other), other
    assert op.StreamReader("openai.chat", keep_text=True).skim(plain) is False  # text is kept: parse it
    assert reader.result.events == 2
    # More of a call's arguments (the id and name came before): counted, like a text delta.
    arguments = b'data: {"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"id\\": 1"}}]},"finish_reason":null}]}\n\n'
    assert reader.skim(arguments) and reader.result.events == 3


@pytest.mark.parametrize(
    ("url", "provider", "api"),
    [
        ("https://api.openai.com/v1/chat/completions", "openai", "openai.chat"),
        ("https://api.openai.com/v1/responses", "openai", "openai.responses"),
        ("https://api.openai.com/v1/embeddings", "openai", "openai.embeddings"),
        ("https://api.openai.com/v1/completions", "openai", "openai.completions"),
        ("https://api.anthropic.com/v1/messages", "anthropic", "anthropic.messages"),
        (
            "https://my-res.openai.azure.com/openai/deployments/gpt4/chat/completions?api-version=2024-10-21",
            "azure.ai.openai",
            "openai.chat",
        ),
        ("http://127.0.0.1:8000/v1/chat/completions", "vllm", "openai.chat"),
        ("http://127.0.0.1:8000/v1/messages", "vllm", "anthropic.messages"),
    ],
)
def test_endpoint_recognition(url, provider, api):
    endpoint = match("POST", url, normalize_base_urls({"http://127.0.0.1:8000": "vllm"}))
    assert endpoint is not None and (endpoint.provider, endpoint.api) == (provider, api)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "https://api.openai.com/v1/chat/completions"),
        ("POST", "https://api.openai.com/v1/files"),
        ("POST", "https://api.anthropic.com/v1/messages/count_tokens"),
        ("POST", "https://api.anthropic.com/v1/messages/batches"),
        ("POST", "https://example.com/v1/chat/completions"),
        ("POST", "http://127.0.0.1:9999/v1/chat/completions"),
    ],
)
def test_not_llm_calls(method, url):
    assert match(method, url, normalize_base_urls(["http://127.0.0.1:8000"])) is None


@pytest.mark.parametrize(
    ("reader", "api", "data"),
    [
        (ap.StreamReader, "anthropic.messages", ANTHROPIC_STREAM),
        (op.StreamReader, "openai.chat", OPENAI_STREAM),
    ],
)
def test_skipping_text_deltas_keeps_every_figure(reader, api, data):
    def run(keep_text):
        r = reader(api, keep_text=keep_text)
        parser = SSEParser()
        for name, payload in parser.feed(data):
            r.event(name, payload)
        return r.result

    full, lean = run(True), run(False)
    assert lean.output_text in ([], [""]) and full.output_text
    for field in (
        "response_id",
        "response_model",
        "finish_reasons",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "reasoning_tokens",
        "ended",
        "events",
    ):
        assert getattr(lean, field) == getattr(full, field), field


# -- tool calls and tool results, complete (content capture on) ---------------------------------------
def sse(events):
    return [(name, json.dumps(data)) for name, data in events]


def test_chat_history_keeps_tool_calls_with_arguments_and_tool_results_with_their_ids():
    messages = [
        {"role": "user", "content": "where is o-1?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"order": "o-1"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "shipped"},
    ]
    converted = op.convert_messages("openai.chat", messages)
    assert converted[1] == {
        "role": "assistant",
        "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": {"order": "o-1"}}],
    }
    assert converted[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": "shipped"}],
    }


def test_responses_input_items_map_to_their_roles_and_part_types():
    items = [
        {"role": "user", "content": "where is o-1?"},
        {"type": "function_call", "call_id": "fc_1", "name": "lookup", "arguments": '{"order": "o-1"}'},
        {"type": "function_call_output", "call_id": "fc_1", "output": "shipped"},
        {"type": "reasoning", "summary": []},
    ]
    converted = op.convert_messages("openai.responses", items)
    assert [m["role"] for m in converted] == ["user", "assistant", "tool", "assistant"]
    assert converted[1]["parts"] == [
        {"type": "tool_call", "id": "fc_1", "name": "lookup", "arguments": {"order": "o-1"}}
    ]
    assert converted[2]["parts"] == [{"type": "tool_call_response", "id": "fc_1", "response": "shipped"}]
    assert converted[0]["parts"] == [{"type": "text", "content": "where is o-1?"}]


def test_anthropic_tool_use_and_tool_result_blocks_keep_their_ids():
    messages = [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {"order": "o-1"}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": [{"type": "text", "text": "shipped"}]}
            ],
        },
    ]
    converted = ap.convert_messages("anthropic.messages", messages)
    assert converted[0]["parts"] == [
        {"type": "tool_call", "id": "tu_1", "name": "lookup", "arguments": {"order": "o-1"}}
    ]
    assert converted[1]["parts"] == [{"type": "tool_call_response", "id": "tu_1", "response": "shipped"}]


def test_a_chat_response_and_stream_keep_the_tool_calls_arguments():
    result = LLMResult()
    op.parse_response(
        "openai.chat",
        {"choices": [{"message": {"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}}]}}]},
        result,
    )
    assert result.output_messages()[0]["parts"] == [
        {"type": "tool_call", "id": "c1", "name": "f", "arguments": {"a": 1}}
    ]
    reader = op.StreamReader("openai.chat", keep_text=True)
    for data in (
        {
            "id": "r",
            "choices": [
                {"delta": {"tool_calls": [{"index": 0, "id": "c2", "function": {"name": "g", "arguments": ""}}]}}
            ],
        },
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"b": '}}]}}]},
        {
            "choices": [
                {
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "2}"}}]},
                    "finish_reason": "tool_calls",
                }
            ]
        },
    ):
        reader.event("", json.dumps(data))
    assert reader.result.output_messages()[0]["parts"] == [
        {"type": "tool_call", "id": "c2", "name": "g", "arguments": {"b": 2}}
    ]


def test_a_streamed_responses_function_call_is_kept_from_the_final_event():
    for keep_text in (True, False):
        reader = op.StreamReader("openai.responses", keep_text=keep_text)
        for name, data in sse(
            [
                ("response.created", {"type": "response.created", "response": {"id": "resp_1", "model": "m"}}),
                (
                    "response.function_call_arguments.delta",
                    {"type": "response.function_call_arguments.delta", "delta": '{"x"'},
                ),
                (
                    "response.completed",
                    {
                        "type": "response.completed",
                        "response": {
                            "id": "resp_1",
                            "status": "completed",
                            "output": [
                                {"type": "function_call", "call_id": "fc_9", "name": "lookup", "arguments": '{"x": 1}'}
                            ],
                            "usage": {"input_tokens": 5, "output_tokens": 3},
                        },
                    },
                ),
            ]
        ):
            reader.event(name, data)
        result = reader.result
        assert result.tool_calls == [{"id": "fc_9", "name": "lookup", "arguments": '{"x": 1}'}]
        assert (result.input_tokens, result.output_tokens, result.ended) == (5, 3, True)


def test_an_anthropic_stream_puts_the_tool_input_together():
    reader = ap.StreamReader("anthropic.messages", keep_text=True)
    for name, data in sse(
        [
            (
                "message_start",
                {"type": "message_start", "message": {"id": "m1", "model": "c", "usage": {"input_tokens": 4}}},
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {}},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '{"order": '},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '"o-1"}'},
                },
            ),
            (
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}},
            ),
        ]
    ):
        reader.event(name, data)
    assert reader.result.output_messages()[0]["parts"] == [
        {"type": "tool_call", "id": "tu_1", "name": "lookup", "arguments": {"order": "o-1"}}
    ]


# -- native APIs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "provider", "api", "model"),
    [
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
            "gcp.gemini",
            "gemini.generate",
            "gemini-2.5-flash",
        ),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "gcp.gemini",
            "gemini.stream",
            "gemini-2.5-flash",
        ),
        (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent",
            "gcp.vertex_ai",
            "gemini.generate",
            "gemini-2.0-flash",
        ),
        ("http://10.0.0.5:8080/v1beta/models/text-embedding-004:embedContent", "gcp.gemini", "gemini.embed", None),
        ("https://api.cohere.com/v2/chat", "cohere", "cohere.chat", None),
        ("https://api.mistral.ai/v1/chat/completions", "mistral_ai", "openai.chat", None),
        ("https://api.groq.com/openai/v1/chat/completions", "groq", "openai.chat", None),
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1:0/invoke",
            "aws.bedrock",
            "bedrock.invoke",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
        ),
        (
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict",
            "gcp.vertex_ai",
            "anthropic.messages",
            "claude-sonnet-4@20250514",
        ),
    ],
)
def test_native_endpoints_are_recognised_with_their_provider_and_model(url, provider, api, model):
    endpoint = match("POST", url, {})
    assert endpoint is not None and (endpoint.provider, endpoint.api) == (provider, api)
    if model is not None:
        assert endpoint.model == model


def test_an_unknown_host_speaking_a_native_api_needs_the_request_recognised():
    assert match("POST", "http://127.0.0.1:11434/api/chat", {}) is None  # could be anything's /api/chat
    endpoint = match("POST", "http://127.0.0.1:11434/api/chat", {}, recognised="")
    assert endpoint is not None and endpoint.provider == "ollama"
    endpoint = match("POST", "http://127.0.0.1:9000/v1/chat/completions", {}, recognised="mistral_ai")
    assert endpoint is not None and endpoint.provider == "mistral_ai"
    assert match("POST", "http://127.0.0.1:9000/v1/models/x:countTokens", {}) is None  # not a model call


def test_which_requests_are_recognised_by_what_they_are():
    from sessionkit._wire.recognise import is_llm_request

    assert is_llm_request({"user-agent": "ollama-python/0.6.3"}, b"") == "ollama"
    assert is_llm_request({"user-agent": "mistral-client-python/1.9"}, b"") == "mistral_ai"
    assert is_llm_request({"x-fern-sdk-name": "cohere"}, b"") == ""
    assert is_llm_request({}, b'{"model": "m", "contents": []}') == ""
    assert is_llm_request({}, b'{"model": "m", "purpose": "x"}') is None
    assert is_llm_request({"user-agent": "curl/8"}, None) is None


def _fed(reader, chunks):
    """Chunks through a reader as the wire hook feeds them: skim first, the parser otherwise."""
    from sessionkit._payloads.sse import NDJSONParser

    parser = SSEParser() if isinstance(reader, gm.StreamReader) else NDJSONParser()
    for chunk in chunks:
        if parser.idle and reader.skim(chunk):
            continue
        for name, payload in parser.feed(chunk):
            reader.event(name, payload)
    return reader.result


GEMINI_CHUNKS = [
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}],'
    b'"usageMetadata":{"promptTokenCount":9},"modelVersion":"gemini-2.5-flash","responseId":"r1"}\r\n\r\n',
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"index":0}],'
    b'"usageMetadata":{"promptTokenCount":9},"modelVersion":"gemini-2.5-flash","responseId":"r1"}\r\n\r\n',
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"!"}]},"finishReason":"STOP","index":0}],'
    b'"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3,"thoughtsTokenCount":4,'
    b'"cachedContentTokenCount":2},"modelVersion":"gemini-2.5-flash","responseId":"r1"}\r\n\r\n',
]
OLLAMA_CHUNKS = [
    b'{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":"Hel"},"done":false}\n',
    b'{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":"lo"},"done":false}\n',
    b'{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":""},"done":true,'
    b'"done_reason":"stop","prompt_eval_count":11,"eval_count":2}\n',
]


@pytest.mark.parametrize(
    ("reader", "api", "chunks"),
    [(gm.StreamReader, "gemini.stream", GEMINI_CHUNKS), (om.StreamReader, "ollama.chat", OLLAMA_CHUNKS)],
)
def test_native_stream_fast_paths_keep_every_figure(reader, api, chunks):
    full, lean = _fed(reader(api, keep_text=True), chunks), _fed(reader(api, keep_text=False), chunks)
    assert "".join(full.output_text) == "Hello!"[: len("".join(full.output_text))] and full.output_text
    for field in ("response_model", "finish_reasons", "input_tokens", "output_tokens", "ended", "events"):
        assert getattr(lean, field) == getattr(full, field), field
    assert lean.events == len(chunks)
    skimming = reader(api, keep_text=False)
    _fed(skimming, chunks[:1])
    assert skimming.skim(chunks[1]) and not skimming.skim(chunks[2])  # the last one has the figures


def test_gemini_usage_counts_thinking_as_output_and_cached_as_input():
    result = _fed(gm.StreamReader("gemini.stream"), GEMINI_CHUNKS)
    assert (result.input_tokens, result.output_tokens) == (9, 7)
    assert (result.reasoning_tokens, result.cache_read_tokens) == (4, 2)
    assert result.finish_reasons == ["stop"] and result.response_id == "r1"


def test_bedrock_converse_stream_events_put_tool_input_together():
    reader = bm.StreamReader("bedrock.converse_stream")
    for event in (
        {"messageStart": {"role": "assistant"}},
        {"contentBlockStart": {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a": '}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 3, "cacheReadInputTokens": 2}}},
    ):
        reader.take(event)
    result = reader.result
    assert result.output_messages()[0]["parts"] == [
        {"type": "tool_call", "id": "t1", "name": "f", "arguments": {"a": 1}}
    ]
    assert (result.input_tokens, result.output_tokens, result.cache_read_tokens) == (7, 3, 2)
    assert result.ended and result.finish_reasons == ["tool_use"]


def test_bedrock_invoke_stream_reads_anthropic_events_and_bedrock_metrics():
    reader = bm.StreamReader("bedrock.invoke_stream")
    events = [
        {"type": "message_start", "message": {"id": "m1", "model": "claude", "usage": {"input_tokens": 4}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 4, "outputTokenCount": 6},
        },
    ]
    for event in events:
        reader.take({"chunk": {"bytes": json.dumps(event).encode()}})
    assert reader.result.output_text == ["hi"]
    assert (reader.result.input_tokens, reader.result.output_tokens) == (4, 6)

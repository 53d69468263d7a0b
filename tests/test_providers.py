"""The native provider APIs through their real SDKs, against the fake server on 127.0.0.1:
google-genai (Gemini; sync through httpx, async through aiohttp), ollama, cohere (v2),
mistralai, boto3 (Bedrock Runtime), and plain aiohttp. Plain and streamed, with and without
tools, with content capture on and off. No configuration: no ``llm_base_urls``."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import boto3
import cohere
import httpx
import ollama
import pytest
import sessionkit
from google import genai
from google.genai import types as genai_types
from mistralai.client import Mistral
from sessionkit._fake_providers import ARGS, REPLY
from sessionkit.fake_llm import FakeLLMServer, FakeProviderServer

from helpers import llm_spans

TEXT = "".join(REPLY)


@pytest.fixture
def server():
    with FakeProviderServer() as s:
        yield s


@pytest.fixture(params=[False, True], ids=["capture-off", "capture-on"])
def capture(request):
    return request.param


@pytest.fixture
def llm(capture):
    c = sessionkit.Client(exporter="memory", service_name="providers", capture_content=capture)
    yield c
    c.shutdown(timeout=2)


def only_call(client):
    (span,) = llm_spans(client)
    return span.attributes


def messages(attrs, key):
    return json.loads(attrs[key])


def assert_text_output(attrs, capture):
    if capture:
        (message,) = messages(attrs, "gen_ai.output.messages")
        assert message["role"] == "assistant"
        assert message["parts"][0] == {"type": "text", "content": TEXT}
    else:
        assert "gen_ai.output.messages" not in attrs and "gen_ai.input.messages" not in attrs


def assert_tool_call(attrs, capture, name="get_weather"):
    if capture:
        (message,) = messages(attrs, "gen_ai.output.messages")
        (call,) = [p for p in message["parts"] if p["type"] == "tool_call"]
        assert call["name"] == name and call["arguments"] == ARGS
    else:
        assert "gen_ai.output.messages" not in attrs


# -- Gemini (google-genai) ------------------------------------------------------------------------
def gemini(server):
    return genai.Client(api_key="test-key", http_options=genai_types.HttpOptions(base_url=server.url))


WEATHER_TOOL = genai_types.Tool(
    function_declarations=[
        genai_types.FunctionDeclaration(
            name="get_weather",
            description="The weather in a city",
            parameters=genai_types.Schema(
                type="OBJECT", properties={"city": genai_types.Schema(type="STRING")}, required=["city"]
            ),
        )
    ]
)


def test_gemini_generate_content(server, llm, capture):
    client = gemini(server)  # (kept: a dropped google-genai client closes its HTTP client)
    with llm.session("gemini"):
        response = client.models.generate_content(model="gemini-2.5-flash", contents="Weather in Paris?")
    assert response.text == TEXT
    attrs = only_call(llm)
    assert attrs["gen_ai.operation.name"] == "generate_content"
    assert attrs["gen_ai.provider.name"] == "gcp.gemini"
    assert attrs["gen_ai.request.model"] == "gemini-2.5-flash"
    assert attrs["gen_ai.request.stream"] is False
    tokens_in, tokens_out = server.reported[-1]
    assert attrs["gen_ai.usage.input_tokens"] == tokens_in
    assert attrs["gen_ai.usage.output_tokens"] == tokens_out  # candidates and thinking tokens
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 2
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == server.port
    assert_text_output(attrs, capture)
    if capture:
        assert messages(attrs, "gen_ai.input.messages") == [
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
        ]


def test_gemini_stream_over_sse(server, llm, capture):
    client = gemini(server)
    with llm.session("gemini"):
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Weather?"))
    assert "".join(c.text for c in chunks) == TEXT
    attrs = only_call(llm)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["sessionkit.stream.completed"] is True
    assert attrs["sessionkit.stream.events"] == len(REPLY)
    assert attrs["gen_ai.usage.output_tokens"] == server.reported[-1][1]
    assert "gen_ai.response.time_to_first_chunk" in attrs
    assert_text_output(attrs, capture)


def test_gemini_tool_call_and_its_result(server, llm, capture):
    client = gemini(server)
    config = genai_types.GenerateContentConfig(tools=[WEATHER_TOOL])
    with llm.session("gemini"):
        first = client.models.generate_content(model="gemini-2.5-flash", contents="Weather in Paris?", config=config)
        (call,) = first.function_calls
        assert call.name == "get_weather" and call.args == ARGS
        history = [
            genai_types.Content(role="user", parts=[genai_types.Part(text="Weather in Paris?")]),
            first.candidates[0].content,
            genai_types.Content(
                role="user",
                parts=[genai_types.Part.from_function_response(name="get_weather", response={"sky": "sunny"})],
            ),
        ]
        second = client.models.generate_content(model="gemini-2.5-flash", contents=history, config=config)
    assert second.text == TEXT
    first_attrs, second_attrs = (s.attributes for s in llm_spans(llm))
    assert_tool_call(first_attrs, capture)
    if capture:
        sent = messages(second_attrs, "gen_ai.input.messages")
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        assert sent[1]["parts"][0]["type"] == "tool_call" and sent[1]["parts"][0]["arguments"] == ARGS
        assert sent[2]["parts"][0]["type"] == "tool_call_response"
        assert sent[2]["parts"][0]["response"] == {"sky": "sunny"}


def test_gemini_json_array_stream_and_embeddings_over_plain_httpx(server, llm, capture):
    with llm.session("gemini"):
        response = httpx.post(
            f"{server.url}/v1beta/models/gemini-2.5-pro:streamGenerateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        )
        embedded = httpx.post(
            f"{server.url}/v1beta/models/text-embedding-004:embedContent",
            json={"content": {"parts": [{"text": "hi"}]}},
        )
    assert len(response.json()) == len(REPLY) and embedded.status_code == 200
    stream, embed = (s.attributes for s in llm_spans(llm))
    assert stream["gen_ai.request.model"] == "gemini-2.5-pro"
    assert stream["gen_ai.request.stream"] is True
    assert stream["gen_ai.usage.output_tokens"] == server.reported[0][1]
    assert embed["gen_ai.operation.name"] == "embeddings"
    assert embed["gen_ai.request.model"] == "text-embedding-004"


def test_a_vertex_ai_path_names_vertex_as_the_provider(server, llm):
    path = "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    with llm.session("vertex"):
        httpx.post(server.url + path, json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    attrs = only_call(llm)
    assert attrs["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert attrs["gen_ai.request.model"] == "gemini-2.5-flash"


def test_gemini_async_goes_through_aiohttp_and_is_recorded_once(server, llm, capture):
    async def main():
        client = gemini(server)
        with llm.session("gemini-async"):
            answer = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Weather?")
            streamed = [
                c.text
                async for c in await client.aio.models.generate_content_stream(
                    model="gemini-2.5-flash", contents="Weather?"
                )
            ]
        return answer.text, "".join(streamed)

    assert asyncio.run(main()) == (TEXT, TEXT)
    plain, streamed = (s.attributes for s in llm_spans(llm))
    assert plain["gen_ai.usage.input_tokens"] == server.reported[0][0]
    assert streamed["gen_ai.request.stream"] is True and streamed["sessionkit.stream.completed"] is True
    assert streamed["gen_ai.usage.output_tokens"] == server.reported[1][1]
    assert_text_output(plain, capture)
    assert_text_output(streamed, capture)


# -- Ollama -------------------------------------------------------------------------------------------
OLLAMA_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_ollama_chat(server, llm, capture, stream):
    client = ollama.Client(host=server.url)
    with llm.session("ollama"):
        answer = client.chat(model="llama3.2", messages=[{"role": "user", "content": "Weather?"}], stream=stream)
        text = "".join(c.message.content for c in answer) if stream else answer.message.content
    assert text == TEXT
    attrs = only_call(llm)
    assert attrs["gen_ai.provider.name"] == "ollama"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "llama3.2"
    assert attrs["gen_ai.request.stream"] is stream
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == server.reported[-1]
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    if stream:
        assert attrs["sessionkit.stream.completed"] is True
        assert attrs["sessionkit.stream.events"] == len(REPLY) + 1
    assert_text_output(attrs, capture)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_ollama_tool_call(server, llm, capture, stream):
    client = ollama.Client(host=server.url)
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    with llm.session("ollama"):
        answer = client.chat(model="llama3.2", messages=asked, tools=[OLLAMA_TOOL], stream=stream)
        message = [c for c in answer][-1].message if stream else answer.message
        (call,) = message.tool_calls
        assert call.function.name == "get_weather" and dict(call.function.arguments) == ARGS
        history = [*asked, message, {"role": "tool", "content": "sunny", "tool_name": "get_weather"}]
        client.chat(model="llama3.2", messages=history, tools=[OLLAMA_TOOL], stream=False)
    first, second = (s.attributes for s in llm_spans(llm))
    assert_tool_call(first, capture)
    if capture:
        sent = messages(second, "gen_ai.input.messages")
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        assert sent[1]["parts"][-1]["type"] == "tool_call" and sent[1]["parts"][-1]["arguments"] == ARGS
        assert sent[2]["parts"][0] == {
            "type": "tool_call_response",
            "id": None,
            "response": "sunny",
            "name": "get_weather",
        }


def test_ollama_generate_and_embed(server, llm, capture):
    client = ollama.Client(host=server.url)
    with llm.session("ollama"):
        assert client.generate(model="llama3.2", prompt="Weather?").response == TEXT
        assert client.embed(model="nomic-embed-text", input="hello").embeddings
    generate, embed = (s.attributes for s in llm_spans(llm))
    assert generate["gen_ai.operation.name"] == "text_completion"
    assert generate["gen_ai.usage.output_tokens"] == len(REPLY)
    assert embed["gen_ai.operation.name"] == "embeddings"
    assert embed["gen_ai.usage.input_tokens"] == server.reported[1][0]


# -- Cohere v2 ----------------------------------------------------------------------------------------
COHERE_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def co(server):
    return cohere.ClientV2(api_key="test-key", base_url=server.url)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_cohere_chat(server, llm, capture, stream):
    asked = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}]
    with llm.session("cohere"):
        if stream:
            events = list(co(server).chat_stream(model="command-a-03-2025", messages=asked))
            text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
        else:
            text = co(server).chat(model="command-a-03-2025", messages=asked).message.content[0].text
    assert text == TEXT
    attrs = only_call(llm)
    assert attrs["gen_ai.provider.name"] == "cohere"
    assert attrs["gen_ai.request.model"] == "command-a-03-2025"
    assert attrs["gen_ai.request.stream"] is stream
    tokens_in, tokens_out = server.reported[-1]
    assert attrs["gen_ai.usage.input_tokens"] == tokens_in + 10  # the tokens the model saw, not the billed ones
    assert attrs["gen_ai.usage.output_tokens"] == tokens_out
    assert attrs["gen_ai.response.finish_reasons"] == ("complete",)
    assert_text_output(attrs, capture)
    if capture:
        assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_cohere_tool_call(server, llm, capture, stream):
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    with llm.session("cohere"):
        if stream:
            events = list(co(server).chat_stream(model="command-a-03-2025", messages=asked, tools=[COHERE_TOOL]))
            assert any(e.type == "tool-call-start" for e in events)
            call_id = "call_c1"
        else:
            answer = co(server).chat(model="command-a-03-2025", messages=asked, tools=[COHERE_TOOL])
            (call,) = answer.message.tool_calls
            assert json.loads(call.function.arguments) == ARGS
            call_id = call.id
        history = [
            *asked,
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": [{"type": "document", "document": {"data": "sunny"}}]},
        ]
        co(server).chat(model="command-a-03-2025", messages=history, tools=[COHERE_TOOL])
    first, second = (s.attributes for s in llm_spans(llm))
    assert first["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert_tool_call(first, capture)
    if capture:
        sent = messages(second, "gen_ai.input.messages")
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        assert sent[2]["parts"][0]["type"] == "tool_call_response" and sent[2]["parts"][0]["id"] == "call_c1"


def test_cohere_embed(server, llm, capture):
    with llm.session("cohere"):
        co(server).embed(model="embed-v4.0", texts=["hello"], input_type="search_query", embedding_types=["float"])
    attrs = only_call(llm)
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.usage.input_tokens"] == server.reported[-1][0]


# -- Mistral --------------------------------------------------------------------------------------------
MISTRAL_TOOL = COHERE_TOOL


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_mistral_chat_on_any_host_is_named_mistral(server, llm, capture, stream):
    client = Mistral(api_key="test-key", server_url=server.url)
    asked = [{"role": "user", "content": "Weather?"}]
    with llm.session("mistral"):
        if stream:
            text = "".join(
                e.data.choices[0].delta.content or ""
                for e in client.chat.stream(model="mistral-small-latest", messages=asked)
            )
        else:
            text = client.chat.complete(model="mistral-small-latest", messages=asked).choices[0].message.content
    assert text == TEXT
    attrs = only_call(llm)
    assert attrs["gen_ai.provider.name"] == "mistral_ai"  # from the SDK's user agent
    assert attrs["gen_ai.request.model"] == "mistral-small-latest"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == server.reported[-1]
    assert "sessionkit.llm.usage_missing" not in attrs  # Mistral sends usage in the last chunk unasked
    assert_text_output(attrs, capture)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_mistral_tool_call(server, llm, capture, stream):
    client = Mistral(api_key="test-key", server_url=server.url)
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    with llm.session("mistral"):
        if stream:
            events = list(client.chat.stream(model="mistral-small-latest", messages=asked, tools=[MISTRAL_TOOL]))
            assert any(e.data.choices[0].delta.tool_calls for e in events)
        else:
            answer = client.chat.complete(model="mistral-small-latest", messages=asked, tools=[MISTRAL_TOOL])
            assert answer.choices[0].message.tool_calls[0].function.name == "get_weather"
    attrs = only_call(llm)
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert_tool_call(attrs, capture)


# -- AWS Bedrock (boto3) ---------------------------------------------------------------------------------
BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
BEDROCK_TOOL = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "The weather in a city",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
            }
        }
    ]
}


def bedrock(server):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_bedrock_converse(server, llm, capture):
    client = bedrock(server)
    asked = [{"role": "user", "content": [{"text": "Weather?"}]}]
    with llm.session("bedrock"):
        answer = client.converse(modelId=BEDROCK_MODEL, messages=asked, inferenceConfig={"maxTokens": 64})
    assert answer["output"]["message"]["content"][0]["text"] == TEXT
    attrs = only_call(llm)
    assert attrs["gen_ai.provider.name"] == "aws.bedrock"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == BEDROCK_MODEL
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == server.reported[-1]
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attrs["http.response.status_code"] == 200
    assert_text_output(attrs, capture)


def test_bedrock_converse_stream(server, llm, capture):
    client = bedrock(server)
    asked = [{"role": "user", "content": [{"text": "Weather?"}]}]
    with llm.session("bedrock"):
        response = client.converse_stream(modelId=BEDROCK_MODEL, messages=asked)
        text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in response["stream"] if "contentBlockDelta" in e)
    assert text == TEXT
    attrs = only_call(llm)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["sessionkit.stream.completed"] is True
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == server.reported[-1]
    assert_text_output(attrs, capture)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_bedrock_tool_use(server, llm, capture, stream):
    client = bedrock(server)
    asked = [{"role": "user", "content": [{"text": "Weather in Paris?"}]}]
    with llm.session("bedrock"):
        if stream:
            events = list(
                client.converse_stream(modelId=BEDROCK_MODEL, messages=asked, toolConfig=BEDROCK_TOOL)["stream"]
            )
            assert any("contentBlockStart" in e for e in events)
        else:
            answer = client.converse(modelId=BEDROCK_MODEL, messages=asked, toolConfig=BEDROCK_TOOL)
            assert answer["output"]["message"]["content"][0]["toolUse"]["input"] == ARGS
        history = [
            *asked,
            {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "tu-1", "name": "get_weather", "input": ARGS}}],
            },
            {"role": "user", "content": [{"toolResult": {"toolUseId": "tu-1", "content": [{"text": "sunny"}]}}]},
        ]
        client.converse(modelId=BEDROCK_MODEL, messages=history, toolConfig=BEDROCK_TOOL)
    first, second = (s.attributes for s in llm_spans(llm))
    assert first["gen_ai.response.finish_reasons"] == ("tool_use",)
    assert_tool_call(first, capture)
    if capture:
        sent = messages(second, "gen_ai.input.messages")
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        assert sent[2]["parts"][0] == {"type": "tool_call_response", "id": "tu-1", "response": "sunny"}


def test_bedrock_invoke_model_reads_the_body_and_leaves_it_readable(server, llm, capture):
    client = bedrock(server)
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Weather?"}],
    }
    with llm.session("bedrock"):
        response = client.invoke_model(modelId=BEDROCK_MODEL, body=json.dumps(body))
        answer = json.loads(response["body"].read())
    assert answer["content"][0]["text"] == TEXT  # the program still reads the whole body
    attrs = only_call(llm)
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == server.reported[-1]
    assert_text_output(attrs, capture)


def test_a_bedrock_error_ends_the_span_as_an_error(llm, dead_port):
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=f"http://127.0.0.1:{dead_port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=__import__("botocore.config").config.Config(retries={"max_attempts": 1}),
    )
    with llm.session("bedrock"), pytest.raises(Exception, match="Could not connect"):
        client.converse(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    attrs = only_call(llm)
    assert attrs["error.type"] == "EndpointConnectionError"


def test_other_aws_services_are_not_hooked(server, llm):
    s3 = boto3.client(
        "s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    from sessionkit._wire.botocore_hook import hooked

    assert not hooked(s3)
    assert hooked(bedrock(server))


# -- plain aiohttp ------------------------------------------------------------------------------------------
@pytest.fixture
def openai_server():
    with FakeLLMServer() as s:
        yield s


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_plain_aiohttp_requests_to_an_openai_compatible_server(openai_server, llm, capture, stream):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})

    async def main():
        async with aiohttp.ClientSession() as http:
            async with http.post(openai_server.openai_base_url + "/chat/completions", json=body) as response:
                if stream:
                    return b"".join([line async for line in response.content])
                return await response.read()

    raw = asyncio.run(main())
    assert raw and (b"[DONE]" in raw if stream else json.loads(raw)["choices"])
    attrs = only_call(llm)
    assert attrs["gen_ai.provider.name"] == "openai"
    reported = openai_server.reported[-1]
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (
        reported.input_tokens,
        reported.output_tokens,
    )
    if stream:
        assert attrs["sessionkit.stream.completed"] is True


def test_a_non_llm_aiohttp_request_passes_untouched(openai_server, llm):
    async def main():
        async with aiohttp.ClientSession() as http:
            async with http.post(openai_server.url + "/v1/files", data=b"x") as response:
                return response.status

    with llm.session("files"):
        assert asyncio.run(main()) == 404
    assert llm_spans(llm) == []


# -- Anthropic's models on Bedrock and Vertex AI, through the anthropic SDK (httpx) ------------------
def test_anthropic_bedrock_over_httpx_is_a_bedrock_call(server, llm, capture):
    import anthropic

    sdk = anthropic.AnthropicBedrock(
        aws_access_key="test", aws_secret_key="test", aws_region="us-east-1", base_url=server.url
    )
    with llm.session("bedrock-httpx"):
        answer = sdk.messages.create(model=BEDROCK_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert answer.content[0].text == TEXT
    attrs = only_call(llm)
    assert (attrs["gen_ai.provider.name"], attrs["gen_ai.request.model"]) == ("aws.bedrock", BEDROCK_MODEL)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == server.reported[-1]
    assert_text_output(attrs, capture)


def test_anthropic_vertex_is_a_vertex_call(server, llm, capture):
    import anthropic

    sdk = anthropic.AnthropicVertex(region="us-east5", project_id="p1", access_token="t", base_url=server.url)
    with llm.session("vertex-anthropic"):
        answer = sdk.messages.create(
            model="claude-sonnet-4@20250514", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.content[0].text == TEXT
    attrs = only_call(llm)
    assert attrs["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert attrs["gen_ai.request.model"] == "claude-sonnet-4@20250514"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == server.reported[-1]
    assert_text_output(attrs, capture)

"""LLM calls seen at the HTTP layer, through the real openai and anthropic SDKs and plain
httpx / httpx2, against the fake LLM server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import socket
import time

import anthropic
import httpx
import httpx2
import openai
import pytest
import sessionkit
from opentelemetry.trace import SpanKind, StatusCode
from sessionkit import _wire as patch

from helpers import llm_spans, root_of, spans_of

API_KEY = "sk-test-SECRET-0123456789"
ANTHROPIC_KEY = "sk-ant-SECRET-9876543210"


@pytest.fixture
def llm_client(server):
    c = sessionkit.Client(exporter="memory", service_name="llm", llm_base_urls=[server.url])
    yield c
    c.shutdown(timeout=2)


def oai(server, **kwargs):
    return openai.OpenAI(
        base_url=server.openai_base_url, api_key=API_KEY, max_retries=kwargs.pop("max_retries", 0), **kwargs
    )


def ant(server, **kwargs):
    return anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=kwargs.pop("max_retries", 0), **kwargs
    )


def metric_points(client, name):
    return [
        point
        for rm in client.metric_reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for point in m.data.data_points
    ]


def test_openai_chat_becomes_a_client_span_with_genai_attributes(server, llm_client):
    with llm_client.session("s") as s:
        response = oai(server).chat.completions.create(
            model="gpt-4.1-mini",
            messages=[{"role": "user", "content": "where is my order"}],
            temperature=0.2,
            max_tokens=64,
            top_p=0.9,
        )
    (span,) = llm_spans(llm_client)
    reported = server.reported[-1]
    assert span.name == "chat gpt-4.1-mini" and span.kind is SpanKind.CLIENT
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4.1-mini"
    assert (a["gen_ai.request.temperature"], a["gen_ai.request.max_tokens"], a["gen_ai.request.top_p"]) == (
        0.2,
        64,
        0.9,
    )
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.response.model"] == "gpt-4.1-mini"
    assert a["gen_ai.response.id"] == response.id
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        reported.input_tokens,
        reported.output_tokens,
    )
    assert a["llm.token_count.total"] == reported.input_tokens + reported.output_tokens
    assert a["llm.model_name"] == "gpt-4.1-mini"
    assert (a["server.address"], a["server.port"]) == ("127.0.0.1", server.port)
    assert a["session.id"] == s.id
    assert span.parent is None and a["sessionkit.turn.index"] == 1  # a top-level call: a turn of its own
    assert root_of(llm_client, s).context.trace_id != span.context.trace_id
    # Priced by genai-prices as OpenAI prices gpt-4.1-mini (0.40 / 1.60 USD per million tokens).
    expected = reported.input_tokens * 0.4e-6 + reported.output_tokens * 1.6e-6
    assert a["llm.cost.total"] == pytest.approx(expected)
    assert a["llm.cost.prompt"] + a["llm.cost.completion"] == pytest.approx(a["llm.cost.total"])
    summary = s.summary()
    assert (summary.llm_calls, summary.input_tokens, summary.output_tokens) == (
        1,
        reported.input_tokens,
        reported.output_tokens,
    )


def test_the_caller_gets_the_same_response_object_and_bytes(server, llm_client):
    client = oai(server)
    with llm_client.session("s"):
        raw = client.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "x"}])
        parsed = raw.parse()
    assert raw.http_response.json()["choices"][0]["message"]["content"] == parsed.choices[0].message.content
    assert raw.http_response.headers["content-type"] == "application/json"
    direct = httpx.post(server.openai_base_url + "/chat/completions", json={"model": "m", "messages": []})
    assert direct.status_code == 200 and direct.json()["object"] == "chat.completion"
    assert len(llm_spans(llm_client)) == 2


def test_streamed_chunks_reach_the_caller_unchanged_and_as_they_arrive(server, llm_client):
    body = {
        "model": "slow",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": True},
    }
    for instrumented in (True, False):
        if not instrumented:
            llm_client.uninstrument()
        received = bytearray()
        arrivals = []
        started = time.monotonic()
        with httpx.stream("POST", server.openai_base_url + "/chat/completions", json=body) as response:
            for chunk in response.iter_raw():
                arrivals.append(time.monotonic() - started)
                received.extend(chunk)
        assert bytes(received) == server.sent[-1]  # byte for byte what the server wrote
        assert arrivals[0] < arrivals[-1] / 2  # the first chunk came before the stream ended
    (span,) = llm_spans(llm_client)
    assert span.attributes["sessionkit.stream.completed"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] == server.reported[0].output_tokens


def test_openai_stream_reads_usage_from_the_final_chunk_and_sets_ttfc(server, llm_client):
    with llm_client.session("s") as s:
        stream = oai(server).chat.completions.create(
            model="gpt-4.1-mini",
            messages=[{"role": "user", "content": "hi there"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "".join(server.reply.split()[i % 5] + " " for i in range(server.chunks))
    (span,) = llm_spans(llm_client)
    reported = server.reported[-1]
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == reported.input_tokens
    assert span.attributes["gen_ai.usage.output_tokens"] == reported.output_tokens
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert span.attributes["sessionkit.stream.completed"] is True
    assert s.summary().output_tokens == reported.output_tokens
    ttfc = metric_points(llm_client, "gen_ai.client.operation.time_to_first_chunk")
    assert ttfc and ttfc[0].count == 1


def test_anthropic_messages_json_and_stream(server, llm_client):
    client = ant(server)
    with llm_client.session("s") as s:
        message = client.messages.create(
            model="claude-test",
            max_tokens=100,
            system="be brief",
            messages=[{"role": "user", "content": "hello there"}],
        )
        with client.messages.stream(
            model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hello"}]
        ) as stream:
            text = "".join(stream.text_stream)
    assert message.content[0].text and text
    plain, streamed = llm_spans(llm_client)
    for span, reported in zip((plain, streamed), server.reported):
        assert span.name == "chat claude-test"
        assert span.attributes["gen_ai.provider.name"] == "anthropic"
        assert span.attributes["gen_ai.usage.input_tokens"] == reported.input_tokens
        assert span.attributes["gen_ai.usage.output_tokens"] == reported.output_tokens
        assert list(span.attributes["gen_ai.response.finish_reasons"]) == ["end_turn"]
        assert span.attributes["gen_ai.request.max_tokens"] == 100
    assert plain.attributes["gen_ai.response.id"] == message.id
    assert streamed.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert streamed.attributes["sessionkit.stream.completed"] is True
    summary = s.summary()
    assert summary.llm_calls == 2
    assert summary.input_tokens == sum(r.input_tokens for r in server.reported)


def test_responses_completions_and_embeddings(server, llm_client):
    client = oai(server)
    with llm_client.session("s"):
        client.responses.create(model="gpt-r", input="hi there", instructions="be nice")
        stream = client.responses.create(model="gpt-r", input="stream me", stream=True)
        for _ in stream:
            pass
        client.completions.create(model="gpt-c", prompt="once upon")
        client.embeddings.create(model="emb-1", input=["a", "b"])
    names = [s.name for s in llm_spans(llm_client)]
    assert names == ["chat gpt-r", "chat gpt-r", "text_completion gpt-c", "embeddings emb-1"]
    spans = llm_spans(llm_client)
    for span, reported in zip(spans, server.reported):
        assert span.attributes["gen_ai.usage.input_tokens"] == reported.input_tokens
    assert spans[1].attributes["gen_ai.usage.output_tokens"] == server.reported[1].output_tokens
    assert spans[1].attributes["sessionkit.stream.completed"] is True


def test_each_retry_is_its_own_span_with_its_attempt_number(server, llm_client):
    with llm_client.session("s") as s:
        with pytest.raises(openai.RateLimitError):
            oai(server, max_retries=2).chat.completions.create(model="error-429", messages=[])
    spans = llm_spans(llm_client)
    assert [x.attributes["sessionkit.llm.attempt"] for x in spans] == [1, 2, 3]
    assert [x.attributes.get("http.request.resend_count") for x in spans] == [None, 1, 2]
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "429"
        assert span.attributes["http.response.status_code"] == 429
    assert s.summary().errors == 3 and s.summary().llm_calls == 3


def test_server_errors_and_connection_errors_set_error_type(server, llm_client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    dead_client = sessionkit.Client(exporter="memory", llm_base_urls=[f"http://127.0.0.1:{dead}"])
    try:
        with llm_client.session("s"):
            with pytest.raises(openai.InternalServerError):
                oai(server).chat.completions.create(model="error-500", messages=[])
        with dead_client.session("d"):
            with pytest.raises(openai.APIConnectionError):
                openai.OpenAI(
                    base_url=f"http://127.0.0.1:{dead}/v1", api_key="k", max_retries=0
                ).chat.completions.create(model="m", messages=[])
        (failed,) = llm_spans(llm_client)
        assert failed.attributes["error.type"] == "500"
        (refused,) = llm_spans(dead_client)
        assert refused.status.status_code is StatusCode.ERROR
        assert refused.attributes["error.type"] == "ConnectError"
    finally:
        dead_client.shutdown(timeout=1)


def test_a_stream_cut_in_the_middle_ends_the_span_once_with_the_error(server, llm_client):
    errors = []
    for instrumented in (True, False):
        if not instrumented:
            llm_client.uninstrument()
        with llm_client.session("s"):
            try:
                for _ in oai(server).chat.completions.create(model="cut", messages=[], stream=True):
                    pass
            except Exception as exc:  # the SDK's own error, whatever it is
                errors.append(type(exc))
    assert len(errors) == 2 and errors[0] is errors[1]  # the caller sees the same error either way
    (span,) = llm_spans(llm_client)
    assert span.attributes["sessionkit.stream.completed"] is False
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["sessionkit.stream.events"] >= 1  # what was seen before the cut


def test_breaking_out_of_a_stream_early_and_abandoning_one(server, llm_client):
    client = oai(server)
    with llm_client.session("s"):
        stream = client.chat.completions.create(model="gpt", messages=[], stream=True)
        for _ in stream:
            break
        stream.close()
        abandoned = client.chat.completions.create(model="gpt", messages=[], stream=True)
        next(iter(abandoned))
        del abandoned
        gc.collect()
    spans = llm_spans(llm_client)
    assert len(spans) == 2
    assert all(x.attributes["sessionkit.stream.completed"] is False for x in spans)
    assert all(x.attributes["sessionkit.stream.events"] >= 1 for x in spans)


def test_with_streaming_response(server, llm_client):
    with llm_client.session("s"):
        with oai(server).chat.completions.with_streaming_response.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        ) as response:
            data = response.json()
    assert data["usage"]["completion_tokens"] == server.reported[-1].output_tokens
    (span,) = llm_spans(llm_client)
    assert span.attributes["gen_ai.usage.output_tokens"] == server.reported[-1].output_tokens


def test_async_openai_and_anthropic(server, llm_client):
    async def main():
        oa = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)
        an = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0)
        async with llm_client.session("a") as s:
            await oa.chat.completions.create(model="gpt-a", messages=[{"role": "user", "content": "x"}])
            stream = await oa.chat.completions.create(
                model="gpt-a", messages=[], stream=True, stream_options={"include_usage": True}
            )
            async for _ in stream:
                pass
            async with an.messages.stream(model="claude-a", max_tokens=10, messages=[]) as st:
                async for _ in st.text_stream:
                    pass
        return s

    s = asyncio.run(main())
    spans = llm_spans(llm_client)
    assert [x.name for x in spans] == ["chat gpt-a", "chat gpt-a", "chat claude-a"]
    assert all(x.attributes["session.id"] == s.id for x in spans)
    assert s.summary().output_tokens == sum(r.output_tokens for r in server.reported)


def test_plain_httpx_and_httpx2_clients_and_user_supplied_http_clients(server, llm_client):
    url = server.openai_base_url + "/chat/completions"
    with llm_client.session("s"):
        httpx.Client().post(url, json={"model": "via-httpx", "messages": []})
        httpx2.Client().post(url, json={"model": "via-httpx2", "messages": []})

        async def both():
            async with httpx.AsyncClient() as a, httpx2.AsyncClient() as b:
                await a.post(url, json={"model": "via-async-httpx", "messages": []})
                await b.post(url, json={"model": "via-async-httpx2", "messages": []})

        asyncio.run(both())
        custom = openai.OpenAI(base_url=server.openai_base_url, api_key="k", http_client=httpx2.Client())
        custom.chat.completions.create(model="custom-http-client", messages=[])
    models = [x.attributes["gen_ai.request.model"] for x in llm_spans(llm_client)]
    assert models == ["via-httpx", "via-httpx2", "via-async-httpx", "via-async-httpx2", "custom-http-client"]


def test_requests_that_are_not_llm_calls_pass_through_with_no_span(server, llm_client):
    with llm_client.session("s"):
        assert httpx.get(server.url + "/v1/models").status_code == 501  # GET: not an LLM call
        assert httpx.post(server.url + "/v1/files", json={}).status_code == 404
        assert httpx.post(server.url + "/v1/messages/count_tokens", json={}).status_code == 404
    assert llm_spans(llm_client) == []


def test_the_sdks_are_recognised_on_any_host_with_no_configuration(server):
    c = sessionkit.Client(exporter="memory")  # no llm_base_urls
    try:
        with c.session("s"):
            oai(server).chat.completions.create(model="local-model", messages=[{"role": "user", "content": "hi"}])
            ant(server).messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
            # Plain httpx: recognised by the body's shape on an LLM API path ...
            httpx.post(server.openai_base_url + "/chat/completions", json={"model": "plain", "messages": []})
            # ... and a POST there that is no LLM call (no model and messages) is left alone.
            httpx.post(server.openai_base_url + "/chat/completions", json={"hello": "world"})
        spans = llm_spans(c)
        assert [x.attributes["gen_ai.request.model"] for x in spans] == ["local-model", "c", "plain"]
        # An unknown host gets its API family as the provider, and where it went.
        assert [x.attributes["gen_ai.provider.name"] for x in spans] == ["openai", "anthropic", "openai"]
        assert all(
            (x.attributes["server.address"], x.attributes["server.port"]) == ("127.0.0.1", server.port) for x in spans
        )
        assert spans[0].attributes["gen_ai.usage.output_tokens"] == server.reported[0].output_tokens
    finally:
        c.shutdown(timeout=1)


def test_llm_base_urls_names_a_provider_or_excludes_a_url(server):
    named = sessionkit.Client(exporter="memory", llm_base_urls={server.url: "vllm"})
    excluded = sessionkit.Client(exporter="memory", llm_base_urls={server.url: "none"})
    try:
        with named.session("s"):
            oai(server).chat.completions.create(model="m", messages=[])
        assert [x.attributes["gen_ai.provider.name"] for x in llm_spans(named)] == ["vllm"]
        named.shutdown(timeout=1)
        with excluded.session("s"):
            oai(server).chat.completions.create(model="m", messages=[])
        assert llm_spans(excluded) == []
    finally:
        named.shutdown(timeout=1)
        excluded.shutdown(timeout=1)


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://api.groq.com/openai/v1/chat/completions", "groq"),
        ("https://api.deepseek.com/chat/completions", "deepseek"),
        ("https://api.mistral.ai/v1/chat/completions", "mistral_ai"),
        ("https://api.x.ai/v1/chat/completions", "x_ai"),
        ("https://openrouter.ai/api/v1/chat/completions", "openrouter"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/chat/completions", "gcp.gemini"),
        ("https://my-res.openai.azure.com/openai/deployments/d/chat/completions", "azure.ai.openai"),
        ("https://api.anthropic.com/v1/messages", "anthropic"),
    ],
)
def test_well_known_hosts_get_their_provider_name(url, provider):
    from sessionkit._payloads.llm import match

    found = match("POST", url, {})
    assert found is not None and found.provider == provider
    assert match("GET", url, {}) is None and match("POST", url.rsplit("/", 1)[0] + "/files", {}) is None


def test_content_is_captured_only_when_asked_and_secrets_never(server):
    for capture in (False, True):
        c = sessionkit.Client(
            exporter="memory", llm_base_urls={server.url: "local-vllm"}, capture_content=capture, max_content_length=200
        )
        try:
            with c.session("s"):
                oai(server).chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "my secret question"}]
                )
                ant(server).messages.create(
                    model="c", max_tokens=5, system="sys prompt", messages=[{"role": "user", "content": "x" * 1000}]
                )
            spans = llm_spans(c)
            everything = repr([dict(x.attributes) for x in spans_of(c)])
            assert API_KEY not in everything and ANTHROPIC_KEY not in everything
            assert spans[0].attributes["gen_ai.provider.name"] == "local-vllm"
            if capture:
                assert "my secret question" in spans[0].attributes["gen_ai.input.messages"]
                assert '"role": "assistant"' in spans[0].attributes["gen_ai.output.messages"]
                assert "sys prompt" in spans[1].attributes["gen_ai.system_instructions"]
                assert len(spans[1].attributes["gen_ai.input.messages"]) <= 200
            else:
                assert "my secret question" not in everything
                assert not any(
                    k.startswith(("gen_ai.input", "gen_ai.output", "input.", "output."))
                    for x in spans
                    for k in x.attributes
                )
        finally:
            c.shutdown(timeout=1)


def test_tokens_are_not_counted_twice_when_the_sdk_makes_its_own_span(server, llm_client):
    client = anthropic.Anthropic(
        base_url=server.anthropic_base_url,
        api_key="k",
        max_retries=0,
        open_telemetry={"tracer_provider": llm_client.tracer_provider},
    )
    with llm_client.session("s") as s:
        client.messages.create(model="claude-d", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    own = [x for x in spans_of(llm_client) if x.instrumentation_scope.name != "sessionkit"]
    assert own, "anthropic made no span of its own"
    assert own[0].attributes.get("sessionkit.llm.counted_in_child") is True
    reported = server.reported[-1]
    summary = s.summary()
    assert (summary.llm_calls, summary.input_tokens, summary.output_tokens) == (
        1,
        reported.input_tokens,
        reported.output_tokens,
    )


def test_llm_decorator_around_a_real_sdk_call_is_not_counted_twice(server, llm_client):
    @llm_client.llm(model="wrapper")
    def ask():
        return oai(server).chat.completions.create(model="inner", messages=[])

    with llm_client.session("s") as s:
        ask()
    assert s.summary().llm_calls == 1
    wrapper = next(x for x in spans_of(llm_client) if x.name == "chat wrapper")
    assert "llm.token_count.total" not in wrapper.attributes  # Phoenix would add both up


def test_metrics_duration_and_token_usage(server, llm_client):
    with llm_client.session("s"):
        oai(server).chat.completions.create(model="m", messages=[])
    (duration,) = metric_points(llm_client, "gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.attributes["gen_ai.provider.name"] == "openai"
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in metric_points(llm_client, "gen_ai.client.token.usage")}
    assert usage == {"input": server.reported[-1].input_tokens, "output": server.reported[-1].output_tokens}


def test_metrics_come_from_every_llm_span_whether_exported_or_dropped(server):
    # The GenAI histograms are derived from finished spans in the export thread; a span the
    # full queue drops is observed where it is dropped, so metrics stay complete.
    import threading

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Stuck(SpanExporter):  # a collector that hangs until released
        def __init__(self):
            self.release = threading.Event()
            self.exported = 0

        def export(self, spans):
            self.release.wait(10)
            self.exported += len(spans)
            return SpanExportResult.SUCCESS

    reader = InMemoryMetricReader()
    exporter = Stuck()
    c = sessionkit.Client(
        exporter=exporter,
        meter_provider=MeterProvider(metric_readers=[reader]),
        llm_base_urls=[server.url],
        max_queue_size=1,
        max_export_batch_size=1,
        export_interval=0.01,
    )
    try:
        with c.session("s"):
            for _ in range(6):
                oai(server).chat.completions.create(model="m", messages=[])
                time.sleep(0.05)  # lets the export thread take a batch and get stuck on it
        exporter.release.set()
        assert c.flush(timeout=10)
        stats = c.stats()
        assert stats.dropped_spans > 0 and exporter.exported > 0  # both paths ran
        points = [
            p
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "gen_ai.client.operation.duration"
            for p in m.data.data_points
        ]
        assert sum(p.count for p in points) == 6
        assert points[0].attributes["gen_ai.request.model"] == "m"
    finally:
        exporter.release.set()
        c.shutdown(timeout=2)


def test_instrumenting_is_idempotent_and_uninstrument_restores_the_originals(server):
    patch.unpatch_all()
    original = httpx.Client.__dict__["send"]
    original2 = httpx2.AsyncClient.__dict__["send"]
    a = sessionkit.Client(exporter="memory", llm_base_urls=[server.url])
    b = sessionkit.Client(exporter="memory", llm_base_urls=[server.url])
    sessionkit.init(exporter="memory", llm_base_urls=[server.url])
    sessionkit.init(exporter="memory", llm_base_urls=[server.url])
    wrapper = httpx.Client.__dict__["send"]
    assert wrapper.__wrapped__ is original  # wrapped once, not once per client or init
    a.uninstrument()
    assert httpx.Client.__dict__["send"] is wrapper  # b and the default client still record
    b.uninstrument()
    sessionkit.get_client().uninstrument()
    assert httpx.Client.__dict__["send"] is original
    assert httpx2.AsyncClient.__dict__["send"] is original2
    a.shutdown(timeout=1)
    b.shutdown(timeout=1)


def test_instrumentor_follows_the_opentelemetry_conventions(server):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from sessionkit.instrumentation import LLMHttpInstrumentor

    patch.unpatch_all()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = LLMHttpInstrumentor()
    instrumentor.instrument(tracer_provider=provider, llm_base_urls=[server.url])
    try:
        assert instrumentor.is_instrumented_by_opentelemetry
        assert instrumentor.client is not None and instrumentor.client.tracer_provider is provider
        httpx.post(server.openai_base_url + "/chat/completions", json={"model": "auto", "messages": []})
        assert [s.name for s in exporter.get_finished_spans()] == ["chat auto"]
    finally:
        instrumentor.uninstrument()
    assert not patch.is_patched(httpx.Client)


def test_entry_point_is_declared():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="opentelemetry_instrumentor")}
    assert names.get("sessionkit_llm") == "sessionkit.instrumentation:LLMHttpInstrumentor"


def test_a_stream_that_reports_no_usage_is_marked_and_the_summary_says_so(server, llm_client):
    sdk = oai(server)
    with llm_client.session("s") as s:
        for _ in sdk.chat.completions.create(model="gpt-4o-mini", messages=[], stream=True):
            pass  # the SDK's default: no stream_options, so no usage
        for _ in sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[], stream=True, stream_options={"include_usage": True}
        ):
            pass
    without, with_usage = llm_spans(llm_client)
    assert without.attributes["sessionkit.llm.usage_missing"] is True
    assert "gen_ai.usage.input_tokens" not in without.attributes
    assert "sessionkit.llm.usage_missing" not in with_usage.attributes
    summary = s.summary()
    assert summary.llm_calls == 2 and summary.llm_calls_without_usage == 1
    assert summary.input_tokens == with_usage.attributes["gen_ai.usage.input_tokens"]
    assert summary.cost_usd is None and summary.cost_incomplete  # unknown tokens: unknown cost, never $0
    assert summary.turns[0].llm_calls_without_usage == 1 and summary.turns[1].llm_calls_without_usage == 0
    assert "reported no usage" in s._repr_html_()


def test_a_call_outside_any_context_follows_the_main_threads_session_through_the_one_resolver(server):
    # A callback run in an empty context (as an event loop's or a C library's) belongs to the
    # main thread's session: the client's resolver says so, and the wire asks it (for the
    # sampling check and the conversation's history key), so a session that sampling dropped
    # records no call there either, and the wire skips the call's work.
    import contextvars

    c = sessionkit.Client(exporter="memory", sample_rate=0.5)
    try:
        fate = {}
        for i in range(40):  # sampling decides from the id alone: find one id it keeps, one it drops
            probe = c.start_session("probe", session_id=f"session-{i}")
            fate[probe.sampled] = probe.id
            probe.end()
        c.exporter.clear()
        dropped = fate[False]
        kept = c.start_session("kept", session_id=fate[True])
        assert kept.sampled
        contextvars.Context().run(lambda: oai(server).chat.completions.create(model="gpt-4o-mini", messages=[]))
        assert [s.attributes["session.id"] for s in llm_spans(c)] == [kept.id]
        kept.end()
        c.exporter.clear()
        unsampled = c.start_session("dropped", session_id=dropped)
        assert not unsampled.sampled
        contextvars.Context().run(lambda: oai(server).chat.completions.create(model="gpt-4o-mini", messages=[]))
        assert llm_spans(c) == []
        assert len(server.reported) == 2  # both calls reached the server
        unsampled.end()
    finally:
        c.shutdown(timeout=2)


def test_the_stream_helper_reports_usage_only_when_asked(server, llm_client):
    """docs/spans.md: openai's chat.completions.stream() sends no stream_options by itself."""
    with llm_client.session("s"):
        for options in (None, {"include_usage": True}):
            extra = {} if options is None else {"stream_options": options}
            with oai(server).chat.completions.stream(model="gpt-4o-mini", messages=[], **extra) as stream:
                for _ in stream:
                    pass
    plain, asked = llm_spans(llm_client)
    assert plain.attributes.get("sessionkit.llm.usage_missing") is True
    assert "gen_ai.usage.input_tokens" not in plain.attributes
    assert asked.attributes["gen_ai.usage.output_tokens"] == server.reported[-1].output_tokens
    assert "sessionkit.llm.usage_missing" not in asked.attributes

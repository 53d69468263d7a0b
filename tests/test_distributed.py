"""Sessions across processes and services, with real processes: an ASGI tool service (uvicorn)
and a WSGI one (wsgiref) each in a process of its own, called from the test (the agent) inside
a session; two replicas of a chat server; process pools (fork and spawn); session sampling in
two processes. Every process exports to the test's OTLP receiver."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import aiohttp
import httpx
import pytest
import requests
import sessionkit
from sessionkit.integrations.asgi import SessionMiddleware

from helpers import Outsider, spans_of

# An ASGI tool service: POST /lookup runs a tool span; GET /fail raises. Prints its port.
ASGI_SERVICE = """
import socket, sys
import sessionkit, uvicorn
from sessionkit.integrations.asgi import SessionMiddleware

client = sessionkit.init(service_name=sys.argv[2], exporter="otlp", endpoint=sys.argv[1], export_interval=0.1)

@client.tool
def lookup(query):
    return query.upper()

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/fail":
        raise RuntimeError("the tool service failed")
    answer = lookup(scope["path"]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": answer})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)  # (connections wait in the backlog until the server runs)
print("PORT", sock.getsockname()[1], flush=True)
config = uvicorn.Config(SessionMiddleware(app), log_level="critical", lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
"""

# A WSGI tool service on wsgiref. Prints its port.
WSGI_SERVICE = """
import sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
import sessionkit
from sessionkit.integrations.wsgi import SessionMiddleware

client = sessionkit.init(service_name="wsgi-tools", exporter="otlp", endpoint=sys.argv[1], export_interval=0.1)

@client.tool
def search(path):
    return path[::-1]

def app(environ, start_response):
    answer = search(environ["PATH_INFO"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [answer]

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server("127.0.0.1", 0, SessionMiddleware(app), handler_class=Quiet)
print("PORT", server.server_port, flush=True)
server.serve_forever()
"""


class Service:
    """A service in a process of its own, stopped (and its spans flushed at exit) at the end."""

    def __init__(self, code: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT"):
            self.proc.kill()
            raise AssertionError(
                f"the service did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@pytest.fixture
def outsider() -> Iterator[Outsider]:
    server = Outsider()
    yield server
    server.stop()


@pytest.fixture
def services(receiver) -> Iterator[tuple[Service, Service]]:
    asgi = Service(ASGI_SERVICE, receiver.endpoint, "asgi-tools")
    wsgi = Service(WSGI_SERVICE, receiver.endpoint)
    yield asgi, wsgi
    asgi.stop()
    wsgi.stop()


def test_a_turn_spans_the_agent_and_two_tool_services_and_nothing_leaks_to_other_hosts(receiver, services, outsider):
    asgi, wsgi = services
    agent = sessionkit.Client(
        service_name="agent",
        exporter="otlp",
        endpoint=receiver.endpoint,
        export_interval=0.1,
        propagate_to=[asgi.url, f"127.0.0.1:{wsgi.port}"],
    )
    try:
        with agent.session("support", user_id="u-7", thread_id="th-1") as session:
            for turn_no in (1, 2):
                with session.turn(f"question {turn_no}"), agent.tracer.start_as_current_span("plan") as plan:
                    assert httpx.post(f"{asgi.url}/weather").text == "/WEATHER"
                    assert requests.get(f"{wsgi.url}/abc", timeout=10).text == "cba/"
                    httpx.get(outsider.url)
                    requests.get(outsider.url, timeout=10)

                    async def other() -> None:
                        async with aiohttp.ClientSession() as http:
                            async with http.get(outsider.url) as response:
                                await response.read()
                            async with http.get(f"{wsgi.url}/aio") as response:  # allowed: carries it
                                assert await response.text() == "oia/"

                    asyncio.run(other())
                    if turn_no == 1:
                        first_plan = plan.get_span_context()
        agent.flush()
    finally:
        agent.shutdown(timeout=5)
    asgi.stop()
    wsgi.stop()

    # The hosts not listed got nothing from sessionkit.
    assert len(outsider.headers) == 6
    assert all("baggage" not in h and "traceparent" not in h for h in outsider.headers)

    def of(service: str) -> list:
        return [s for s in receiver.spans if s.resource.get("service.name") == service]

    assert receiver.wait_for(lambda spans: len([s for s in spans if s.name == "execute_tool search"]) == 4, timeout=15)
    tools = [s for s in of("asgi-tools") if s.name == "execute_tool lookup"]
    searches = [s for s in of("wsgi-tools") if s.name == "execute_tool search"]
    assert len(tools) == 2 and len(searches) == 4  # (two a turn: requests and aiohttp)
    plans = {s.trace_id: s for s in of("agent") if s.name == "plan"}
    assert len(plans) == 2  # one trace per turn
    for span in tools + searches:
        assert span.attributes["session.id"] == session.id
        assert span.resource["openinference.project.name"] == "agent"  # the caller's project: one conversation
        assert span.resource["service.name"] in ("asgi-tools", "wsgi-tools")  # each service's own name
        assert span.attributes["user.id"] == "u-7"
        assert span.attributes["gen_ai.conversation.id"] == "th-1"
        assert span.trace_id in plans  # the caller's turn
        assert span.attributes["sessionkit.turn.index"] == plans[span.trace_id].attributes["sessionkit.turn.index"]
    # Each request's server span sits under the agent's span, the tool span under it.
    servers = [s for s in receiver.spans if s.kind == 2]  # SERVER
    assert sorted(s.name for s in servers) == [
        "GET /abc",
        "GET /abc",
        "GET /aio",
        "GET /aio",
        "POST /weather",
        "POST /weather",
    ]
    for server in servers:
        assert server.parent_span_id == plans[server.trace_id].span_id
        assert server.attributes["http.response.status_code"] == 200
    first_trace = format(first_plan.trace_id, "032x")
    assert {s.parent_span_id for s in tools + searches if s.trace_id == first_trace} == {
        s.span_id for s in servers if s.trace_id == first_trace
    }
    # The caller's figures are its own, and say how often the session went elsewhere: three
    # allowed requests a turn (httpx to the ASGI service, requests and aiohttp to the WSGI one).
    assert session.summary().requests_handed_on == 6
    (record,) = [s for s in of("agent") if s.attributes.get("sessionkit.span.type") == "session"]
    assert record.attributes["sessionkit.session.requests_handed_on"] == 6
    assert record.attributes["sessionkit.session.llm_calls"] == 0  # the services made none here either
    # The services kept no session record of their own: the agent's process has it.
    assert not [s for s in of("asgi-tools") + of("wsgi-tools") if s.attributes.get("sessionkit.span.type")]


def test_a_request_without_session_headers_runs_as_before_and_a_failure_is_the_services_error(receiver):
    asgi = Service(ASGI_SERVICE, receiver.endpoint, "asgi-tools")
    try:
        assert httpx.post(f"{asgi.url}/plain").text == "/PLAIN"
        assert httpx.get(f"{asgi.url}/fail").status_code == 500
    finally:
        asgi.stop()
    assert receiver.wait_for(lambda spans: any(s.name == "GET /fail" for s in spans), timeout=15)
    (tool,) = [s for s in receiver.spans if s.name == "execute_tool lookup"]
    assert "session.id" not in tool.attributes  # no caller's session: none made up
    (failed,) = [s for s in receiver.spans if s.name == "GET /fail"]
    assert failed.status_code == 2  # ERROR
    assert "exception" in failed.events


CHAT_REPLICA = """
import socket, sys
import sessionkit, uvicorn
from sessionkit.integrations.asgi import SessionMiddleware

client = sessionkit.init(service_name="chat", exporter="otlp", endpoint=sys.argv[1], export_interval=0.1,
                         resource_attributes={"replica": sys.argv[2]})

async def app(scope, receive, send):
    with client.tracer.start_as_current_span("reply") as span:
        span.set_attribute("replica", sys.argv[2])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": sys.argv[2].encode()})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)  # (connections wait in the backlog until the server runs)
print("PORT", sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(SessionMiddleware(app), log_level="critical", lifespan="off")).run(sockets=[sock])
"""


def test_two_replicas_behind_alternating_requests_make_one_session_with_every_turn(receiver):
    replicas = [Service(CHAT_REPLICA, receiver.endpoint, name) for name in ("a", "b")]
    agent = sessionkit.Client(
        service_name="front", exporter="otlp", endpoint=receiver.endpoint, propagate_to=["127.0.0.1"]
    )
    try:
        with agent.session("chat") as session:
            answers = []
            for i in range(6):
                with session.turn(f"message {i}"):
                    answers.append(httpx.get(replicas[i % 2].url).text)
        assert answers == ["a", "b"] * 3
        agent.flush()
    finally:
        agent.shutdown(timeout=5)
        for replica in replicas:
            replica.stop()
    assert receiver.wait_for(lambda spans: len([s for s in spans if s.name == "reply"]) == 6, timeout=15)
    replies = sorted(
        (s for s in receiver.spans if s.name == "reply"), key=lambda s: s.attributes["sessionkit.turn.index"]
    )
    assert {s.attributes["session.id"] for s in replies} == {session.id}
    assert [s.attributes["sessionkit.turn.index"] for s in replies] == [1, 2, 3, 4, 5, 6]
    assert [s.attributes["replica"] for s in replies] == ["a", "b"] * 3
    turns = {s.trace_id for s in receiver.spans if s.attributes.get("sessionkit.span.type") == "turn"}
    assert {s.trace_id for s in replies} == turns  # each reply inside its turn's trace


POOLS = """
import sys, multiprocessing, concurrent.futures
import sessionkit

def work(x):
    client = sessionkit.get_client()
    with client.tracer.start_as_current_span("work") as span:
        span.set_attribute("x", x)
        return sessionkit.current_session().id

if __name__ == "__main__":
    method = sys.argv[2]
    sessionkit.init(service_name="parent", exporter="otlp", endpoint=sys.argv[1], export_interval=0.1)
    with sessionkit.session("batch") as session:
        with session.turn("fan out"):
            context = multiprocessing.get_context(method)
            with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
                ids = list(pool.map(work, range(3)))
            with context.Pool(2) as pool:
                ids += pool.map(work, range(3, 6))
                ids.append(pool.apply_async(work, (6,)).get(timeout=30))
    assert ids == [session.id] * 7, ids
    print(session.id)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_work_submitted_in_a_session_runs_in_the_session(receiver, tmp_path, method):
    script = tmp_path / "pools.py"
    script.write_text(textwrap.dedent(POOLS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    proc = subprocess.run(
        [sys.executable, str(script), receiver.endpoint, method], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    session_id = proc.stdout.strip()
    assert receiver.wait_for(lambda spans: len([s for s in spans if s.name == "work"]) == 7, timeout=15)
    works = [s for s in receiver.spans if s.name == "work"]
    assert sorted(s.attributes["x"] for s in works) == list(range(7))
    (turn,) = [s for s in receiver.spans if s.attributes.get("sessionkit.span.type") == "turn"]
    for span in works:
        assert span.attributes["session.id"] == session_id
        assert span.trace_id == turn.trace_id  # inside the turn that submitted it
        assert span.attributes["sessionkit.turn.index"] == 1


SAMPLED = """
import sys
import sessionkit

client = sessionkit.init(service_name=sys.argv[2], exporter="otlp", endpoint=sys.argv[1], sample_rate=0.5)
kept = []
for i in range(1000):
    if sys.argv[2] == "origin":
        scope = client.session("sampled", session_id=f"session-{i}")
    else:  # a second service, continuing each session from its id (no trace context)
        scope = client.continue_session({"baggage": f"session.id=session-{i}"})
    with scope as session:
        with client.tracer.start_as_current_span("step"):
            pass
        kept.append(session.sampled)
        assert session.summary().sampled == session.sampled
client.shutdown()
print(sum(kept))
"""


def test_sampling_keeps_or_drops_whole_sessions_the_same_way_in_two_processes(receiver, tmp_path):
    script = tmp_path / "sampled.py"
    script.write_text(SAMPLED)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    counts = []
    for name in ("origin", "peer"):
        proc = subprocess.run(
            [sys.executable, str(script), receiver.endpoint, name], capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        counts.append(int(proc.stdout.strip()))
    assert counts[0] == counts[1]
    assert 420 <= counts[0] <= 580  # 0.5 of 1000, within 5 standard deviations
    steps: dict[str, dict[str, int]] = {"origin": {}, "peer": {}}
    for span in receiver.spans:
        if span.name == "step":
            by = steps[span.resource["service.name"]]
            by[span.attributes["session.id"]] = by.get(span.attributes["session.id"], 0) + 1
            assert span.attributes["sessionkit.sample_rate"] == 0.5
    assert len(steps["origin"]) == counts[0]
    assert steps["origin"] == steps["peer"]  # the same sessions kept, each whole, in both
    assert set(steps["origin"].values()) == {1}
    records = [s for s in receiver.spans if s.attributes.get("sessionkit.span.type") == "session"]
    assert len(records) == 2 * counts[0]  # (the peer's sessions have no trace context: records of their own)


# -- incoming headers ---------------------------------------------------------------------------------
def test_continue_session_takes_the_callers_ids_and_parent(client):
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {"traceparent": parent, "baggage": "session.id=abc-1,user.id=u%201,sessionkit.turn.index=4,other=x"}
    with client.continue_session(headers) as session:
        assert session is not None and session.id == "abc-1" and session.user_id == "u 1"
        with client.tracer.start_as_current_span("work"):
            pass
    assert not session.is_active
    (work,) = [s for s in spans_of(client) if s.name == "work"]
    assert format(work.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(work.parent.span_id, "016x") == "b7ad6b7169203331" and work.parent.is_remote
    assert work.attributes["session.id"] == "abc-1"
    assert work.attributes["sessionkit.turn.index"] == 4
    assert [s for s in spans_of(client) if s.name == "work"] == [work]  # no record of its own


@pytest.mark.parametrize(
    "headers",
    [
        {"baggage": "session.id=" + "x" * 9000},
        {"baggage": "session.id=ab\x01cd"},
        {"baggage": ",".join(f"k{i}=v" for i in range(99)) + ",session.id=abc"},
        {"baggage": "session.id=" + "y" * 300},
        {"baggage": "session.id=abc,sessionkit.turn.index=-3"},
        {"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"},
        {"traceparent": "zz-not-a-traceparent"},
        {"traceparent": 7, "baggage": b"\xff\xfe"},
        [(b"baggage", b"session.id=\x00")],
    ],
)
def test_bad_incoming_headers_change_nothing_and_raise_nothing(client, headers, caplog):
    caplog.set_level(logging.DEBUG, "sessionkit")  # (one warning a minute; the rest at debug)
    with client.continue_session(headers) as session, client.tracer.start_as_current_span("work") as span:
        assert span.get_span_context().trace_id != 0x0AF7651916CD43DD8448EB211C80319C
    if isinstance(headers, dict) and "turn.index=-3" in str(headers.get("baggage")):
        assert session is not None and "sessionkit.turn.index" not in dict(spans_of(client)[-1].attributes)
    else:
        assert session is None
        (work,) = [s for s in spans_of(client) if s.name == "work"]
        assert "session.id" not in work.attributes and work.parent is None
    assert len([r for r in caplog.records if "ignored an incoming" in r.getMessage()]) == 1


def test_a_public_edge_ignores_incoming_session_headers(client):
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "baggage": "session.id=someone-elses",
    }
    with client.continue_session(headers, trust=False) as session, client.tracer.start_as_current_span("work"):
        assert session is None
    edge = sessionkit.Client(exporter="memory", continue_incoming=False)
    try:
        with edge.continue_session(headers) as session, edge.tracer.start_as_current_span("work"):
            assert session is None
        (work,) = spans_of(edge)
        assert work.parent is None and "session.id" not in work.attributes
    finally:
        edge.shutdown(timeout=2)


def test_misuse_of_continue_session_is_a_clear_error(client):
    with pytest.raises(TypeError, match="request's headers"):
        client.continue_session(42)
    with pytest.raises(TypeError, match="trust"):
        client.continue_session({}, trust="yes")
    with pytest.raises(TypeError, match="SessionMiddleware"):
        SessionMiddleware(None)


def test_bad_headers_through_a_real_server_get_a_normal_answer(receiver):
    asgi = Service(ASGI_SERVICE, receiver.endpoint, "asgi-tools")
    try:
        for headers in (
            {"baggage": "session.id=" + "x" * 7000},
            {"baggage": ",".join(f"k{i}=v" for i in range(100))},
            {"traceparent": "00-xyz", "baggage": "session.id="},
        ):
            assert httpx.post(f"{asgi.url}/ok", headers=headers).text == "/OK"
    finally:
        err = asgi.stop()
    assert "Traceback" not in err


# -- outgoing: which targets, what goes ---------------------------------------------------------------
def _targets(*entries: str):
    from sessionkit._propagation import Targets
    from sessionkit._wire.outgoing import targets_of

    assert isinstance(targets_of(entries), Targets)
    return targets_of(entries)


def test_targets_match_prefixes_hosts_patterns_and_ports():
    targets = _targets("https://tools.internal/api", "search.local", "*.svc.cluster.local", "127.0.0.1:8081")
    assert targets.allows("https://tools.internal/api/v1/x")
    assert targets.allows("HTTPS://Tools.Internal/api")
    assert not targets.allows("https://tools.internal/admin")
    assert not targets.allows("http://tools.internal/api")  # the scheme is part of a prefix
    assert targets.allows("http://search.local:9000/q") and targets.allows("https://search.local/")
    assert targets.allows("http://a.b.svc.cluster.local/x")
    assert not targets.allows("http://svc.cluster.local.evil.com/x")
    assert targets.allows("http://127.0.0.1:8081/") and not targets.allows("http://127.0.0.1:8082/")
    assert not _targets().allows("http://search.local/")


def test_an_llm_api_gets_the_session_only_from_an_entry_naming_its_host():
    everything = _targets("*")
    assert everything.allows("http://tools.internal/x")
    assert not everything.allows("https://api.openai.com/v1/chat/completions")
    assert not everything.allows("https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse")
    assert not everything.allows("http://127.0.0.1:9/v1/chat/completions", llm=True)  # recognised as one
    assert _targets("api.openai.com").allows("https://api.openai.com/v1/chat/completions")
    assert _targets("127.0.0.1:9").allows("http://127.0.0.1:9/v1/chat/completions", llm=True)


def test_an_llm_call_recognised_on_an_unlisted_host_gets_nothing_from_a_wildcard(outsider):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    port = outsider.url.rsplit(":", 1)[1]
    for entries, expected in (("*", False), (f"127.0.0.1:{port}", True)):
        c = sessionkit.Client(exporter="memory", propagate_to=entries)
        try:
            with c.session("s"):
                httpx.post(f"{outsider.url}/v1/chat/completions", json=body)
            assert [s for s in spans_of(c) if s.attributes.get("gen_ai.operation.name") == "chat"]  # an LLM call
        finally:
            c.shutdown(timeout=2)
        assert ("baggage" in outsider.headers[-1]) is expected


def test_existing_headers_are_merged_not_replaced(outsider):
    c = sessionkit.Client(exporter="memory", propagate_to="127.0.0.1", propagate_baggage="session")
    theirs = "00-11111111111111111111111111111111-2222222222222222-01"
    try:
        with c.session("s", user_id="u-secret") as session:
            httpx.get(outsider.url, headers={"traceparent": theirs, "baggage": "tenant=acme,session.id=theirs"})
            httpx.get(outsider.url, headers={"baggage": "tenant=acme"})
            requests.get(outsider.url, headers={"Baggage": "tenant=acme"}, timeout=10)
    finally:
        c.shutdown(timeout=2)
    first, second, third = outsider.headers
    assert first["traceparent"] == theirs
    assert first["baggage"] == "tenant=acme,session.id=theirs"  # a key already there is kept
    project = "openinference.project.name=sessionkit"  # the caller's project goes with its session
    assert second["baggage"] == f"tenant=acme,session.id={session.id},{project}"
    assert third["baggage"] == f"tenant=acme,session.id={session.id},{project}"
    assert all("u-secret" not in h.get("baggage", "") for h in outsider.headers)  # user off


def test_outside_a_session_nothing_is_added(outsider):
    c = sessionkit.Client(exporter="memory", propagate_to="127.0.0.1")
    try:
        with c.tracer.start_as_current_span("no session"):
            httpx.get(outsider.url)
        assert c.propagation_headers() == {}
        with c.session("s") as session, c.tracer.start_as_current_span("in one") as span:
            headers = c.propagation_headers()
    finally:
        c.shutdown(timeout=2)
    assert "traceparent" not in outsider.headers[0] and "baggage" not in outsider.headers[0]
    assert (
        headers["baggage"] == f"session.id={session.id},sessionkit.turn.index=1,openinference.project.name=sessionkit"
    )
    assert headers["traceparent"].split("-")[2] == format(span.get_span_context().span_id, "016x")


@pytest.mark.parametrize(
    ("setting", "value", "fix"),
    [
        ("propagate_to", ["tools internal"], "host pattern"),
        ("propagate_to", ["ftp://x/"], "http:// or https://"),
        ("propagate_to", 5, "URL prefixes"),
        ("propagate_baggage", ["session", "secrets"], "unknown: secrets"),
        ("sample_rate", 1.5, "less than or equal to 1"),
        ("sample_rate", float("nan"), "finite"),
        ("continue_incoming", "maybe", "valid boolean"),
    ],
)
def test_bad_distributed_settings_name_the_setting_and_the_fix(setting, value, fix):
    with pytest.raises(sessionkit.ConfigError, match=setting) as info:
        sessionkit.Client(exporter="memory", **{setting: value})
    assert fix in str(info.value)


def test_the_distributed_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SESSIONKIT_PROPAGATE_TO", "tools.internal, https://api.example/")
    monkeypatch.setenv("SESSIONKIT_PROPAGATE_BAGGAGE", "none")
    monkeypatch.setenv("SESSIONKIT_CONTINUE_INCOMING", "false")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    c = sessionkit.Client(exporter="memory")
    try:
        assert c.config.propagate_to == ("tools.internal", "https://api.example/")
        assert c.config.propagate_baggage == ()
        assert c.config.continue_incoming is False
        assert c.config.sample_rate == 0.25
    finally:
        c.shutdown(timeout=2)


def test_a_dropped_session_records_no_span_but_keeps_its_summary():
    c = sessionkit.Client(exporter="memory", sample_rate=0.0)
    try:
        with c.session("dropped") as session:
            with session.turn("hi"), c.tracer.start_as_current_span("inside") as span:
                assert not span.is_recording()
            with c.tracer.start_as_current_span("implicit") as span:
                assert not span.is_recording()
        summary = session.summary()
        assert spans_of(c) == []
        assert summary.sampled is False and summary.end_state.value == "success" and summary.turn_count >= 1
        with c.tracer.start_as_current_span("outside"):
            pass
        assert spans_of(c) == []  # the rate applies outside sessions too (by trace id)
    finally:
        c.shutdown(timeout=2)
    kept = sessionkit.Client(exporter="memory")
    try:
        with kept.session("kept"), kept.tracer.start_as_current_span("inside"):
            pass
        assert all("sessionkit.sample_rate" not in s.attributes for s in spans_of(kept))  # rate 1: no attribute
    finally:
        kept.shutdown(timeout=2)


def test_overlapping_requests_of_one_session_each_keep_their_own_turn(client):
    def headers(trace: str, turn: int) -> dict[str, str]:
        return {
            "traceparent": f"00-{trace * 32}-{'1' * 16}-01",
            "baggage": f"session.id=s-1,sessionkit.turn.index={turn}",
        }

    first_in, first_out = threading.Event(), threading.Event()
    continued: list[object] = []  # asserted on the test's thread: an assert in a thread only warns

    def second() -> None:
        first_in.wait(5)
        with client.continue_session(headers("b", 2)) as session:
            continued.append(session)
            first_out.wait(5)  # the first request ends while this one runs
            with client.tracer.start_as_current_span("second"):
                pass

    worker = threading.Thread(target=second)
    worker.start()
    with client.continue_session(headers("a", 1)), client.tracer.start_as_current_span("first"):
        first_in.set()
        import time

        time.sleep(0.2)
    first_out.set()
    worker.join(10)
    assert len(continued) == 1 and continued[0] is not None
    spans = {s.name: s for s in spans_of(client)}
    assert spans["first"].attributes["sessionkit.turn.index"] == 1
    assert spans["second"].attributes["sessionkit.turn.index"] == 2
    assert spans["second"].attributes["session.id"] == "s-1"
    assert format(spans["second"].context.trace_id, "032x") == "b" * 32


# A FastAPI tool service that traces itself (OpenTelemetry's FastAPI instrumentation) with
# SessionMiddleware added as argv[3] says: "add_middleware" (inside FastAPI's own server span)
# or "wrap" (around the whole app). Prints its port.
FASTAPI_SERVICE = """
import socket, sys
import sessionkit, uvicorn
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from sessionkit.integrations.asgi import SessionMiddleware

client = sessionkit.init(service_name="fastapi-tools", exporter="otlp", endpoint=sys.argv[1], export_interval=0.1)
app = FastAPI()

@client.tool
def lookup(order):
    return order.upper()

@app.get("/orders/{order}")
def order(order: str):
    return {"status": lookup(order)}

FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
if sys.argv[3] == "add_middleware":
    app.add_middleware(SessionMiddleware)
    served = app
else:
    served = SessionMiddleware(app)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print("PORT", sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(served, log_level="critical", lifespan="off")).run(sockets=[sock])
"""


@pytest.mark.parametrize("how", ["add_middleware", "wrap"])
def test_an_app_that_traces_itself_has_one_server_span_per_request_each_in_the_session(receiver, how):
    service = Service(FASTAPI_SERVICE, receiver.endpoint, "fastapi-tools", how)
    agent = sessionkit.Client(
        service_name="agent", exporter="otlp", endpoint=receiver.endpoint, propagate_to=[service.url]
    )
    try:
        with agent.session("support") as session:
            for turn_no in (1, 2):
                with session.turn(f"question {turn_no}"), agent.tracer.start_as_current_span("plan"):
                    for order in ("o-1", "o-2"):
                        assert httpx.get(f"{service.url}/orders/{order}").json() == {"status": order.upper()}
        agent.flush()
    finally:
        agent.shutdown(timeout=5)
    assert receiver.wait_for(lambda spans: len([s for s in spans if s.name == "execute_tool lookup"]) == 4, timeout=15)
    service.stop()
    mine = [s for s in receiver.spans if s.resource.get("service.name") == "fastapi-tools"]
    servers = [s for s in mine if s.kind == 2]  # SERVER
    assert len(servers) == 4  # one per request
    fastapi = [s for s in mine if s.name == "GET /orders/{order}"]
    assert len(fastapi) == 4  # FastAPI's own span: the server span, or (inside ours) an INTERNAL child
    assert {s.kind for s in fastapi} == ({2} if how == "add_middleware" else {1})
    plans = {s.span_id: s for s in receiver.spans if s.name == "plan"}
    for server in servers:
        assert server.attributes["session.id"] == session.id  # the first request of each turn too
        assert server.parent_span_id in plans
        assert (
            server.attributes["sessionkit.turn.index"]
            == plans[server.parent_span_id].attributes["sessionkit.turn.index"]
        )
    tools = [s for s in mine if s.name == "execute_tool lookup"]
    assert {t.parent_span_id for t in tools} <= {s.span_id for s in servers} | {
        s.span_id for s in mine if s.parent_span_id in {x.span_id for x in servers}
    }
    assert all(s.attributes.get("session.id") == session.id for s in mine)

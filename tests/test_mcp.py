"""MCP calls in the session, through the real ``mcp`` SDK: a server on 127.0.0.1 over
streamable HTTP (uvicorn, started by the test) and one over stdio (a subprocess with its own
sessionkit client exporting to the test's OTLP receiver)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sessionkit
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.server.mcpserver import MCPServer

from helpers import spans_of

SERVER = """
import sys
import sessionkit
from mcp.server.mcpserver import MCPServer

client = sessionkit.init(service_name="mcp-server", exporter="otlp", endpoint=sys.argv[1], export_interval=0.1)
server = MCPServer("calculator")


@server.tool()
def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    return a + b


server.run("stdio")
"""


def calculator() -> MCPServer:
    server = MCPServer("calculator")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def fail() -> int:
        """Always fails."""
        raise ValueError("no")

    return server


@pytest.fixture
def http_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = calculator().streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client():
    c = sessionkit.Client(exporter="memory", service_name="mcp-client")
    yield c
    c.shutdown(timeout=2)


async def call_add(target):
    async with Client(target) as mcp:
        tools = await mcp.list_tools()
        result = await mcp.call_tool("add", {"a": 2, "b": 3})
    return [t.name for t in tools.tools], result


def test_tool_calls_over_streamable_http_are_spans_of_the_session_on_both_sides(http_server, client):
    with client.session("mcp") as session:
        names, result = asyncio.run(call_add(http_server))
    assert "add" in names and result.structured_content == {"result": 5}
    spans = spans_of(client)
    (sent,) = [s for s in spans if s.name == "MCP send tools/call add"]
    assert sent.attributes["mcp.method.name"] == "tools/call"
    assert sent.attributes["gen_ai.operation.name"] == "execute_tool"
    assert sent.attributes["gen_ai.tool.name"] == "add"
    assert sent.attributes["openinference.span.kind"] == "TOOL"
    assert sent.attributes["session.id"] == session.id
    # The server handled it under the caller's span (the trace context travels in params._meta).
    (handled,) = [s for s in spans if s.name == "tools/call add"]
    assert handled.parent.span_id == sent.context.span_id
    assert handled.attributes["gen_ai.tool.name"] == "add"
    assert handled.attributes["session.id"] == session.id
    assert handled.attributes["mcp.protocol.version"]
    assert [s for s in spans if s.attributes.get("mcp.method.name") == "tools/list"]


def test_a_legacy_streamable_http_session_is_named_on_the_server_span(http_server, client):
    async def main():
        async with Client(http_server, mode="legacy") as mcp:
            return await mcp.call_tool("add", {"a": 1, "b": 1})

    with client.session("mcp"):
        assert asyncio.run(main()).structured_content == {"result": 2}
    (handled,) = [s for s in spans_of(client) if s.name == "tools/call add"]
    assert len(handled.attributes["mcp.session.id"]) >= 16  # the session the server gave the client


def test_a_failing_tool_call_is_an_error_on_the_server_span(http_server, client):
    async def main():
        async with Client(http_server) as mcp:
            return await mcp.call_tool("fail", {})

    with client.session("mcp"):
        result = asyncio.run(main())
    assert result.is_error
    (handled,) = [s for s in spans_of(client) if s.name == "tools/call fail"]
    assert handled.attributes["error.type"] == "tool_error"


def test_tool_calls_over_stdio_join_the_callers_trace(receiver, client, tmp_path):
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(SERVER))
    params = StdioServerParameters(command=sys.executable, args=[str(script), receiver.endpoint])
    with client.session("mcp-stdio") as session:
        _, result = asyncio.run(call_add(params))
    assert result.structured_content == {"result": 5}
    (sent,) = [s for s in spans_of(client) if s.name == "MCP send tools/call add"]
    assert sent.attributes["session.id"] == session.id
    assert sent.attributes["gen_ai.tool.name"] == "add"
    # the server process exports at its exit (stdin closed): its span is in the caller's trace
    assert receiver.wait_for(lambda spans: any(s.name == "tools/call add" for s in spans), timeout=15)
    (span,) = [s for s in receiver.spans if s.name == "tools/call add"]
    assert span.trace_id == format(sent.context.trace_id, "032x")
    assert span.parent_span_id == format(sent.context.span_id, "016x")
    assert span.resource["service.name"] == "mcp-server"
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"


def test_with_the_integration_off_the_sdks_spans_are_left_as_they_are(http_server):
    c = sessionkit.Client(exporter="memory", integrations="none")
    try:
        with c.session("mcp") as session:
            asyncio.run(call_add(http_server))
        (sent,) = [s for s in spans_of(c) if s.name == "MCP send tools/call add"]
        assert "gen_ai.operation.name" not in sent.attributes
        assert sent.attributes["session.id"] == session.id  # still in the session: the global provider
    finally:
        c.shutdown(timeout=2)


HTTP_SERVER = """
import socket, sys
import sessionkit, uvicorn
from mcp.server.mcpserver import MCPServer

client = sessionkit.init(service_name="mcp-http-server", exporter="otlp", endpoint=sys.argv[1], export_interval=0.1)
server = MCPServer("calculator")


@server.tool()
def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    with client.tracer.start_as_current_span("adding"):
        return a + b


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)  # (connections wait in the backlog until the server runs)
print("PORT", sock.getsockname()[1], flush=True)
app = server.streamable_http_app(host="127.0.0.1")
uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on")).run(sockets=[sock])
"""


def _caller(receiver):
    return sessionkit.Client(
        service_name="mcp-caller", exporter="otlp", endpoint=receiver.endpoint, export_interval=0.1, propagate_to="mcp"
    )


def _joined(receiver, server_span: str, session, turn_trace: str) -> None:
    assert receiver.wait_for(lambda spans: any(s.name == server_span for s in spans), timeout=15)
    (handled,) = [s for s in receiver.spans if s.name == server_span]
    assert handled.attributes["session.id"] == session.id
    assert handled.attributes["gen_ai.conversation.id"] == "t-1"
    assert handled.attributes["sessionkit.turn.index"] == 1
    assert handled.trace_id == turn_trace


def test_the_session_travels_in_params_meta_to_an_mcp_server_over_stdio(receiver, tmp_path):
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(SERVER))
    params = StdioServerParameters(command=sys.executable, args=[str(script), receiver.endpoint])
    caller = _caller(receiver)
    try:
        with caller.session("mcp-stdio", thread_id="t-1") as session:
            with session.turn("add them") as turn:
                _, result = asyncio.run(call_add(params))
        assert result.structured_content == {"result": 5}
    finally:
        caller.shutdown(timeout=5)
    _joined(receiver, "tools/call add", session, turn.trace_id)


def test_the_session_travels_in_params_meta_to_an_mcp_server_over_streamable_http(receiver):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HTTP_SERVER), receiver.endpoint],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT"), line
        caller = _caller(receiver)
        try:
            with caller.session("mcp-http", thread_id="t-1") as session:
                with session.turn("add them") as turn:
                    _, result = asyncio.run(call_add(f"http://127.0.0.1:{int(line.split()[1])}/mcp"))
            assert result.structured_content == {"result": 5}
        finally:
            caller.shutdown(timeout=5)
        _joined(receiver, "tools/call add", session, turn.trace_id)
        assert receiver.wait_for(lambda spans: any(s.name == "adding" for s in spans), timeout=15)
        (adding,) = [s for s in receiver.spans if s.name == "adding"]
        assert adding.attributes["session.id"] == session.id  # the tool's own spans too
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_without_mcp_in_propagate_to_no_session_goes_into_params_meta(receiver, tmp_path):
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(SERVER))
    params = StdioServerParameters(command=sys.executable, args=[str(script), receiver.endpoint])
    caller = sessionkit.Client(service_name="mcp-caller", exporter="otlp", endpoint=receiver.endpoint)
    try:
        with caller.session("mcp-stdio") as session:
            asyncio.run(call_add(params))
    finally:
        caller.shutdown(timeout=5)
    assert receiver.wait_for(lambda spans: any(s.name == "tools/call add" for s in spans), timeout=15)
    (handled,) = [s for s in receiver.spans if s.name == "tools/call add"]
    assert "session.id" not in handled.attributes
    assert session.id not in str(handled.attributes)

"""End to end: the demo's sessions exported to a real Arize Phoenix over OTLP/HTTP and OTLP/gRPC,
checked through Phoenix's own REST API; a screenshot of its sessions view by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections import Counter

import httpx
import pytest
import sessionkit
from sessionkit import _demo as demo

from phoenix_server import ROOT, Phoenix
from test_usage_once import RUNS


@pytest.fixture(scope="module")
def phoenix():
    server = Phoenix().start()
    yield server
    server.stop()


def spans_in(phoenix: Phoenix, project: str) -> list[dict]:
    try:
        return phoenix.all(f"/v1/projects/{project}/spans")
    except Exception:  # 404 until the project's first span is stored
        return []


def wait_for_sessions(phoenix: Phoenix, project: str, count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    sessions: list[dict] = []
    while time.monotonic() < deadline:
        try:
            sessions = phoenix.all(f"/v1/projects/{project}/sessions")
        except Exception:
            sessions = []
        if len(sessions) >= count:
            return sessions
        time.sleep(0.5)
    raise AssertionError(f"Phoenix has {len(sessions)} sessions of {count} in {project}")


def run_demo_into(phoenix: Phoenix, project: str, **export: str) -> demo.DemoResult:
    result = demo.run(users=3, turns=3, project_name=project, progress=False, **export)
    client = sessionkit.get_client()
    assert client is not None and client.flush(timeout=20)
    assert client.stats().spans_exported == client.stats().spans_started
    client.shutdown(timeout=5)  # the root spans of every session are out
    return result


def assert_arrived(phoenix: Phoenix, project: str, result: demo.DemoResult) -> None:
    ours = {s.session_id: s for s in result.summaries}
    # The spans of each turn, each turn's root (a session.turn() block), each session's record.
    expected_spans = sum(s.span_count + s.turn_count + 1 for s in result.summaries)
    deadline = time.monotonic() + 60
    while len(spans_in(phoenix, project)) < expected_spans and time.monotonic() < deadline:
        time.sleep(0.5)  # Phoenix ingests asynchronously: wait for every span, then compare
    theirs = {s["session_id"]: s for s in wait_for_sessions(phoenix, project, len(ours))}
    assert set(theirs) == set(ours)  # the records make no session (nor turn) of their own
    spans = phoenix.all(f"/v1/projects/{project}/spans")
    roots = {s["context"]["trace_id"]: s for s in spans if s["parent_id"] is None}
    for session_id, summary in ours.items():
        remote = theirs[session_id]
        # One trace per turn, in order; the session's record is none of them.
        assert [t["trace_id"] for t in remote["traces"]] == [t.trace_id for t in summary.turns]
        assert len(remote["traces"]) == summary.turn_count == 3
        assert summary.trace_id not in [t["trace_id"] for t in remote["traces"]]
        for turn in summary.turns:
            root = roots[turn.trace_id]["attributes"]
            assert root["session.id"] == session_id and root["sessionkit.turn.index"] == turn.index
            assert root["input.value"].endswith("?") and root["output.value"]  # the message and the answer
        record = roots[summary.trace_id]["attributes"]
        assert record["sessionkit.session.id"] == session_id and "session.id" not in record
        assert remote["token_count_prompt"] == summary.input_tokens
        assert remote["token_count_completion"] == summary.output_tokens
    # ... and those are what the fake LLM server reported, call by call
    assert sum(s["token_count_prompt"] for s in theirs.values()) == sum(r.input_tokens for r in result.reported)
    assert sum(s["token_count_completion"] for s in theirs.values()) == sum(r.output_tokens for r in result.reported)
    assert len(result.reported) == 3 * 3

    kinds = Counter(span["span_kind"] for span in spans)
    assert kinds["AGENT"] == 9 and kinds["LLM"] == 9 and kinds["TOOL"] == 18
    for span in spans:  # every span stamped with its session (the record under its own name)
        attributes = span["attributes"]
        assert attributes.get("session.id", attributes.get("sessionkit.session.id")) in ours
    llm = [s for s in spans if s["span_kind"] == "LLM"]
    assert sum(s["attributes"]["llm.token_count.prompt"] for s in llm) == sum(r.input_tokens for r in result.reported)
    projects = {p["name"] for p in phoenix.get("/v1/projects")["data"]}
    assert project in projects


def test_demo_sessions_arrive_in_phoenix_over_otlp_http(phoenix):
    project = f"demo-http-{uuid.uuid4().hex[:6]}"
    result = run_demo_into(phoenix, project, endpoint=phoenix.url)
    assert_arrived(phoenix, project, result)


def test_demo_sessions_arrive_in_phoenix_over_otlp_grpc(phoenix):
    project = f"demo-grpc-{uuid.uuid4().hex[:6]}"
    result = run_demo_into(phoenix, project, exporter="otlp-grpc", endpoint=phoenix.grpc_url)
    assert_arrived(phoenix, project, result)


def test_phoenix_listens_on_loopback_only(phoenix):
    loopback = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
    addresses = phoenix.listening_addresses()
    ports = {int(a.split(":")[1]) for a in addresses}
    assert {phoenix.http_port, phoenix.grpc_port} <= ports
    assert all(a.split(":")[0] in loopback for a in addresses), addresses


def chromium() -> str:
    """Debian's Chromium, installed on first use (the test suite installs what it needs)."""
    found = shutil.which("chromium")
    if found:
        return found
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium"],
        check=True,
        timeout=1200,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("chromium") or "/usr/bin/chromium"


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
    "--virtual-time-budget=10000",
]


def test_phoenix_session_page_shows_the_conversation_turn_by_turn(phoenix, tmp_path):
    project = f"demo-view-{uuid.uuid4().hex[:6]}"
    result = run_demo_into(phoenix, project, endpoint=phoenix.url)
    sessions = wait_for_sessions(phoenix, project, len(result.summaries))
    project_id = next(p["id"] for p in phoenix.get("/v1/projects")["data"] if p["name"] == project)
    browser = chromium()
    profile = tmp_path / "profile"

    def dom_of(page: str) -> str:
        return subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    listing = dom_of(f"{phoenix.url}/projects/{project_id}/sessions")
    for summary in result.summaries:
        assert summary.session_id[:8] in listing, "the sessions view does not list a session"
    # One session's page: its turns, each with the user's message and the agent's answer.
    first = next(s for s in result.summaries if s.user_id == "user-1")
    node = next(s["id"] for s in sessions if s["session_id"] == first.session_id)
    page = f"{phoenix.url}/projects/{project_id}/sessions/{node}"
    dom = dom_of(page)
    spans = phoenix.all(f"/v1/projects/{project}/spans")
    for turn in first.turns:
        root = next(s for s in spans if s["context"]["trace_id"] == turn.trace_id and s["parent_id"] is None)
        message = root["attributes"]["input.value"]
        assert message in dom.replace("&#39;", "'"), f"turn {turn.index}'s message is not on the session page"
    shot = tmp_path / "phoenix-sessions.png"
    subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SESSIONKIT_UPDATE_SCREENSHOTS"):
        target = ROOT / "docs" / "images" / "phoenix-sessions.png"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, target)


SESSION_TOKENS = """query ($id: ID!) { node(id: $id) { ... on ProjectSession {
  tokenUsage { prompt completion total } numTraces } } }"""


@pytest.mark.parametrize("framework", list(RUNS))
def test_phoenix_session_tokens_equal_the_servers(framework, phoenix, server, tmp_path):
    """Phoenix's session page sums the tokens of a session's LLM spans: with a framework's own
    span of each call as well as the wire's, that sum is the server's, not twice it."""
    run, _ = RUNS[framework]
    project = f"tokens-{framework}-{uuid.uuid4().hex[:6]}"
    client = sessionkit.Client(endpoint=phoenix.url, project_name=project)
    try:
        session = run(client, server)
        assert client.flush(timeout=20)
    finally:
        client.shutdown(timeout=5)
    want_in = sum(r.input_tokens for r in server.reported)
    want_out = sum(r.output_tokens for r in server.reported)
    node = next(s["id"] for s in wait_for_sessions(phoenix, project, 1) if s["session_id"] == session.id)
    deadline = time.monotonic() + 30
    while True:  # Phoenix stores a trace's spans as they come: read until all of them are in
        answer = httpx.post(
            f"{phoenix.url}/graphql", json={"query": SESSION_TOKENS, "variables": {"id": node}}, timeout=20
        ).json()
        got = answer["data"]["node"]
        if got["tokenUsage"]["prompt"] >= want_in or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (got["tokenUsage"]["prompt"], got["tokenUsage"]["completion"]) == (want_in, want_out)
    assert got["numTraces"] == 3  # a turn per question
    project_id = next(p["id"] for p in phoenix.get("/v1/projects")["data"] if p["name"] == project)
    shot = tmp_path / f"phoenix-tokens-{framework}.png"
    subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            f"{phoenix.url}/projects/{project_id}/sessions/{node}",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SESSIONKIT_UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, ROOT / "docs" / "images" / shot.name)

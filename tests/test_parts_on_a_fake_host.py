"""Channels, history loads, decorators and the wire-level hook on a fake ``Host``: each part
is tested with only what it declares it needs, no Client behind it."""

from __future__ import annotations

from typing import Any, Optional

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from sessionkit import ChannelError
from sessionkit import _wire as wire
from sessionkit._channels import ChannelRegistry, SessionChannels
from sessionkit._decorators import SpanDecorator
from sessionkit._history import HistoryLoad, HistoryLoaderDecorator, HistoryTracker
from sessionkit.fake_llm import FakeLLMServer

from fakes import FakeHost


class FakeOwner:
    """A session as channels and history loads see it (ChannelOwner, HistoryOwner)."""

    def __init__(self, host: FakeHost, thread_id: Optional[str] = None) -> None:
        self.id = "fake-session"
        self.thread_id = thread_id
        self.host = host
        self.registry = ChannelRegistry(host)
        self.channels = SessionChannels(self, self.registry)
        self.tracker = HistoryTracker(host)
        self.loads: list[tuple[HistoryLoad, Optional[int]]] = []
        self.findings: list[Any] = []

    @property
    def client(self) -> FakeHost:
        return self.host

    def span_parent(self) -> Any:
        return None

    def report_finding(self, finding: Any, key: Any = None) -> None:
        from sessionkit._findings import log_finding

        self.findings.append(finding)
        log_finding(finding, self.id)

    def history_loaded(self, load: HistoryLoad) -> Optional[int]:
        redundant = self.tracker.repeated(load)
        self.loads.append((load, redundant))
        return redundant


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


# -- channels ---------------------------------------------------------------------------------------------
def test_a_channel_reports_its_close_to_its_book_and_leaves_the_registry(host):
    owner = FakeOwner(host)
    channel = owner.channels.open_channel("discord", 7, "reply", {})
    assert [c.channel_id for c in owner.registry.listing()] == ["7"]
    assert owner.registry.listing()[0].session_id == "fake-session"
    with pytest.raises(ChannelError, match="already open"):
        owner.channels.open_channel("discord", 7, None, {})
    channel.close("done")
    assert owner.channels.open == [] and owner.channels.closed == 1 and owner.registry.listing() == []
    refused, span = [s for s in host.spans() if s.name == "channel discord"]  # the refused one ends first
    assert "sessionkit.channel.leaked" not in refused.attributes
    assert span.attributes["sessionkit.channel.close_reason"] == "done"
    assert span.attributes["sessionkit.channel.leaked"] is False


def test_a_leaked_channel_is_an_error_span_and_a_warning(host, caplog):
    owner = FakeOwner(host)
    channel = owner.channels.open_channel("slack", "c-1", None, {})
    with caplog.at_level("WARNING", logger="sessionkit"):
        channel.leak("still open when its session ended")
    (span,) = [s for s in host.spans() if s.name == "channel slack"]
    assert span.status.status_code is StatusCode.ERROR and span.attributes["sessionkit.channel.leaked"] is True
    assert "leaked" in caplog.text and channel.leaked
    assert owner.channels.leaked == 1 and owner.channels.closed == 0
    (finding,) = owner.findings  # reported to its session as a finding, its span the evidence
    assert finding.kind == "channel_leaked" and finding.evidence == (format(span.context.span_id, "016x"),)


def test_attempts_are_numbered_and_counted_by_the_book(host):
    owner = FakeOwner(host)
    book = owner.channels
    with pytest.raises(ConnectionError):
        with book.attempt("discord", None):
            raise ConnectionError("reset")
    with book.attempt("discord", None) as second:
        second.opened("c-9")
    assert (book.attempts, book.attempts_failed) == (2, 1)
    assert [c.channel_id for c in book.open] == ["c-9"] and second.channel is book.open[0]
    tries = [s for s in host.spans() if s.name == "channel.create discord"]
    assert [s.attributes["sessionkit.channel.attempt.ok"] for s in tries] == [False, True]
    assert [s.attributes["sessionkit.channel.attempt"] for s in tries] == [1, 2]
    assert tries[0].attributes["error.type"] == "ConnectionError"


def test_the_channel_limit_warns_at_80_percent_and_at_the_limit(caplog):
    host = FakeHost(channel_limits={"discord": 5})
    owner = FakeOwner(host)
    with caplog.at_level("WARNING", logger="sessionkit"):
        for i in range(5):
            owner.channels.open_channel("discord", i, None, {})
    messages = [r.getMessage() for r in caplog.records]
    assert any("80%" in m for m in messages) and any("limit of 5 is reached" in m for m in messages)


# -- history loads ----------------------------------------------------------------------------------------
def test_history_loads_count_what_earlier_loads_of_the_conversation_loaded(host):
    owner = FakeOwner(host, thread_id="conv-1")
    for turn, messages in enumerate([2, 4, 6], start=1):
        with HistoryLoad(owner, "postgres", None, turn) as load:
            load.record(messages=messages, cache_hit=False)
    assert [redundant for _, redundant in owner.loads] == [0, 2, 4]
    spans = [s for s in host.spans() if s.name == "history.load"]
    assert [s.attributes["sessionkit.history.messages_redundant"] for s in spans] == [0, 2, 4]
    assert all(s.attributes["sessionkit.history.conversation_id"] == "conv-1" for s in spans)


def test_the_history_loader_decorator_asks_the_host_for_the_current_session(host):
    loader = HistoryLoaderDecorator(lambda: host)

    @loader(source="redis")
    def load(conversation_id: str, turn: int = 0) -> list[str]:
        return ["m"] * turn

    assert load("conv-2", turn=3) == ["m", "m", "m"]  # no current session: runs untraced
    assert host.spans() == []
    host.session = FakeOwner(host)
    load("conv-2", turn=3)
    ((recorded, _),) = host.session.loads
    assert (recorded.source, recorded.conversation_id, recorded.turn, recorded.messages) == ("redis", "conv-2", 3, 3)


# -- decorators -------------------------------------------------------------------------------------------
def test_a_span_decorator_uses_the_hosts_tracer_parent_and_redaction():
    host = FakeHost(capture_content=True)
    root = host.tracer.start_span("session-root")
    host.parent = trace.set_span_in_context(root)
    tool = SpanDecorator("tool", lambda: host)

    @tool(name="lookup")
    def lookup(order: str) -> str:
        return f"secret for {order}"

    assert lookup("o-1") == "secret for o-1"
    root.end()
    (span,) = [s for s in host.spans() if s.name == "execute_tool lookup"]
    assert span.parent.span_id == root.get_span_context().span_id  # the host's span_parent
    assert span.attributes["gen_ai.tool.call.result"] == "[redacted] for o-1"  # the host's redact


def test_a_span_decorator_on_a_host_that_does_not_record_just_calls():
    host = FakeHost()
    host.recording = False
    agent = SpanDecorator("agent", lambda: host)

    @agent
    def plan() -> int:
        return 3

    assert plan() == 3 and host.spans() == []


# -- the wire-level hook ----------------------------------------------------------------------------------
def test_the_wire_hook_records_an_llm_call_on_the_host_it_was_attached_for():
    with FakeLLMServer() as server:
        host = FakeHost(llm_base_urls=[server.url])
        wire.register(host)
        try:
            response = httpx.post(server.openai_base_url + "/chat/completions", json={"model": "m", "messages": []})
            assert response.status_code == 200
            httpx.get(server.url + "/health")  # not an LLM call: passes untouched
        finally:
            wire.unregister(host)
        assert not wire.is_patched(httpx.Client)  # the last host leaving restores httpx
    (span,) = host.spans()
    assert span.name == "chat m" and span.attributes["gen_ai.usage.output_tokens"] == server.reported[-1].output_tokens


def test_the_wire_hook_skips_a_host_that_is_closed():
    with FakeLLMServer() as server:
        host = FakeHost(llm_base_urls=[server.url])
        host.closed = True
        wire.register(host)
        try:
            httpx.post(server.openai_base_url + "/chat/completions", json={"model": "m", "messages": []})
        finally:
            wire.unregister(host)
    assert host.spans() == []

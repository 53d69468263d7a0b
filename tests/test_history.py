from __future__ import annotations

import asyncio
import threading

import pytest
import sessionkit
from opentelemetry.trace import StatusCode

from helpers import spans_of


def loads_of(client):
    return [s for s in spans_of(client) if s.name == "history.load"]


def reload_every_turn(session, turns: int, per_turn: int = 2) -> None:
    """The anti-pattern: at turn N, load all N-1 earlier turns again."""
    for turn in range(1, turns + 1):
        with session.history_load("postgres", turn=turn) as load:
            load.record(messages=per_turn * (turn - 1), bytes=200 * (turn - 1), cache_hit=False)


def test_each_load_is_a_span_with_source_conversation_turn_count_bytes_and_cache(client):
    with client.session("agent", thread_id="c-1") as s:
        with s.history_load("postgres", conversation_id="c-1", turn=7) as load:
            load.record(messages=12, bytes=3456, cache_hit=False)
    span = loads_of(client)[0]
    assert span.attributes["sessionkit.history.source"] == "postgres"
    assert span.attributes["sessionkit.history.conversation_id"] == "c-1"
    assert span.attributes["sessionkit.history.turn"] == 7
    assert span.attributes["sessionkit.history.messages"] == 12
    assert span.attributes["sessionkit.history.bytes"] == 3456
    assert span.attributes["sessionkit.history.cache_hit"] is False
    assert span.attributes["session.id"] == s.id


def test_redundant_share_on_a_scripted_conversation(client):
    # Turns 1..6 reload 0, 2, 4, 6, 8, 10 messages: 30 loaded, of which 0+0+2+4+6+8 = 20 were
    # loaded before in the same conversation.
    with client.session("agent", thread_id="conv-9") as s:
        reload_every_turn(s, 6)
    summary = s.summary()
    assert summary.history_loads == 6
    assert summary.history_messages_loaded == 30
    assert summary.history_messages_redundant == 20
    assert summary.history_load_seconds > 0
    assert [x.attributes["sessionkit.history.messages_redundant"] for x in loads_of(client)] == [0, 0, 2, 4, 6, 8]
    assert summary.history_advice is not None
    assert "20 of 30 messages (67%)" in summary.history_advice and "cache" in summary.history_advice


def test_a_conversation_spanning_sessions_counts_repeats_from_earlier_runs(client):
    with client.session("run-1", thread_id="conv-x") as first:
        with first.history_load("postgres") as load:
            load.record(messages=10)
    with client.session("run-2", thread_id="conv-x") as second:
        with second.history_load("postgres") as load:
            load.record(messages=12)
    assert second.summary().history_messages_redundant == 10


def test_a_cached_history_is_not_redundant_and_gets_no_advice(client):
    with client.session("cached", thread_id="c-2") as s:
        for turn in range(1, 7):
            with s.history_load("redis", turn=turn) as load:
                load.record(messages=2 * (turn - 1), cache_hit=turn > 1)
    summary = s.summary()
    assert summary.history_messages_redundant == 0
    assert summary.history_advice is None


def test_growth_of_load_time_per_turn_is_reported(client, monkeypatch):
    import sessionkit._history as history

    clock = iter(x / 1000 for x in [0, 10, 100, 120, 200, 230, 300, 340, 400, 450])  # 10, 20, 30, 40, 50 ms
    monkeypatch.setattr(history, "clock", lambda: next(clock))
    with client.session("slow", thread_id="c-3") as s:
        reload_every_turn(s, 5)
    growth = s.summary().history_load_growth_seconds_per_turn
    assert growth == pytest.approx(0.010)  # each turn's load takes 10 ms longer


def test_history_loader_decorator_on_sync_and_async_loaders():
    client = sessionkit.init(exporter="memory")  # the module-level decorator records on the default client

    @client.history_loader(source="redis")
    def load_history(conversation_id, turn=None):
        return [{"role": "user"}] * (turn or 1)

    @sessionkit.history_loader
    async def aload(conversation_id):
        await asyncio.sleep(0)
        return {"messages": ["a", "b", "c"]}

    with client.session("agent") as s:
        assert load_history("conv-5", turn=4) == [{"role": "user"}] * 4
        assert asyncio.run(aload("conv-6")) == {"messages": ["a", "b", "c"]}
    first, second = loads_of(client)
    assert first.attributes["sessionkit.history.source"] == "redis"
    assert first.attributes["sessionkit.history.conversation_id"] == "conv-5"
    assert first.attributes["sessionkit.history.turn"] == 4
    assert first.attributes["sessionkit.history.messages"] == 4
    assert second.attributes["sessionkit.history.source"] == "history"
    assert second.attributes["sessionkit.history.messages"] == 3
    assert s.summary().history_loads == 2


def test_a_failing_loader_records_the_error_and_raises_it(client):
    @client.history_loader(source="postgres")
    def broken(conversation_id):
        raise ConnectionError("db down")

    with client.session("agent") as s:
        with pytest.raises(ConnectionError):
            broken("c-1")
    span = loads_of(client)[0]
    assert span.status.status_code is StatusCode.ERROR
    assert s.summary().history_loads == 1


def test_history_metrics_record_duration_and_messages(client):
    with client.session("m", thread_id="c") as s:
        reload_every_turn(s, 3)
    metrics = {
        m.name: m
        for rm in client.metric_reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    duration = metrics["sessionkit.history.load.duration"].data.data_points[0]
    messages = metrics["sessionkit.history.load.messages"].data.data_points[0]
    assert duration.count == 3 and messages.count == 3 and messages.sum == 0 + 2 + 4


def test_bad_counts_are_clear_errors(client):
    with client.session("s") as s:
        with s.history_load("postgres") as load:
            with pytest.raises(ValueError, match="messages must be a non-negative int"):
                load.record(messages=-1)
            with pytest.raises(ValueError, match="cache_hit"):
                load.record(cache_hit="yes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="turn"):
            s.history_load("postgres", turn=-2)


def test_loads_from_concurrent_sessions_stay_in_their_sessions(client):
    results = {}

    def agent(n):
        with client.session(f"s{n}", thread_id=f"conv-{n}") as s:
            reload_every_turn(s, 5)
            results[n] = s

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _n, s in results.items():
        summary = s.summary()
        assert (summary.history_loads, summary.history_messages_loaded, summary.history_messages_redundant) == (
            5,
            20,
            12,
        )
    by_session = {}
    for span in loads_of(client):
        by_session.setdefault(span.attributes["session.id"], set()).add(
            span.attributes["sessionkit.history.conversation_id"]
        )
    assert all(len(v) == 1 for v in by_session.values()) and len(by_session) == 12

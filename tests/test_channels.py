from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
import sessionkit
from opentelemetry.trace import StatusCode
from sessionkit import ChannelError

from helpers import root_of, spans_of


def channel_spans(client, name="channel discord"):
    return [s for s in spans_of(client) if s.name == name]


def open_gauge(client) -> dict[str, int]:
    """The sessionkit.channels.open up-down counter, per platform, read from the client's metrics."""
    data = client.metric_reader.get_metrics_data()
    out: dict[str, int] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "sessionkit.channels.open":
                    for point in metric.data.data_points:
                        out[point.attributes["sessionkit.channel.platform"]] = point.value
    return out


def test_a_channel_is_a_span_from_open_to_close_with_its_events(client):
    with client.session("proxy") as s:
        ch = s.open_channel("discord", channel_id=123, purpose="conversation")
        ch.record("message.sent", message_id="m1")
        ch.record("reply.streamed", chunks=12)
        time.sleep(0.01)
        ch.close(reason="reply complete")
        ch.close()  # twice: nothing more
        with s.channel("discord", channel_id="124") as ch2:
            assert client.open_channels()[0].channel_id == "124"
    span = channel_spans(client)[0]
    assert span.attributes["sessionkit.channel.platform"] == "discord"
    assert span.attributes["sessionkit.channel.id"] == "123"
    assert span.attributes["sessionkit.channel.purpose"] == "conversation"
    assert span.attributes["sessionkit.channel.leaked"] is False
    assert span.attributes["sessionkit.channel.close_reason"] == "reply complete"
    assert [e.name for e in span.events] == ["message.sent", "reply.streamed"]
    assert (
        span.parent is None and span.attributes["sessionkit.turn.implicit"] is True
    )  # opened outside a turn: one of its own
    assert span.attributes["session.id"] == s.id and root_of(client, s).attributes["sessionkit.session.id"] == s.id
    assert span.end_time - span.start_time >= 10_000_000
    assert ch2.closed and len(channel_spans(client)) == 2
    summary = s.summary()
    assert (summary.channels_opened, summary.channels_closed, summary.channels_leaked) == (2, 2, 0)


def test_a_channel_open_when_its_session_ends_is_a_leak(client, caplog):
    with caplog.at_level(logging.WARNING, logger="sessionkit"):
        with client.session("proxy") as s:
            s.open_channel("discord", "orphan")
            s.open_channel("discord", "fine").close()
    leaked = next(x for x in channel_spans(client) if x.attributes["sessionkit.channel.id"] == "orphan")
    assert leaked.status.status_code is StatusCode.ERROR
    assert leaked.attributes["sessionkit.channel.leaked"] is True
    assert "session ended" in leaked.attributes["sessionkit.channel.close_reason"]
    assert leaked.end_time <= next(x for x in spans_of(client) if x.name == "proxy").end_time
    assert "discord channel orphan leaked" in caplog.text
    summary = s.summary()
    assert (summary.channels_opened, summary.channels_closed, summary.channels_leaked) == (2, 1, 1)
    assert client.open_channels() == []


def test_a_channel_open_longer_than_the_ttl_is_a_leak_even_while_the_session_runs(caplog):
    c = sessionkit.Client(exporter="memory", channel_ttl=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="sessionkit"):
            s = c.start_session("long")
            s.open_channel("discord", "stuck-stream")
            deadline = time.monotonic() + 5
            while s.summary().channels_leaked == 0 and time.monotonic() < deadline:
                time.sleep(0.02)  # the client's watcher finds it; nobody calls sessionkit meanwhile
        assert s.is_active
        assert s.summary().channels_leaked == 1
        span = channel_spans(c)[0]
        assert "channel_ttl=0.2s" in span.attributes["sessionkit.channel.close_reason"]
        assert "stuck-stream leaked" in caplog.text
        s.end()
        assert s.summary().channels_leaked == 1  # not counted again at the end
    finally:
        c.shutdown(timeout=1)


def test_creation_attempts_record_each_retry_and_a_storm_warns_once(caplog):
    c = sessionkit.Client(exporter="memory", channel_attempt_rate=3, channel_attempt_window=30)
    try:
        with caplog.at_level(logging.WARNING, logger="sessionkit"):
            with c.session("retrying") as s:
                for i in range(6):
                    try:
                        with s.channel_attempt("discord") as attempt:
                            if i < 5:
                                raise TimeoutError("gateway timeout")
                            attempt.opened("ch-final").close()
                    except TimeoutError:
                        pass
                with s.channel_attempt("discord"):
                    pass  # left without opened(): a failed attempt, no exception
        attempts = channel_spans(c, "channel.create discord")
        assert [a.attributes["sessionkit.channel.attempt"] for a in attempts] == [1, 2, 3, 4, 5, 6, 1]
        assert [a.attributes["sessionkit.channel.attempt.ok"] for a in attempts] == [False] * 5 + [True, False]
        assert attempts[0].status.status_code is StatusCode.ERROR
        assert attempts[0].attributes["error.type"] == "TimeoutError"
        assert attempts[5].attributes["sessionkit.channel.id"] == "ch-final"
        summary = s.summary()
        assert (summary.channel_attempts, summary.channel_attempts_failed, summary.channels_opened) == (7, 6, 1)
        storm = [r for r in caplog.records if "retry storm" in r.getMessage()]
        assert len(storm) == 1 and "more than 3" in storm[0].getMessage()
    finally:
        c.shutdown(timeout=1)


def test_the_exception_inside_an_attempt_propagates_unchanged(client):
    error = ConnectionResetError("peer reset")
    with client.session("s") as s:
        with pytest.raises(ConnectionResetError) as info:
            with s.channel_attempt("discord"):
                raise error
    assert info.value is error


def test_open_channels_across_sessions_and_the_open_metric(client):
    a = client.start_session("a")
    b = client.start_session("b")
    a.open_channel("discord", "a1")
    b.open_channel("discord", "b1")
    b.open_channel("slack", "b2")
    listing = client.open_channels()
    assert [(c.platform, c.channel_id, c.session_id) for c in listing] == [
        ("discord", "a1", a.id),
        ("discord", "b1", b.id),
        ("slack", "b2", b.id),
    ]
    assert all(c.age_seconds >= 0 for c in listing)
    assert open_gauge(client) == {"discord": 2, "slack": 1}
    client.close_channel("discord", "b1", reason="cleanup job")  # the proxy's "delete all" job
    assert open_gauge(client) == {"discord": 1, "slack": 1}
    b.end()
    assert open_gauge(client) == {"discord": 1, "slack": 0}
    assert [c.channel_id for c in client.open_channels()] == ["a1"]
    a.end()


def test_limit_warns_at_80_percent_and_at_the_limit(caplog):
    c = sessionkit.Client(exporter="memory", channel_limits={"discord": 5})
    try:
        with caplog.at_level(logging.WARNING, logger="sessionkit"):
            with c.session("busy") as s:
                channels = [s.open_channel("discord", f"c{i}") for i in range(5)]
                messages = [r.getMessage() for r in caplog.records]
                assert any("80% of the limit of 5" in m for m in messages)
                assert any("the limit of 5 is reached" in m for m in messages)
                for ch in channels:
                    ch.close()
                caplog.clear()
                for i in range(4):
                    s.open_channel("discord", f"again{i}")  # re-armed below 80%: warns again
                assert any("80% of the limit" in r.getMessage() for r in caplog.records)
    finally:
        c.shutdown(timeout=1)


def test_channel_misuse_is_a_clear_error(client):
    with client.session("s") as s:
        with pytest.raises(ChannelError, match="no open discord channel 'nope'"):
            s.close_channel("discord", "nope")
        with pytest.raises(ChannelError, match="open_channels"):
            client.close_channel("discord", "nope")
        s.open_channel("discord", "dup")
        with pytest.raises(ChannelError, match="already open"):
            s.open_channel("discord", "dup")
        with pytest.raises(TypeError, match="platform"):
            s.open_channel("", "x")
        with pytest.raises(ValueError, match="channel_limits|positive"):
            sessionkit.Client(exporter="memory", channel_limits={"discord": 0})
        s.close_channel("discord", "dup")
    assert s.summary().channels_closed == 1


def test_channels_from_concurrent_sessions_stay_in_their_sessions(client):
    ids: dict[str, str] = {}

    def proxy(n):
        with client.session(f"conv-{n}") as s:
            ids[f"conv-{n}"] = s.id
            for i in range(20):
                with s.channel_attempt("discord") as attempt:
                    attempt.opened(f"{n}-{i}").close()

    async def aproxy(n):
        async with client.session(f"aconv-{n}") as s:
            ids[f"aconv-{n}"] = s.id
            for i in range(20):
                with s.channel("discord", f"a{n}-{i}"):
                    await asyncio.sleep(0)

    threads = [threading.Thread(target=proxy, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()

    async def main():
        await asyncio.gather(*(aproxy(n) for n in range(8)))

    asyncio.run(main())
    for t in threads:
        t.join()
    spans = channel_spans(client)
    assert len(spans) == 16 * 20
    for span in spans:
        channel_id = span.attributes["sessionkit.channel.id"]
        owner = (
            f"aconv-{channel_id[1:].split('-')[0]}"
            if channel_id.startswith("a")
            else f"conv-{channel_id.split('-')[0]}"
        )
        assert span.attributes["session.id"] == ids[owner]
    assert client.open_channels() == []

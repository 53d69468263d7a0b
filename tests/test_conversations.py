"""Client.conversation: one session per conversation id, a turn per message, ended once idle."""

from __future__ import annotations

import threading
import time

import pytest
import sessionkit

from helpers import spans_of


def sweepers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sessionkit-conversations"]


def test_a_conversation_is_one_session_across_calls_until_it_is_idle(make_client):
    client = make_client(conversation_idle_timeout=0.3)
    first = client.conversation("chat-1", name="support", user_id="u-1")
    with first.turn("hi") as turn:
        turn.set_output("hello")
    again = client.conversation("chat-1")
    assert again is first and first.thread_id == "chat-1" and first.user_id == "u-1" and first.name == "support"
    other = client.conversation("chat-2")
    assert other is not first
    with again.turn("still there?"):
        time.sleep(0.5)  # longer than the timeout, but a turn is open: not idle
    assert first.is_active
    client.conversation("chat-1")  # the idle clock starts again from here
    deadline = time.monotonic() + 5
    while (first.is_active or other.is_active) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not first.is_active and not other.is_active
    assert first.end_state is sessionkit.EndState.SUCCESS and "idle for 0.3 s" in first.end_reason
    assert first.summary().turn_count == 2
    deadline = time.monotonic() + 5
    while sweepers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sweepers()  # nothing left to watch: its thread is gone
    new = client.conversation("chat-1")
    assert new is not first and new.is_active and new.thread_id == "chat-1"


def test_a_conversation_the_program_ended_is_not_continued(make_client):
    client = make_client()
    first = client.conversation(42)
    first.end("fail", "the user left")
    second = client.conversation(42)
    assert second is not first and second.thread_id == "42"


def test_shutdown_ends_open_conversations_and_stops_the_watch(make_client):
    client = make_client()
    session = client.conversation("c")
    with session.turn("q"):
        pass
    assert sweepers()
    client.shutdown(timeout=2)
    assert session.end_state is sessionkit.EndState.INDETERMINATE
    deadline = time.monotonic() + 5
    while sweepers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sweepers()
    with pytest.raises(sessionkit.SessionStateError):
        client.conversation("c")
    records = [s for s in spans_of(client) if s.attributes.get("sessionkit.span.type") == "session"]
    assert len(records) == 1


def test_misuse_is_named(make_client):
    client = make_client()
    with pytest.raises(TypeError, match="thread_id"):
        client.conversation(None)
    with pytest.raises(TypeError, match="name"):
        client.conversation("c", name=3)
    with pytest.raises(ValueError, match="conversation_idle_timeout"):
        make_client(conversation_idle_timeout=float("inf"))

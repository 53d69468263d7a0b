"""litellm's OpenTelemetry callback (``litellm.callbacks = ["otel"]``), the real litellm package
against the fake OpenAI server on 127.0.0.1: its spans in the session, from sessionkit's global
provider (no provider of its own, no warning), nothing of litellm's on sessionkit's spans, and
each call's tokens counted once."""

from __future__ import annotations

import json
import logging
import time

import litellm
import pytest

from helpers import spans_of


@pytest.fixture
def otel_callback():
    litellm.callbacks = ["otel"]
    yield
    litellm.callbacks = []


def test_litellm_spans_land_in_the_session_and_count_each_call_once(server, make_client, otel_callback, caplog):
    client = make_client()
    with caplog.at_level(logging.WARNING):
        with client.session("s") as session:
            for question in ("first secret question", "second secret question"):
                with session.turn(question):
                    litellm.completion(
                        model="openai/gpt-4o-mini",
                        api_base=server.openai_base_url,
                        api_key="k",
                        messages=[{"role": "user", "content": question}],
                    )
                    time.sleep(0.3)  # litellm logs from a thread: while the turn is still open
    assert "Overriding of current TracerProvider" not in caplog.text
    spans = spans_of(client)
    theirs = [s for s in spans if s.instrumentation_scope.name == "litellm"]
    assert theirs, "litellm made no span in the session"
    assert all(s.attributes["session.id"] == session.id for s in theirs)
    # Nothing of litellm's on sessionkit's own spans (turn roots, the record).
    for ours in (s for s in spans if "sessionkit.span.type" in s.attributes):
        assert not [
            k for k in ours.attributes if k.startswith(("gen_ai.usage", "gen_ai.cost", "metadata.", "litellm."))
        ]
        assert "gen_ai.operation.name" not in ours.attributes
    roots = [s for s in spans if s.attributes.get("sessionkit.span.type") == "turn"]
    assert len(roots) == 2
    for root in roots:  # the turn's own message, not litellm's request; no answer (the turn set none)
        (message,) = json.loads(root.attributes["gen_ai.input.messages"])
        assert message["parts"][0]["content"] == root.attributes["input.value"]
        assert "gen_ai.output.messages" not in root.attributes and "output.value" not in root.attributes
    # Each call's tokens once: the wire span's.
    reported_in = sum(r.input_tokens for r in server.reported)
    assert sum(s.attributes.get("gen_ai.usage.input_tokens", 0) for s in spans) == reported_in
    assert sum(s.attributes.get("llm.token_count.prompt", 0) for s in spans) == reported_in
    summary = session.summary()
    assert (summary.llm_calls, summary.input_tokens) == (2, reported_in)

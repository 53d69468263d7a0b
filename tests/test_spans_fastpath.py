"""The guarded fast path in sessionkit/_spans.py gives exactly what the SDK's public API gives."""

from __future__ import annotations

import sessionkit
import sessionkit._spans as fast
from opentelemetry.trace import Status, StatusCode

from helpers import spans_of


def record(client: sessionkit.Client) -> list[tuple]:
    @client.tool(name="t", custom=3)
    def tool():
        return None

    with client.session("s", thread_id="c", user_id="u", tags=["a", "b"], metadata={"k": 1}) as s:
        tool()
        with client.tracer.start_as_current_span("plain"):
            pass
        s.add_tags("late")
        tool()
    out = []
    for span in spans_of(client):
        attrs = {
            k: v for k, v in span.attributes.items() if k not in ("session.id", "sessionkit.session.id")
        }  # ids differ
        out.append((span.name, sorted(attrs.items()), span.dropped_attributes, span.status.status_code))
    return out


def test_fast_path_matches_the_public_api(monkeypatch):
    assert fast.fast_path_available()  # this SDK has the internals the fast path writes to
    fast_client = sessionkit.Client(exporter="memory")
    with_fast = record(fast_client)
    fast_client.shutdown(timeout=1)

    def public(span, attributes, fresh=False):
        span.set_attributes(attributes)

    def public_ok(span):
        span.set_status(Status(StatusCode.OK))

    for module in (
        "sessionkit._spans",
        "sessionkit._processor",
        "sessionkit._decorators",
        "sessionkit._session",
        "sessionkit._wire",
        "sessionkit._turn",
    ):
        monkeypatch.setattr(f"{module}.set_clean_attributes", public, raising=False)
        monkeypatch.setattr(f"{module}.set_ok_status", public_ok, raising=False)
    slow_client = sessionkit.Client(exporter="memory")
    with_public = record(slow_client)
    slow_client.shutdown(timeout=1)
    assert with_fast == with_public and len(with_fast) == 4
    assert with_fast[-1][0] == "s" and with_fast[-1][3] is StatusCode.OK  # the session's root


def test_an_attribute_limit_makes_the_fast_path_step_aside(monkeypatch):
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    client = sessionkit.Client(exporter="memory")
    with client.session("s", user_id="a-long-user-id"):
        with client.tracer.start_as_current_span("x"):
            pass
    span = next(s for s in spans_of(client) if s.name == "x")
    assert span.attributes["user.id"] == "a-lo"  # the SDK's limit applied, as with set_attributes
    client.shutdown(timeout=1)

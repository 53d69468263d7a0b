"""What a request from outside can and cannot do to this process's sessions: a forged or leaked
trace id, baggage naming a session opened here, a caller's sampling flag; and which URLs the
session's headers may go to (parsed origins, never text prefixes)."""

from __future__ import annotations

import socket

import httpx
import pytest
import requests
import sessionkit
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import Outsider, spans_of


def traceparent_of(span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-01"


def test_a_forged_traceparent_never_joins_another_users_session(client):
    victim = client.start_session("victim", user_id="alice@example.com")
    with victim.turn("hi"), client.tracer.start_as_current_span("victim-work") as victim_span:
        leaked = traceparent_of(victim_span)  # from a log line, a shared link
        # An attacker's request: only the victim's trace id, or that and baggage of its own.
        for headers in (
            {"traceparent": leaked},
            {"traceparent": leaked, "baggage": "session.id=mallory-1,user.id=mallory"},
        ):
            with client.continue_session(headers) as session, client.tracer.start_as_current_span("attacker") as span:
                with client.tracer.start_as_current_span("attacker-child"):
                    pass
                assert span.get_span_context().trace_id == victim_span.get_span_context().trace_id
                assert (session is None) == ("baggage" not in headers)
        with client.tracer.start_as_current_span("victim-later"):
            pass  # the victim's own span in the same trace, after the requests: still the victim's
    victim.end()
    spans = spans_of(client)
    attackers = [s for s in spans if s.name.startswith("attacker")]
    assert len(attackers) == 4
    for span in attackers:
        assert span.attributes.get("session.id") != victim.id
        assert span.attributes.get("user.id") != "alice@example.com"
    assert {s.attributes.get("session.id") for s in attackers} == {None, "mallory-1"}
    (later,) = [s for s in spans if s.name == "victim-later"]
    assert later.attributes["session.id"] == victim.id
    assert victim.summary().span_count == 2  # victim-work and victim-later: nothing of the attacker's


def test_baggage_naming_a_session_opened_here_does_not_join_it_unless_trusted(client):
    mine = client.start_session("mine", user_id="alice")
    headers = {"baggage": f"session.id={mine.id},user.id=bob"}
    with client.continue_session(headers) as outsider, client.tracer.start_as_current_span("outside"):
        assert outsider is not None and outsider is not mine
        assert outsider.user_id == "bob"  # the caller's user, never the session's
    assert mine.is_active  # the outsider's request ended its own session object, not mine
    with client.continue_session(headers, trust=True) as insider, client.tracer.start_as_current_span("inside"):
        assert insider is mine  # a caller of this program's own (a test, a monolith) joins it
    mine.end()
    spans = {s.name: s for s in spans_of(client)}
    assert spans["outside"].attributes["user.id"] == "bob"
    assert spans["inside"].attributes["user.id"] == "alice"
    assert mine.summary().span_count == 1  # only the trusted request's span


def test_an_untrusted_callers_sampled_flag_does_not_override_sample_rate():
    c = sessionkit.Client(exporter="memory", sample_rate=0.3)
    try:
        trusted = untrusted = 0
        for i in range(300):
            headers = {"traceparent": f"00-{i + 1:032x}-{'1' * 16}-01", "baggage": f"session.id=caller-{i}"}
            with c.continue_session(headers), c.tracer.start_as_current_span("untrusted"):
                pass
            with c.continue_session(headers, trust=True), c.tracer.start_as_current_span("trusted"):
                pass
        for span in spans_of(c):
            trusted += span.name == "trusted"
            untrusted += span.name == "untrusted"
    finally:
        c.shutdown(timeout=2)
    assert trusted == 300  # a trusted caller decided: every one sampled
    assert 45 <= untrusted <= 135  # this service's rate decides for the others (0.3 of 300 = 90)


# -- where the session's headers may go ---------------------------------------------------------------
@pytest.fixture
def recorder():
    server = Outsider()
    yield server
    server.stop()


def free_port_other_than(port: int) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        other = int(s.getsockname()[1])
    return other if other != port else free_port_other_than(port)


def test_no_origin_but_the_listed_one_gets_the_session(recorder):
    port = str(recorder.port)
    prefix = port[:2]  # an entry with no trailing slash whose digits begin the server's port
    c = sessionkit.Client(exporter="memory", propagate_to=[f"http://127.0.0.1:{prefix}", "https://127.0.0.1"])
    other = free_port_other_than(recorder.port)
    urls = [
        f"http://127.0.0.1:{port}/",  # other ports sharing the entry's digits
        f"http://127.0.0.1:{prefix}@127.0.0.1:{port}/",  # user-info: the host is after the @
        f"http://{other}@127.0.0.1:{port}/x",
    ]
    try:
        with c.session("s", user_id="alice@example.com"):
            for url in urls:
                httpx.get(url)
                requests.get(url, timeout=5)
                urllib3.PoolManager().request("GET", url)
    finally:
        c.shutdown(timeout=2)
    assert len(recorder.headers) == 3 * len(urls)
    for headers in recorder.headers:
        assert "baggage" not in headers and "traceparent" not in headers, headers


def test_aiohttp_requests_to_unlisted_origins_get_nothing(recorder):
    import asyncio

    import aiohttp

    port = str(recorder.port)
    c = sessionkit.Client(exporter="memory", propagate_to=[f"http://127.0.0.1:{port[:2]}"])

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            for url in (f"http://127.0.0.1:{port}/", f"http://x:y@127.0.0.1:{port}/"):
                async with http.get(url) as response:
                    await response.read()

    try:
        with c.session("s"):
            asyncio.run(main())
    finally:
        c.shutdown(timeout=2)
    assert len(recorder.headers) == 2
    assert all("baggage" not in h and "traceparent" not in h for h in recorder.headers)


def test_the_listed_origin_still_gets_the_session(recorder):
    c = sessionkit.Client(exporter="memory", propagate_to=[f"http://127.0.0.1:{recorder.port}"])
    try:
        with c.session("s") as session:
            httpx.get(f"http://127.0.0.1:{recorder.port}/any/path")
    finally:
        c.shutdown(timeout=2)
    assert recorder.headers[0]["baggage"].startswith(f"session.id={session.id}")


hosts = st.sampled_from(["127.0.0.1", "tools.internal", "evil.example", "tools.internal.evil.example"])
ports = st.one_of(st.none(), st.integers(1, 65535))
schemes = st.sampled_from(["http", "https", "ws", "ftp"])
paths = st.sampled_from(["", "/", "/api", "/api/", "/api/v1", "/apix", "/ap", "/API"])
userinfo = st.sampled_from(["", "u@", "u:p@", "tools.internal@", "tools.internal:443@"])


def _netloc(host: str, port) -> str:
    return host if port is None else f"{host}:{port}"


@settings(max_examples=400, deadline=None)
@given(schemes, hosts, ports, paths, schemes, hosts, ports, paths, userinfo)
def test_a_url_is_allowed_only_by_its_exact_origin_and_a_path_on_a_segment_boundary(
    e_scheme, e_host, e_port, e_path, u_scheme, u_host, u_port, u_path, u_info
):
    from sessionkit._propagation import Targets

    default = {"http": 80, "https": 443, "ws": 80, "ftp": -1}
    entry = f"{e_scheme}://{_netloc(e_host, e_port)}{e_path}"
    url = f"{u_scheme}://{u_info}{_netloc(u_host, u_port)}{u_path}"
    allowed = Targets([entry]).allows(url)
    prefix = e_path.rstrip("/")
    path = u_path or "/"
    expected = (
        not u_info
        and e_scheme == u_scheme
        and e_host == u_host
        and (e_port if e_port is not None else default[e_scheme])
        == (u_port if u_port is not None else default[u_scheme])
        and (not prefix or path == prefix or path.startswith(prefix + "/"))
    )
    assert allowed == expected, (entry, url)

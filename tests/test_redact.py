"""Secrets never leave the process: headers and query secrets are never recorded; captured content
is redacted before it is put on a span."""

from __future__ import annotations

import httpx
import pytest
import sessionkit
from sessionkit._redact import Redactor
from sessionkit.fake_llm import FakeLLMServer

SECRETS = {
    "authorization": "Bearer sk-live-AUTHHEADER0123456789",
    "x-api-key": "sk-ant-XAPIKEY0123456789abcdef",
    "api-key": "azure-APIKEY-0123456789abcdef",
    "cookie": "session=COOKIE0123456789",
}
QUERY = {"key": "QUERYKEY0123456789", "token": "QUERYTOKEN0123456789", "secret": "QUERYSECRET0123456789"}


def test_headers_and_query_secrets_appear_in_no_exported_byte(receiver, tmp_path):
    with FakeLLMServer() as server:
        c = sessionkit.Client(endpoint=receiver.endpoint, llm_base_urls=[server.url], capture_content=True)
        files = sessionkit.Client(file_dir=tmp_path / "files", llm_base_urls=[server.url], capture_content=True)
        try:
            for client in (c, files):
                with client.session("secrets"):
                    response = httpx.post(
                        server.openai_base_url + "/chat/completions",
                        params=QUERY,
                        headers=SECRETS,
                        json={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
                    )
                    assert response.status_code == 200
                client.flush(timeout=10)
            assert receiver.wait_for(lambda spans: any(s.name == "chat m" for s in spans))
            exported = b"".join(receiver.raw) + b"".join(p.read_bytes() for p in (tmp_path / "files").glob("*.jsonl"))
            assert b"chat m" in exported and b"hello" in exported  # content capture was on
            for value in [*SECRETS.values(), *QUERY.values()]:
                assert value.encode() not in exported, value
            # ... while the server did receive them: sessionkit did not strip them from the call
            sent = server.requests[-1]["headers"]
            assert sent["authorization"] == SECRETS["authorization"] and sent["cookie"] == SECRETS["cookie"]
        finally:
            c.shutdown(timeout=2)
            files.shutdown(timeout=2)


def test_captured_content_is_redacted_by_default_patterns_and_the_hook():
    seen = []

    def hook(text: str) -> str:
        seen.append(text)
        return text.replace("ORDER-SECRET", "[order]")

    c = sessionkit.Client(exporter="memory", capture_content=True, redact=hook)
    try:

        @c.tool(name="t")
        def tool(note):
            return f"done for jane.doe@example.com with sk-proj-{'A' * 24}"

        with c.session("s"):
            tool("token Bearer abcdef0123456789xyz, key sk-ant-api03-" + "b" * 30 + ", ref ORDER-SECRET")
        span = next(s for s in c.exporter.get_finished_spans() if s.name == "execute_tool t")
        everything = repr(dict(span.attributes))
        for secret in ("abcdef0123456789xyz", "b" * 30, "jane.doe@example.com", "A" * 24, "ORDER-SECRET"):
            assert secret not in everything
        assert "[REDACTED]" in span.attributes["input.value"] and "[order]" in span.attributes["input.value"]
        assert seen and all("abcdef0123456789xyz" not in text for text in seen)  # defaults run first
    finally:
        c.shutdown(timeout=1)


def test_a_failing_redact_hook_drops_the_content_instead_of_leaking_it(caplog):
    def broken(text: str) -> str:
        raise RuntimeError("hook bug")

    assert Redactor(broken, defaults=True)("my secret text") == "[REDACTED]"
    assert Redactor(lambda text: 42, defaults=False)("x") == "[REDACTED]"  # type: ignore[arg-type,return-value]
    assert "hook bug" in caplog.text or "redact hook raised" in caplog.text


def test_redact_must_be_callable():
    with pytest.raises(sessionkit.ConfigError, match="redact"):
        sessionkit.Client(exporter="memory", redact="not a function")  # type: ignore[arg-type]


def test_otlp_headers_from_the_environment_are_used_but_never_logged(receiver, monkeypatch, caplog):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20ENVSECRET0123456789")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    with caplog.at_level("DEBUG"):
        c = sessionkit.Client()
        with c.session("s"):
            pass
        c.flush(timeout=5)
        c.configure(service_name="other")  # a reconfigure logs what changed: names, not values
        c.shutdown(timeout=2)
    assert receiver.headers[0]["authorization"] == "Bearer ENVSECRET0123456789"
    assert "ENVSECRET0123456789" not in caplog.text
    assert "ENVSECRET0123456789" not in repr(c) and "ENVSECRET0123456789" not in repr(c.config.masked())

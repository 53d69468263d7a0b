from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sessionkit
import sessionkit.api
from opentelemetry import context as otel_context
from sessionkit._current import current as sessionkit_current

sys.path.insert(0, str(Path(__file__).parent))

from sessionkit.fake_llm import FakeLLMServer

from otlp_receiver import OtlpReceiver

# Variables that steer the test suite itself, not sessionkit.
TEST_CONTROLS = {"SESSIONKIT_PHOENIX_VENV", "SESSIONKIT_UPDATE_SCREENSHOTS"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SESSIONKIT_* / OTEL_* from the machine; the file store in a temporary folder; no
    default client carried from one test to the next."""
    for name in list(os.environ):
        if name.startswith(("SESSIONKIT_", "OTEL_")) and name not in TEST_CONTROLS:
            monkeypatch.delenv(name)
    monkeypatch.setenv("SESSIONKIT_FILE_DIR", str(tmp_path / "store"))
    # Each test starts outside any span and session, whatever an earlier one left current
    # (an imperative session never ended keeps its root attached on the main thread).
    otel_token = otel_context.attach(otel_context.Context())
    session_token = sessionkit_current.set(None)
    yield
    sessionkit.api.reset_default_client(timeout=2.0)
    sessionkit_current.reset(session_token)
    otel_context.detach(otel_token)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    """The fake OpenAI / Anthropic server on 127.0.0.1, for one test."""
    with FakeLLMServer() as s:
        yield s


@pytest.fixture
def make_client() -> Iterator[Callable[..., sessionkit.Client]]:
    """Make clients on the in-memory exporter (settings as given); all shut down after the test."""
    made: list[sessionkit.Client] = []

    def make(**settings: Any) -> sessionkit.Client:
        client = sessionkit.Client(exporter="memory", **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(timeout=2)


@pytest.fixture
def client() -> Iterator[sessionkit.Client]:
    """A client on the in-memory exporter (synchronous: spans are there when they end)."""
    c = sessionkit.Client(exporter="memory", service_name="test-svc")
    yield c
    c.shutdown(timeout=2.0)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture
def dead_port() -> int:
    """A loopback port with nothing listening (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

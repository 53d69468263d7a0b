"""Testing your own agent with sessionkit: a pytest plugin and the object it hands you.

Installed with sessionkit (a ``pytest11`` entry point), so any test can ask for it::

    def test_the_agent_answers_in_one_turn(sessionkit_capture):
        answer = my_agent("Where is my order?")      # uses sessionkit.init() / @sessionkit.tool
        (session,) = sessionkit_capture.session_ids()
        sessionkit_capture.assert_session(session, state="success", turns=1, llm_calls=1)
        assert sessionkit_capture.spans(name="execute_tool search_orders")

The fixture's ``client`` exports to memory, is isolated per test, and is the default client
while the test runs (``sessionkit.init()`` returns it, the module-level decorators and the LLM
wire hooks record into it); the default client from before comes back afterwards.
``Capture`` works without pytest too: ``with Capture() as capture: ...``.

The plugin costs nothing until its fixture is used: loading it imports neither OpenTelemetry
nor the client (``Capture`` is loaded from ``sessionkit._capture`` when first asked for).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._capture import Capture
    from .fake_llm import FakeLLMServer, FakeProviderServer

__all__ = ["Capture", "FakeLLMServer", "FakeProviderServer", "sessionkit_capture"]

if not TYPE_CHECKING:

    def __getattr__(name: str):
        if name == "Capture":
            from ._capture import Capture

            return Capture
        if name in ("FakeLLMServer", "FakeProviderServer"):  # the fake LLM servers, for your tests
            from . import fake_llm

            return getattr(fake_llm, name)
        raise AttributeError(f"module 'sessionkit.testing' has no attribute {name!r}")


try:  # the pytest plugin (this module is registered as one); without pytest, Capture alone
    import pytest
except ImportError:  # pragma: no cover - pytest is what loads the plugin
    pass
else:

    @pytest.fixture
    def sessionkit_capture() -> Iterator[Capture]:
        """A :class:`Capture` for the test: a memory-exporting client, the default client while
        the test runs, shut down after it."""
        from ._capture import Capture

        capture = Capture()
        capture.install()
        try:
            yield capture
        finally:
            capture.close()

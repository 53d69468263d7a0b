"""``Capture``: a memory-exporting client for a test, and questions about what it recorded
(the implementation behind :mod:`sessionkit.testing`, loaded when a test first uses it)."""

from __future__ import annotations

from typing import Any, Optional, Union

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from . import api, semconv
from ._client import Client
from ._payloads.llm import counts_as_llm_call
from ._session import Session

__all__ = ["Capture", "turn_roots"]

_SessionRef = Union[str, Session]


class Capture:
    """A memory-exporting client for a test, and questions about what it recorded.

    ``options`` are the client's settings (``capture_content=True``, ``trace_per="session"``,
    ...); the exporter is always ``"memory"``. As a context manager it is the default client
    inside the block."""

    def __init__(self, **options: Any) -> None:
        if "exporter" in options:
            raise TypeError("sessionkit: Capture(...) always exports to memory; leave out exporter=")
        options.setdefault("service_name", "sessionkit-test")
        options.setdefault("handle_sigterm", False)
        self.client: Client = Client(exporter="memory", **options)
        """The client the test's spans go to."""
        self._previous: Optional[Client] = None
        self._installed = False

    # -- lifetime ---------------------------------------------------------------------------------
    def install(self) -> None:
        """Make ``client`` the default client: ``sessionkit.init(...)`` then returns it as it is
        (the agent's own settings do not reconfigure it)."""
        if not self._installed:
            self._previous = api.swap_default_client(self.client, pinned=True)
            self._installed = True

    def close(self) -> None:
        """Shut the client down and give the default client back."""
        if self._installed:
            api.swap_default_client(self._previous)
            self._installed = False
        self.client.shutdown(timeout=2.0)

    def __enter__(self) -> Capture:
        self.install()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- what was recorded --------------------------------------------------------------------------
    def spans(self, name: Optional[str] = None, session: Optional[_SessionRef] = None) -> list[ReadableSpan]:
        """The finished spans, in the order they ended: all, or those named ``name``, or those
        of ``session`` (a ``Session`` or its id; its record included)."""
        exporter = self.client.exporter
        found: list[ReadableSpan] = list(exporter.get_finished_spans()) if exporter is not None else []  # type: ignore[attr-defined]
        if name is not None:
            found = [s for s in found if s.name == name]
        if session is not None:
            session_id = _id_of(session)
            found = [s for s in found if _session_of(s) == session_id]
        return found

    def session_ids(self) -> list[str]:
        """The ids of the sessions whose spans were recorded, in the order each first appeared."""
        seen: dict[str, None] = {}
        for span in self.spans():
            session_id = _session_of(span)
            if session_id is not None:
                seen.setdefault(session_id, None)
        return list(seen)

    def record(self, session: _SessionRef) -> Optional[ReadableSpan]:
        """The session's record (its root span, exported when it ended), or None while it runs."""
        session_id = _id_of(session)
        for span in self.spans():
            attrs = span.attributes or {}
            if attrs.get(semconv.SPAN_TYPE) == semconv.SPAN_TYPE_SESSION and _session_of(span) == session_id:
                return span
        return None

    def turns(self, session: _SessionRef) -> list[ReadableSpan]:
        """The roots of the session's turns (explicit and implicit), by turn index."""
        return turn_roots(self.spans(session=session))

    def llm_calls(self, session: Optional[_SessionRef] = None) -> list[ReadableSpan]:
        """The LLM calls (each counted once: a call seen on the wire inside an LLM span is the
        wire span), of ``session`` or of all."""
        return [s for s in self.spans(session=session) if counts_as_llm_call(s.attributes or {})]

    def errors(self, session: Optional[_SessionRef] = None) -> list[ReadableSpan]:
        """The spans that ended with an error status."""
        return [s for s in self.spans(session=session) if s.status.status_code is StatusCode.ERROR]

    def clear(self) -> None:
        """Forget the spans recorded so far."""
        exporter = self.client.exporter
        if exporter is not None:
            exporter.clear()  # type: ignore[attr-defined]

    # -- assertions -------------------------------------------------------------------------------------
    def assert_session(
        self,
        session: _SessionRef,
        *,
        state: Optional[str] = None,
        turns: Optional[int] = None,
        llm_calls: Optional[int] = None,
        errors: Optional[int] = None,
        user_id: Optional[str] = None,
        thread_id: Optional[str] = None,
    ) -> None:
        """Check what a session recorded; an ``AssertionError`` says which figure differs and
        lists the session's spans. Each check is left out when its argument is None."""
        session_id = _id_of(session)
        spans = self.spans(session=session_id)
        problems: list[str] = []
        if not spans:
            problems.append("no span of this session was recorded")
        if state is not None:
            record = self.record(session_id)
            got = (record.attributes or {}).get(semconv.SESSION_END_STATE) if record is not None else "(still running)"
            if got != state:
                problems.append(f"state is {got!r}, expected {state!r}")
        for label, expected, got_count in (
            ("turns", turns, len(self.turns(session_id)) if turns is not None else 0),
            ("LLM calls", llm_calls, len(self.llm_calls(session_id)) if llm_calls is not None else 0),
            ("errors", errors, len(self.errors(session_id)) if errors is not None else 0),
        ):
            if expected is not None and got_count != expected:
                problems.append(f"{label}: {got_count}, expected {expected}")
        for label, key, expected_id in (
            ("user_id", semconv.USER_ID, user_id),
            ("thread_id", semconv.GEN_AI_CONVERSATION_ID, thread_id),
        ):
            if expected_id is not None:
                got_ids = {(s.attributes or {}).get(key) for s in spans if key in (s.attributes or {})}
                if got_ids != {expected_id}:
                    problems.append(f"{label}: {sorted(map(str, got_ids))}, expected {expected_id!r}")
        if problems:
            listing = "\n".join(f"  {s.name}" for s in spans) or "  (none)"
            raise AssertionError(f"session {session_id}: " + "; ".join(problems) + f"\nits spans:\n{listing}")


def _id_of(session: _SessionRef) -> str:
    if isinstance(session, Session):
        return session.id
    if isinstance(session, str):
        return session
    raise TypeError(f"sessionkit: pass a Session or a session id (str); got {session!r}")


def _session_of(span: ReadableSpan) -> Optional[str]:
    attrs = span.attributes or {}
    value = attrs.get(semconv.SESSION_ID) or attrs.get(semconv.RECORD_SESSION_ID)
    return value if isinstance(value, str) else None


def turn_roots(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """The roots of the turns among ``spans`` (explicit: a ``turn`` span; implicit: the
    top-level call marked ``sessionkit.turn.implicit``, whatever its parent: with
    ``trace_per="session"`` it is the session's root), by turn index."""
    roots = [
        s
        for s in spans
        if (s.attributes or {}).get(semconv.SPAN_TYPE) == semconv.SPAN_TYPE_TURN
        or (s.attributes or {}).get(semconv.TURN_IMPLICIT)
    ]
    return sorted(roots, key=lambda s: int((s.attributes or {}).get(semconv.TURN_INDEX, 0)))  # type: ignore[arg-type]

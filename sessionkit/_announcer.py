"""Announcer: makes running sessions visible in the collector (a ``session.start`` marker
span in each session still running at the next export tick)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Optional

from . import semconv
from ._context import pid
from ._errors import internal_errors
from ._session import Session
from ._spans import (
    set_clean_attributes,
)
from ._types import Host

if TYPE_CHECKING:
    pass


__all__ = ["Announcer"]

logger = logging.getLogger("sessionkit")

_MARKER_ATTRIBUTES = {semconv.SPAN_TYPE: semconv.SPAN_TYPE_SESSION_START}


class Announcer:
    """Makes sessions visible in the collector while they run.

    A session's root span is exported when it ends. Every ``export_interval`` a background tick
    starts and ends a short ``session.start`` marker span in each session that is still running,
    so a long session (or one whose process crashes) shows up soon after it starts. A session
    that ends before the tick needs no marker: its root goes out in the same batch.
    """

    def __init__(self, host: Host) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._pending: dict[str, Session] = {}  # by id; a session that ends is let go at once
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._pid = pid()

    def add(self, session: Session) -> None:
        with self._lock:
            self._pending[session.id] = session
            if self._thread is None or self._pid != pid():
                if self._pid != pid():  # a forked child: the parent's sessions were announced there
                    self._pending = {session.id: session}
                    self._pid = pid()
                self._thread = threading.Thread(target=self._run, name="sessionkit-announcer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        host = self._host
        while not host.closed:
            self._wake.wait(host.config.export_interval)
            self.announce()
            with self._lock:
                if not self._pending:  # nothing left to announce: no idle thread; add() starts one
                    self._thread = None
                    return

    def discard(self, session: Session) -> None:
        """``session`` ended: it needs no marker (its root is exported now)."""
        self._pending.pop(session.id, None)  # one dict operation, on whichever dict is current

    def announce(self) -> None:
        """Export a start marker for every session still running that has none yet."""
        with self._lock:
            pending, self._pending = self._pending, {}
        host = self._host
        for session in list(pending.values()):  # (a copy: discard() may still pop from it)
            if session.end_state is None and host.recording:
                with internal_errors("announcing a running session"):
                    marker = host.tracer.start_span(
                        semconv.SESSION_START_SPAN_NAME, context=session.record_context(), start_time=session.started_ns
                    )
                    set_clean_attributes(marker, _MARKER_ATTRIBUTES)
                    marker.end()

    def stop(self) -> None:
        self._wake.set()

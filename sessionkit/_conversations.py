"""Conversations: one session per conversation id, kept across runs.

A framework run outside any session that names its conversation (the Agents SDK's
``group_id``, LangGraph's ``thread_id``) continues the session of that conversation, a turn per
run, instead of starting a session per run; ``Client.conversation`` does the same for a
program's own conversations (a chat bot's handler per message). The session ends when the
conversation has been idle for ``conversation_idle_timeout`` seconds (no call for it, and no turn
of it open), or when the client closes.

One daemon thread per client ends idle conversations. It runs only while some are open, and
sleeps until the next one is due, so an idle process does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

from ._errors import internal_errors
from ._registry import SessionRegistry
from ._session import Session
from ._types import EndState

__all__ = ["Conversations"]

logger = logging.getLogger("sessionkit")


class Conversations:
    """A client's open conversations by id (see the module's docstring)."""

    def __init__(self, registry: SessionRegistry, idle_timeout: float) -> None:
        self._registry = registry
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._open: dict[str, tuple[Session, float]] = {}  # id -> (its session, when last used)
        self._wake = threading.Event()
        self._sweeper: Optional[threading.Thread] = None
        self._closed = False

    def session(self, thread_id: str, name: str, user_id: Optional[str] = None) -> Session:
        """The session of conversation ``thread_id``: the open one, else a new one (not made
        current here). Each call restarts the conversation's idle clock."""
        with self._lock:
            found = self._open.get(thread_id)
            if found is not None and found[0].is_active:
                session = found[0]
            else:
                if user_id is None:
                    session = self._registry.open(name, thread_id=thread_id)
                else:
                    session = self._registry.open(name, thread_id=thread_id, user_id=user_id)
                if not self._closed and self._sweeper is None:
                    self._sweeper = threading.Thread(target=self._sweep, name="sessionkit-conversations", daemon=True)
                    self._sweeper.start()
            self._open[thread_id] = (session, time.monotonic())
        self._wake.set()
        return session

    @property
    def open_count(self) -> int:
        """Conversations open now."""
        return len(self._open)

    def close(self) -> None:
        """Stop ending idle conversations (the client is closing; its registry ends the sessions)."""
        with self._lock:
            self._closed = True
            self._open.clear()
        self._wake.set()

    def end_idle(self, now: Optional[float] = None) -> float:
        """End the conversations idle for the timeout; the seconds until the next one is due
        (inf when none is open)."""
        now = time.monotonic() if now is None else now
        idle: list[Session] = []
        wait = float("inf")
        with self._lock:
            for key, (session, used) in list(self._open.items()):
                if not session.is_active:
                    del self._open[key]  # ended by the program
                    continue
                left = used + self.idle_timeout - now
                if left > 0:
                    wait = min(wait, left)
                elif any(turn.is_active and not turn.implicit for turn in session.turns):
                    wait = min(wait, self.idle_timeout)  # a turn still open: not idle
                else:
                    del self._open[key]
                    idle.append(session)
        for session in idle:
            with internal_errors("ending an idle conversation"):
                session.end(EndState.SUCCESS, f"the conversation was idle for {self.idle_timeout:g} s")
        return wait

    def _sweep(self) -> None:
        while True:
            self._wake.clear()  # (before looking: a call from now on wakes the wait below)
            wait = self.end_idle()
            with self._lock:
                if self._closed or not self._open:
                    self._sweeper = None
                    return
            self._wake.wait(None if wait == float("inf") else wait + 0.01)

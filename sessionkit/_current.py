"""Which session the running code is in: the ``current`` ContextVar, and making a session
current and undoing it.

A session is made current in two ways. ``start_session()`` makes it current until it ends
(``Place.start_here``; its end gives back what was current before it). A ``with`` block makes
it current for the block (``Place.enter`` / ``leave``). asyncio tasks inherit the ContextVar;
``_context`` carries it into threads and pools.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, Optional

from opentelemetry import context as otel_context

if TYPE_CHECKING:
    from ._session import Session  # type-only: the value the ContextVar holds

__all__ = ["Place", "current", "make_current", "restore"]

logger = logging.getLogger("sessionkit")

current: contextvars.ContextVar[Optional[Session]] = contextvars.ContextVar("sessionkit_session", default=None)
"""The session the running code belongs to (None outside any session)."""

Token = tuple[contextvars.Token[Optional["Session"]], object]


def make_current(session: Session) -> Token:
    """Make ``session`` (and its root) current here; ``restore`` the result to undo it."""
    return current.set(session), otel_context.attach(session.root_context)


def restore(token: Token) -> None:
    """Undo ``make_current``. ValueError when called in another context than the one it was made current in."""
    current.reset(token[0])
    otel_context.detach(token[1])  # type: ignore[arg-type]


class Place:
    """Where one session was made current, and what was current before it there."""

    __slots__ = ("session", "previous", "previous_otel", "_tokens")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.previous: Optional[Place] = None  # the session current before start_here()
        self.previous_otel: Optional[otel_context.Context] = None  # the context before start_here()
        self._tokens: list[Token] = []  # per entered ``with`` block

    def start_here(self) -> None:
        """Make the session current in the calling context until it ends (``start_session``)."""
        before = current.get()
        self.previous = None if before is None else before.place
        self.previous_otel = otel_context.get_current()
        current.set(self.session)
        otel_context.attach(self.session.root_context)

    def enter(self) -> None:
        """A ``with`` block of the session begins: current until ``leave``."""
        self._tokens.append(make_current(self.session))

    def leave(self) -> None:
        """The ``with`` block ends: what was current at ``enter`` comes back."""
        if self._tokens:
            try:
                restore(self._tokens.pop())
            except ValueError:
                logger.debug("sessionkit: session %s exited in another context than it entered", self.session.id)

    def ended(self) -> None:
        """The session ended. Started imperatively and ended where it is current: restore what
        was current before it, skipping sessions that ended meanwhile (A, then B, A ended first:
        ending B restores what was current before A, never A's ended root). A session started
        in a block and ended: its block restores the rest. (``previous`` and ``previous_otel``
        stay: a session started after this one restores past it through them.)"""
        if current.get() is not self.session or self.previous_otel is None:
            return
        previous = self.previous
        outer = self.previous_otel
        while previous is not None and not previous.session.is_active and previous.previous_otel is not None:
            outer = previous.previous_otel
            previous = previous.previous
        current.set(previous.session if previous is not None and previous.session.is_active else None)
        if self.session.is_current_here():
            otel_context.attach(outer)

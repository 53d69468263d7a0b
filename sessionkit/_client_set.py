"""The live clients a process-wide hook serves, and the one a call goes to.

The wire hooks (LLM calls) and the global tracer provider are shared by every client of the
process; each keeps a ``ClientSet`` of the clients it serves. A call goes to the client of the
current session, else the default client (``sessionkit.init``'s), else the newest.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, Optional, Protocol, TypeVar

from ._current import current

__all__ = ["ClientSet", "Served"]


class Served(Protocol):
    """What a client set needs of a client. Implemented by ``Client``."""

    @property
    def closed(self) -> bool: ...


C = TypeVar("C", bound=Served)


class ClientSet(Generic[C]):
    """Clients, held weakly, and the pick of one per call (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: list[weakref.ref[C]] = []
        self.default_client: Optional[Callable[[], Optional[C]]] = None
        """Set by ``sessionkit.api``: the default client, preferred when several are served."""

    def add(self, client: C) -> None:
        with self._lock:
            kept = [r for r in self._clients if r() is not None and r() is not client]
            self._clients = [*kept, weakref.ref(client)]

    def clients(self) -> list[C]:
        """The clients held now (open or not)."""
        return [c for c in (r() for r in self._clients) if c is not None]

    def remove(self, client: C) -> bool:
        """Forget ``client``; True when no client is left."""
        with self._lock:
            self._clients = [r for r in self._clients if r() is not None and r() is not client]
            return not self._clients

    def owner_or_pick(self) -> Optional[Any]:
        """The client a call belongs to: the current session's own client, even one this set
        does not hold (it decides for its calls, e.g. to leave them out), else :meth:`pick`."""
        session = current.get()
        return session.client if session is not None else self.pick()

    def pick(self) -> Optional[C]:
        refs = self._clients  # replaced whole on change, never mutated: safe to read unlocked
        if len(refs) == 1:  # the common case: one client
            only = refs[0]()
            return only if only is not None and not only.closed else None
        clients = [c for c in (r() for r in refs) if c is not None and not c.closed]
        if not clients:
            return None
        session = current.get()
        if session is not None and session.client in clients:
            return session.client
        default = self.default_client() if self.default_client is not None else None
        if default is not None and default in clients:
            return default
        return clients[-1]

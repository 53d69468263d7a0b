"""The exceptions sessionkit raises into user code: only for misuse of its public API."""

from __future__ import annotations

import logging
from typing import Any


class SessionkitError(Exception):
    """Base class of every error sessionkit raises on purpose."""


CLIENT_SHUT_DOWN = "sessionkit: this client was shut down; call sessionkit.init() for a new one"
"""What using a shut-down client says (an error on a strict client or at configure, else a warning)."""


class ConfigError(SessionkitError, ValueError):
    """A setting has a value sessionkit cannot use. The message names the setting and the fix."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class SessionStateError(SessionkitError, RuntimeError):
    """A session was used in a state that does not allow it (raised only with ``strict=True``)."""


class ChannelError(SessionkitError, LookupError):
    """A channel call that cannot be right: closing a channel that is not open, opening one twice."""


class internal_errors:
    """``with internal_errors("what it was doing"):`` — sessionkit's own failures inside the block
    are logged on the ``sessionkit`` logger (with the traceback the first time for each ``what``,
    at DEBUG after that) and swallowed, never raised into the program. ``BaseException``
    (KeyboardInterrupt, SystemExit) passes through."""

    __slots__ = ("what",)
    _seen: set[str] = set()

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None or not issubclass(exc_type, Exception):
            return False
        first = self.what not in internal_errors._seen
        if first and len(internal_errors._seen) < 1024:
            internal_errors._seen.add(self.what)
        logging.getLogger("sessionkit").log(
            logging.ERROR if first else logging.DEBUG,
            "sessionkit: error while %s (ignored)",
            self.what,
            exc_info=(exc_type, exc, tb),
        )
        return True

"""The exceptions sessionkit raises into user code: only for misuse of its public API."""

from __future__ import annotations

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

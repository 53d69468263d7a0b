"""The exceptions sessionkit raises into user code: for misuse of its public API, and
``BudgetExceeded`` for a budget the user asked to enforce (``on_exceed="raise"``)."""

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


class BudgetExceeded(BaseException):
    """A session passed a limit of its :class:`~sessionkit.Budget` with ``on_exceed="raise"``:
    raised by the session's next LLM request, before it is sent (from inside the provider SDK's
    HTTP call, on any provider).

    It derives from ``BaseException``, like ``KeyboardInterrupt``, on purpose: provider SDKs
    retry and re-wrap any ``Exception`` their HTTP layer raises (the openai and anthropic SDKs
    would turn it into a connection error and send the request again), and agent frameworks
    catch ``Exception`` around tools and model calls. A budget stop must reach the code that
    set the budget: catch it by name (``except sessionkit.BudgetExceeded``)."""

    def __init__(self, session_id: str, limit: str, limit_value: float, consumed: float) -> None:
        self.session_id = session_id
        self.limit = limit
        """Which limit: ``usd``, ``tokens``, ``llm_calls``, ``turns`` or ``seconds``."""
        self.limit_value = limit_value
        self.consumed = consumed
        super().__init__(
            f"sessionkit: session {session_id} is over its budget of {limit_value:g} {limit} "
            f"(consumed {consumed:.6g}); its LLM requests are refused (on_exceed='raise'). "
            "Raise the budget, or end the session and start a new one"
        )

    def __reduce__(self) -> Any:
        return (type(self), (self.session_id, self.limit, self.limit_value, self.consumed))


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

"""sessionkit: observability for AI agent sessions.

A :class:`Client` holds independent :class:`Session` objects; every span started in a session
carries its identity and is exported over OTLP. The functions here act on the default client
that :func:`init` creates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from ._errors import ConfigError, SessionkitError, SessionStateError
from .client import Client, SessionScope, get_client, init
from .channels import Channel, ChannelAttempt, ChannelError
from .config import Config, Options
from .decorators import SpanDecorator, record_llm_usage
from .history import HistoryLoad
from .history import history_loader as _history_loader
from .session import EndState, Session

if TYPE_CHECKING:
    from .models import ClientStats, OpenChannel, SessionSummary

__version__ = "0.1.0"

__all__ = [
    "Channel",
    "ChannelAttempt",
    "ChannelError",
    "Client",
    "ClientStats",
    "Config",
    "ConfigError",
    "EndState",
    "HistoryLoad",
    "OpenChannel",
    "Options",
    "Session",
    "SessionScope",
    "SessionStateError",
    "SessionsTable",
    "SessionSummary",
    "SessionkitError",
    "SpanDecorator",
    "agent",
    "current_session",
    "end_session",
    "flush",
    "get_client",
    "history_loader",
    "init",
    "llm",
    "record_llm_usage",
    "session",
    "shutdown",
    "start_session",
    "task",
    "tool",
    "trace",
]

# Decorators bound to the default client at call time, so decorating at import time, before
# init(), works. Without a client they call the function untouched.
agent = SpanDecorator("agent", get_client)
tool = SpanDecorator("tool", get_client)
task = SpanDecorator("task", get_client)
llm = SpanDecorator("llm", get_client)
trace = SpanDecorator("trace", get_client)


def __getattr__(name: str) -> Any:
    # Loaded when first asked for, not at import: the notebook display, and the pydantic
    # records (pydantic would otherwise be the largest part of ``import sessionkit``).
    if name == "SessionsTable":
        from .notebook import SessionsTable

        return SessionsTable
    if name in ("ClientStats", "OpenChannel", "SessionSummary"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'sessionkit' has no attribute {name!r}")
history_loader = _history_loader(get_client)


def _client() -> Client:
    client = get_client()
    return client if client is not None else init()


def start_session(
    name: str = "session",
    *,
    thread_id: Optional[str] = None,
    user_id: Optional[str] = None,
    tags: Union[None, str, Iterable[str]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> Session:
    """Start a session on the default client (calling :func:`init` first if needed)."""
    return _client().start_session(name, thread_id=thread_id, user_id=user_id, tags=tags, metadata=metadata)


def session(
    name: str = "session",
    *,
    thread_id: Optional[str] = None,
    user_id: Optional[str] = None,
    tags: Union[None, str, Iterable[str]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> SessionScope:
    """A ``with`` / ``async with`` session on the default client."""
    return _client().session(name, thread_id=thread_id, user_id=user_id, tags=tags, metadata=metadata)


def end_session(
    state: Union[EndState, str] = EndState.SUCCESS,
    reason: Optional[str] = None,
    *,
    session: Optional[Session] = None,
) -> Optional[Session]:
    """End ``session`` or the current one; with none active, log a warning and return None."""
    client = session.client if session is not None else get_client()
    if client is None:
        import logging

        logging.getLogger("sessionkit").warning("sessionkit: end_session() before init(); nothing to end")
        return None
    return client.end_session(state, reason, session=session)


def current_session() -> Optional[Session]:
    """The session the calling code belongs to, or None."""
    client = get_client()
    return client.current_session() if client is not None else None


def flush(timeout: float = 5.0) -> bool:
    """Flush the default client within ``timeout`` seconds."""
    client = get_client()
    return client.flush(timeout) if client is not None else True


def shutdown(timeout: Optional[float] = None) -> bool:
    """Shut the default client down within ``timeout`` seconds."""
    client = get_client()
    return client.shutdown(timeout) if client is not None else True

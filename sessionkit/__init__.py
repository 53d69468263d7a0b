"""sessionkit: observability for AI agent sessions.

A :class:`Client` holds independent :class:`Session` objects; every span started in a session
carries its identity and is exported over OTLP. The functions here act on the default client
that :func:`init` creates. This module only re-exports; the code lives in private modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._channels import Channel, ChannelAttempt
from ._client import Client
from ._config import Config, Options
from ._decorators import SpanDecorator, record_llm_usage
from ._errors import ChannelError, ConfigError, SessionkitError, SessionStateError
from ._history import HistoryLoad, HistoryLoaderDecorator
from ._session import Session
from ._sessions import ContinuedScope, SessionScope, TurnDecorator
from ._telemetry import VERSION as __version__
from ._turn import Turn
from ._types import EndState, SessionFields
from .api import (
    agent,
    current_session,
    end_session,
    flush,
    get_client,
    history_loader,
    init,
    llm,
    session,
    shutdown,
    start_session,
    task,
    tool,
    trace,
    turn,
)

if TYPE_CHECKING:
    from ._models import ClientStats, OpenChannel, SessionSummary, SpanRecord, TurnSummary
    from ._render import SessionsTable
    from ._store.query import Store, open_store
    from ._store.schema import StoreError

__all__ = [
    "Channel",
    "ChannelAttempt",
    "ChannelError",
    "Client",
    "ClientStats",
    "Config",
    "ConfigError",
    "ContinuedScope",
    "EndState",
    "HistoryLoad",
    "HistoryLoaderDecorator",
    "OpenChannel",
    "Options",
    "Session",
    "SessionFields",
    "SessionScope",
    "SessionStateError",
    "SessionSummary",
    "SessionkitError",
    "SessionsTable",
    "SpanDecorator",
    "SpanRecord",
    "Store",
    "StoreError",
    "Turn",
    "TurnDecorator",
    "TurnSummary",
    "__version__",
    "agent",
    "current_session",
    "end_session",
    "flush",
    "get_client",
    "history_loader",
    "init",
    "llm",
    "open_store",
    "record_llm_usage",
    "session",
    "shutdown",
    "start_session",
    "task",
    "tool",
    "trace",
    "turn",
]


def __getattr__(name: str) -> Any:
    # Loaded when first asked for, not at import: the pydantic records (pydantic would otherwise
    # be the largest part of ``import sessionkit``) and the notebook table.
    if name == "SessionsTable":
        from ._render import SessionsTable

        return SessionsTable
    if name in ("Store", "open_store"):
        from ._store import query

        return getattr(query, name)
    if name == "StoreError":
        from ._store.schema import StoreError

        return StoreError
    if name in ("ClientStats", "OpenChannel", "SessionSummary", "SpanRecord", "TurnSummary"):
        from . import _models

        return getattr(_models, name)
    raise AttributeError(f"module 'sessionkit' has no attribute {name!r}")

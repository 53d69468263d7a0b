"""sessionkit: observability for AI agent sessions.

A :class:`Client` holds independent :class:`Session` objects; every span started in a session
carries its identity and is exported over OTLP. The functions here act on the default client
that :func:`init` creates. This module only re-exports; the code lives in private modules.

Every name is loaded the first time it is asked for (PEP 562), so ``import sessionkit`` (and the
pytest plugin, and the command line) costs nothing until a client, a record or the store is
used: ``sessionkit.init()`` imports the OpenTelemetry SDK, not ``import sessionkit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._budget import Budget
    from ._channels import Channel, ChannelAttempt
    from ._client import Client
    from ._config import Config, Options
    from ._decorators import SpanDecorator, record_llm_usage
    from ._errors import BudgetExceeded, ChannelError, ConfigError, SessionkitError, SessionStateError
    from ._findings import Detector, EndedSpan, EndedTurn, Finding, Severity
    from ._history import HistoryLoad, HistoryLoaderDecorator
    from ._models import ClientStats, OpenChannel, SessionSummary, SpanRecord, TurnSummary
    from ._render import SessionsTable
    from ._scopes import ContinuedScope, SessionScope, TurnDecorator
    from ._session import Session
    from ._store.query import Store, open_store
    from ._store.schema import StoreError
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

# Where each public name lives (the module, relative to this package, and the name there).
_WHERE: dict[str, tuple[str, str]] = {
    "Budget": ("._budget", "Budget"),
    **{n: ("._channels", n) for n in ("Channel", "ChannelAttempt")},
    # (through sessionkit.api: a client made as sessionkit.Client(...) needs the process hooks
    # the module-level API sets, as pool work submitted in its sessions runs in them)
    "Client": (".api", "Client"),
    **{n: ("._config", n) for n in ("Config", "Options")},
    **{n: ("._decorators", n) for n in ("SpanDecorator", "record_llm_usage")},
    **{
        n: ("._errors", n)
        for n in ("BudgetExceeded", "ChannelError", "ConfigError", "SessionkitError", "SessionStateError")
    },
    **{n: ("._findings", n) for n in ("Detector", "EndedSpan", "EndedTurn", "Finding", "Severity")},
    **{n: ("._history", n) for n in ("HistoryLoad", "HistoryLoaderDecorator")},
    **{n: ("._models", n) for n in ("ClientStats", "OpenChannel", "SessionSummary", "SpanRecord", "TurnSummary")},
    "SessionsTable": ("._render", "SessionsTable"),
    "Session": ("._session", "Session"),
    **{n: ("._scopes", n) for n in ("ContinuedScope", "SessionScope", "TurnDecorator")},
    **{n: ("._store.query", n) for n in ("Store", "open_store")},
    "StoreError": ("._store.schema", "StoreError"),
    "__version__": ("._telemetry", "VERSION"),
    "Turn": ("._turn", "Turn"),
    **{n: ("._types", n) for n in ("EndState", "SessionFields")},
    **{
        n: (".api", n)
        for n in (
            "agent",
            "current_session",
            "end_session",
            "flush",
            "get_client",
            "history_loader",
            "init",
            "llm",
            "session",
            "shutdown",
            "start_session",
            "task",
            "tool",
            "trace",
            "turn",
        )
    },
}

__all__ = [
    "Budget",
    "BudgetExceeded",
    "Channel",
    "ChannelAttempt",
    "ChannelError",
    "Client",
    "ClientStats",
    "Config",
    "ConfigError",
    "ContinuedScope",
    "Detector",
    "EndState",
    "EndedSpan",
    "EndedTurn",
    "Finding",
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
    "Severity",
    "SpanDecorator",
    "SpanRecord",
    "Store",
    "StoreError",
    "Turn",
    "TurnDecorator",
    "TurnSummary",
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
    "__version__",
]

if not TYPE_CHECKING:  # type checkers read the imports above; a misspelt name stays an error for them

    def __getattr__(name: str):
        where = _WHERE.get(name)
        if where is None:
            raise AttributeError(f"module 'sessionkit' has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(where[0], __name__), where[1])
        globals()[name] = value  # asked once: later reads are plain attribute reads
        return value

    def __dir__():
        return sorted(set(globals()) | set(_WHERE))

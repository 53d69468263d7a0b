"""The module-level API: the default client and the functions and decorators that act on it.

``sessionkit.init()`` creates the default client, or reconfigures it in place when it exists,
so re-running a notebook's ``init`` cell returns the same client instead of stacking a second
pipeline on the first. The slot survives ``importlib.reload`` of this module. Everything here
is re-exported by ``sessionkit``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional, Union, cast

from typing_extensions import Unpack

from . import _global, _wire, integrations
from ._client import Client
from ._config import Options
from ._context import set_process_hooks
from ._current import current as _current
from ._decorators import SpanDecorator
from ._history import HistoryLoaderDecorator
from ._scopes import SessionScope, TurnDecorator
from ._session import Session
from ._types import EndState, SessionFields

__all__ = [
    "agent",
    "current_session",
    "end_session",
    "flush",
    "get_client",
    "history_loader",
    "init",
    "llm",
    "reset_default_client",
    "swap_default_client",
    "session",
    "shutdown",
    "start_session",
    "task",
    "tool",
    "trace",
    "turn",
]

# Kept across importlib.reload of this module: re-executing it must not forget the client.
if "_default_lock" not in globals():
    _default_lock = threading.Lock()
    _default: Optional[Client] = None
    _pinned: Optional[Client] = None  # a default client init() leaves as it is (swap_default_client)


def init(**options: Unpack[Options]) -> Client:
    """Create the default client, or reconfigure it in place when it exists.

    Calling it again with the same settings returns the same client and adds nothing.
    """
    global _default
    with _default_lock:
        if _default is not None and _default is _pinned and not _default.closed:
            return _default  # a test's capture client: the agent's own init() must not reconfigure it
        if _default is None or _default.closed:
            _default = Client(**options)
        else:
            _default.configure(**options)
        return _default


def get_client() -> Optional[Client]:
    """The default client, or None before :func:`init`."""
    return _default


def swap_default_client(client: Optional[Client], *, pinned: bool = False) -> Optional[Client]:
    """Make ``client`` the default client (None: none) and return the one it replaces, which is
    left running (``sessionkit.testing`` puts a test's client in and the old one back).
    ``pinned``: while it is the default, ``init(...)`` returns it unchanged (the code under test
    calls ``init`` with its own settings; the test's client must keep exporting to memory)."""
    global _default, _pinned
    if client is not None and not isinstance(client, Client):
        raise TypeError(f"sessionkit: swap_default_client() takes a Client or None; got {client!r}")
    with _default_lock:
        previous, _default = _default, client
        _pinned = client if pinned else None
    return previous


def reset_default_client(timeout: float = 2.0) -> None:
    """Shut the default client down and forget it (for test suites: each test starts with none)."""
    global _default
    with _default_lock:
        client, _default = _default, None
    if client is not None:
        client.shutdown(timeout=timeout)


# -- process pools ---------------------------------------------------------------------------------
# Settings a spawned worker's client is made with (the rest are objects that do not cross).
_UNCARRIED = frozenset({"tracer_provider", "meter_provider", "redact", "auto_start_session", "handle_sigterm"})
POOL_FLUSH_TIMEOUT = 5.0
"""Seconds a pool worker waits, after each task, for the task's spans to be exported."""


def _pool_carrier() -> Optional[tuple[dict[str, str], dict[str, Any]]]:
    """What work submitted to a process pool here carries: the session's headers and the
    client's settings, or None outside a session."""
    session = _current.get()
    client = session.client if session is not None else _default
    if not isinstance(client, Client) or client.closed:
        return None
    headers = client.propagation_headers()
    if not headers:
        return None
    config = client.config
    options: dict[str, Any] = {}
    for name in config.names():
        value = getattr(config, name)
        if name in _UNCARRIED or (name == "exporter" and not isinstance(value, str)):
            continue
        options[name] = value
    return headers, options


def _run_pool_task(task: Any, args: tuple, kwargs: dict) -> Any:
    """In a pool worker: the task, inside the submitter's session; its spans exported before
    its result goes back (a pool may end its workers without running exit handlers)."""
    client: Optional[Client] = None
    continued: Any = None
    try:
        headers, options = task.carried
        client = _default
        if client is None or client.closed:
            client = init(**options)  # a spawned worker: a client like the submitter's
        continued = client.continue_session(headers, trust=True)
        continued.__enter__()
    except Exception:
        logging.getLogger("sessionkit").warning(
            "sessionkit: could not continue the session in a pool worker (the task runs without)", exc_info=True
        )
        continued = None
    failure: Optional[BaseException] = None
    try:
        return task.fn(*args, **kwargs)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        try:
            if continued is not None:
                continued.__exit__(type(failure) if failure else None, failure, None)
            if client is not None:
                client.flush(POOL_FLUSH_TIMEOUT)
        except Exception:
            logging.getLogger("sessionkit").debug("sessionkit: could not end a pool task's session", exc_info=True)


set_process_hooks(_pool_carrier, _run_pool_task)

# The wire-level hook prefers the default client when several clients record.
_wire.registry.default_client = get_client
_global.registry.default_client = get_client
integrations.registry.default_client = get_client

# Decorators bound to the default client at call time, so decorating at import time, before
# init(), works. Without a client they call the function untouched.
agent = SpanDecorator("agent", get_client)
tool = SpanDecorator("tool", get_client)
task = SpanDecorator("task", get_client)
llm = SpanDecorator("llm", get_client)
trace = SpanDecorator("trace", get_client)
turn = TurnDecorator(get_client)
history_loader = HistoryLoaderDecorator(get_client)


def _client() -> Client:
    client = get_client()
    return client if client is not None else init()


def start_session(name: str = "session", **fields: Unpack[SessionFields]) -> Session:
    """Start a session on the default client (calling :func:`init` first if needed)."""
    return _client().start_session(name, **fields)


def session(name: str = "session", **fields: Unpack[SessionFields]) -> SessionScope:
    """A ``with`` / ``async with`` session on the default client, or a session per call as a
    decorator (calling :func:`init` first if needed)."""
    return _client().session(name, **fields)


def end_session(
    state: Union[EndState, str] = EndState.SUCCESS,
    reason: Optional[str] = None,
    *,
    session: Optional[Session] = None,
) -> Optional[Session]:
    """End ``session`` or the current one; with none active, log a warning and return None."""
    client: Any = session.client if session is not None else get_client()
    if client is None:
        logging.getLogger("sessionkit").warning("sessionkit: end_session() before init(); nothing to end")
        return None
    return cast(Client, client).end_session(state, reason, session=session)


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

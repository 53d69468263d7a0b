"""Carrying the current context into threads and thread pools, and the process id.

The current session is a :class:`contextvars.ContextVar` (it lives with ``Session``), so asyncio
tasks inherit it. Threads
do not inherit context variables on Python < 3.14, so sessionkit patches ``Thread.start`` and
``ThreadPoolExecutor.submit`` once per process: a thread started inside a session, and work
submitted to a pool, run in a copy of the submitter's context (the OpenTelemetry context
included, so parent spans carry over too).
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import wrapt

_MARKER = "__sessionkit_patched__"
_lock = threading.Lock()
# The variable whose being set means "inside a session" (the one install_propagation was given).
_watched: Optional[contextvars.ContextVar[Any]] = None

# The process id, kept here (each os.getpid() is a system call, and sessions check it to tell a
# forked child from its parent): set again in a child at fork.
_pid = os.getpid()


def pid() -> int:
    """This process's id, without a system call."""
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _thread_start(wrapped: Callable[..., Any], instance: threading.Thread, args: Any, kwargs: Any) -> Any:
    # Only a thread started inside a session gets the starter's context; others are left as
    # Python makes them. Binding run on the instance also covers subclasses that override run.
    if _watched is not None and _watched.get() is not None:
        instance.run = functools.partial(contextvars.copy_context().run, instance.run)  # type: ignore[method-assign]
    return wrapped(*args, **kwargs)


def _pool_submit(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    # Always run the item in the submitter's context, even with no session: a pool thread may
    # have been started inside some session and must not lend it to later work.
    if not args:
        return wrapped(*args, **kwargs)
    fn, rest = args[0], args[1:]
    return wrapped(functools.partial(contextvars.copy_context().run, fn), *rest, **kwargs)


def install_propagation(watched: contextvars.ContextVar[Any]) -> None:
    """Patch threads and thread pools to carry the current context. A thread gets its starter's
    context when ``watched`` is set there (inside a session). Idempotent, reload-safe."""
    global _watched
    with _lock:
        _watched = watched
        if getattr(threading.Thread, _MARKER, False):
            return
        wrapt.wrap_function_wrapper(threading.Thread, "start", _thread_start)
        wrapt.wrap_function_wrapper(ThreadPoolExecutor, "submit", _pool_submit)
        setattr(threading.Thread, _MARKER, True)


def at_fork_in_child(method: Callable[[], Any]) -> None:
    """Call the bound ``method`` in a forked child, without keeping its object alive: the hook
    holds a weak reference (the OpenTelemetry SDK's pattern), so an object that is let go, such
    as the export pipeline replaced at re-init, is collected as usual."""
    if not hasattr(os, "register_at_fork"):
        return
    weak = weakref.WeakMethod(method)

    def in_child() -> None:
        bound = weak()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=in_child)

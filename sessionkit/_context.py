"""Carrying the current context into threads, thread pools and process pools, and the process id.

The current session is a :class:`contextvars.ContextVar` (it lives with ``Session``), so asyncio
tasks inherit it. Threads
do not inherit context variables on Python < 3.14, so sessionkit patches ``Thread.start`` and
``ThreadPoolExecutor.submit`` once per process: a thread started inside a session, and work
submitted to a pool, run in a copy of the submitter's context (the OpenTelemetry context
included, so parent spans carry over too).

Process pools (``concurrent.futures.ProcessPoolExecutor``, ``multiprocessing.Pool``) cannot
share a context: work submitted inside a session is wrapped in a ``ProcessTask`` that carries
the session's propagation headers (and the client's settings, for a spawned worker that has no
client yet), and runs in the worker inside the same session. What makes the carrier and what
runs the task are hooks the module-level API sets (``set_process_hooks``): this module only
carries them.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import pool as mp_pool
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
    _free_import_hook_lock()


def _free_import_hook_lock() -> None:
    """In a forked child: a fresh lock for wrapt's post-import hooks. Every import passes
    through wrapt's finder, which takes that lock; a thread of the parent that held it at the
    fork (importing, or running a post-import hook) does not exist here and never lets it go,
    so the child's next import would wait forever (a pool worker hung on its first task)."""
    try:
        importer = importlib.import_module("wrapt.importer")  # (wrapt ships no types for it)
        if "_post_import_hooks_lock" in vars(importer):
            vars(importer)["_post_import_hooks_lock"] = threading.RLock()
    except Exception:
        pass


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


# (make, run): make(fn) -> the carried state for work submitted here, or None (no session);
# run(task, args, kwargs) -> the task's result, in the worker. Set by sessionkit.api.
_process_hooks: Optional[tuple[Callable[[], Any], Callable[..., Any]]] = None


def set_process_hooks(make: Callable[[], Any], run: Callable[..., Any]) -> None:
    global _process_hooks
    _process_hooks = (make, run)


class ProcessTask:
    """A pool task submitted inside a session: ``fn``, what the worker continues the session
    from, and ``run``, the module-level function that runs it there. Pickled to the worker by
    reference: unpickling ``run`` imports the module that defines it (in a spawned worker,
    nothing else would), so the task never depends on what the worker imported before."""

    __slots__ = ("fn", "carried", "run", "__weakref__")

    def __init__(self, fn: Callable[..., Any], carried: Any, run: Callable[..., Any]) -> None:
        self.fn = fn
        self.carried = carried
        self.run = run

    def __getstate__(self) -> tuple[Any, Any, Any]:
        return (self.fn, self.carried, self.run)

    def __setstate__(self, state: tuple[Any, Any, Any]) -> None:
        self.fn, self.carried, self.run = state

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(self, args, kwargs)


def _carried(fn: Any) -> Any:
    """``fn`` wrapped for a process pool when submitted inside a session, else ``fn``."""
    if _watched is None or _process_hooks is None or isinstance(fn, ProcessTask) or not callable(fn):
        return fn
    try:
        carried = _process_hooks[0]()
    except Exception:
        return fn
    return fn if carried is None else ProcessTask(fn, carried, _process_hooks[1])


def _first_carried(keyword: str) -> Callable[..., Any]:
    """A wrapper for a pool method whose first argument (or ``keyword``) is the work to carry."""

    def method(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if args:
            args = (_carried(args[0]), *args[1:])
        elif keyword in kwargs:
            kwargs[keyword] = _carried(kwargs[keyword])
        return wrapped(*args, **kwargs)

    return method


# multiprocessing.Pool's entry points: map, starmap and their async forms go through _map_async.
_POOL_METHODS = ("apply_async", "_map_async", "imap", "imap_unordered")


def install_propagation(watched: contextvars.ContextVar[Any]) -> None:
    """Patch threads, thread pools and process pools to carry the current context (a process
    pool: the session, through ``ProcessTask``). A thread gets its starter's
    context when ``watched`` is set there (inside a session). Idempotent, reload-safe."""
    global _watched
    with _lock:
        _watched = watched
        if getattr(threading.Thread, _MARKER, False):
            return
        wrapt.wrap_function_wrapper(threading.Thread, "start", _thread_start)
        wrapt.wrap_function_wrapper(ThreadPoolExecutor, "submit", _pool_submit)
        wrapt.wrap_function_wrapper(ProcessPoolExecutor, "submit", _first_carried("fn"))
        for name in _POOL_METHODS:
            if hasattr(mp_pool.Pool, name):
                wrapt.wrap_function_wrapper(mp_pool.Pool, name, _first_carried("func"))
        setattr(threading.Thread, _MARKER, True)


def around_fork(
    before: Callable[[], Any], after_in_parent: Callable[[], Any], after_in_child: Callable[[], Any]
) -> None:
    """Fork hooks of one object's bound methods, held weakly (as ``at_fork_in_child``)."""
    if not hasattr(os, "register_at_fork"):
        return
    hooks = [weakref.WeakMethod(m) for m in (before, after_in_parent, after_in_child)]

    def call(index: int) -> Callable[[], None]:
        def hook() -> None:
            bound = hooks[index]()
            if bound is not None:
                bound()

        return hook

    os.register_at_fork(before=call(0), after_in_parent=call(1), after_in_child=call(2))


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

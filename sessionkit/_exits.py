"""What runs as the process ends: interpreter exit, SIGTERM, a forked child's exit.

Every path here ends the same way: each live client ends its open sessions and exports what
is left within its ``shutdown_timeout`` (``Ending.end_for_exit``), and nothing it does can
hold the process or raise into it.

- **Interpreter exit** (``atexit``): one hook for the process, over the live clients (held
  weakly: a client the program dropped is not kept alive by the hook).
- **A forked child** leaves through ``os._exit`` when ``multiprocessing`` made it, which skips
  ``atexit``; ``multiprocessing`` runs its own finalizers first, so the child registers one
  there (``_child_exit``). A forked child also gets SIGTERM's default action back: a pool's
  ``terminate()`` SIGTERMs its workers and joins them with no timeout, and a worker must die of
  it at once, whatever its main thread is blocked in.
- **SIGTERM**, where nobody else handles it and this is no ``multiprocessing`` child: Python's
  default action ends the process without ``atexit``, so sessions would never end and queued
  spans never leave. sessionkit's handler ends them, then dies of SIGTERM as the process
  would have. A Python-level handler runs only when the main thread next runs bytecode, which a
  main thread blocked in a lock never does, and the kernel may hand the signal to any thread.
  So the C-level side of the signal (the wakeup fd, when the program has set none) wakes the
  ``sessionkit-sigterm`` watcher thread directly; the watcher runs the bounded shutdown in a
  helper thread, then takes SIGTERM's default action itself. The Python-level handler, when it
  does run, takes no lock: it wakes the watcher, waits for it (bounded, ``select``) and takes
  the default action. Either way the process ends within the clients' ``shutdown_timeout``
  plus a second.

Nothing here takes a lock that user code or the SDK can hold, and every wait is bounded.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import signal
import sys
import threading
import weakref
from typing import Any, Optional, Protocol

from ._errors import internal_errors

__all__ = ["Ending", "install_sigterm_handler", "register"]

logger = logging.getLogger("sessionkit")


class Ending(Protocol):
    """What the exit paths need of a client. Implemented by ``Client``."""

    @property
    def shutdown_timeout(self) -> float:
        """How long ending may take, in seconds."""
        ...

    def end_for_exit(self, reason: str) -> bool:
        """End the open sessions and export what is left, within ``shutdown_timeout``; never raises."""
        ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_registered = [False]


def register(client: Ending) -> None:
    """Make ``client`` end with the process (held weakly)."""
    _live.add(client)
    if not _registered[0]:
        _registered[0] = True
        atexit.register(_at_exit)


def _end_all(reason: str) -> None:
    for client in list(_live):
        with internal_errors("ending a client at exit"):  # a broken client must not stop the others
            client.end_for_exit(reason)


def _bound() -> float:
    """How long ending every live client may take: the longest ``shutdown_timeout``, plus a second."""
    timeouts = []
    for client in list(_live):
        try:
            timeouts.append(float(client.shutdown_timeout))
        except Exception:
            pass
    return max(timeouts, default=0.0) + 1.0


# -- interpreter exit -------------------------------------------------------------------------------
def _at_exit() -> None:
    interrupted = _unhandled_keyboard_interrupt()
    _end_all("the process exited before the session ended")
    if interrupted is not None and interrupted.value == 0:
        # Building the exporter here imports protobuf's C extension, which clears CPython's
        # "ended by Ctrl-C" flag; put it back so the process still exits as interrupted (130).
        interrupted.value = 1


def _unhandled_keyboard_interrupt() -> Any:
    """CPython's flag that the program ended by an unhandled KeyboardInterrupt, when it is set
    (a ``ctypes.c_int`` to restore it with), else None. Other interpreters: None."""
    try:
        import ctypes

        flag = ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt")
        return flag if flag.value else None
    except Exception:
        return None


# -- a forked child's exit --------------------------------------------------------------------------
class _ChildExit:
    """The object ``multiprocessing``'s after-fork registry holds (it keeps values weakly)."""


_child_exit_token = _ChildExit()


def _child_exit(_token: object) -> None:
    """In a ``multiprocessing`` child, after its start: end the clients when the child returns,
    in ``multiprocessing``'s own exit function (it leaves by ``os._exit``, skipping ``atexit``)."""
    with internal_errors("registering a forked child's exit flush"):
        from multiprocessing import util

        util.Finalize(None, _end_all, args=("the process exited before the session ended",), exitpriority=10)


def _after_fork_in_child() -> None:
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if _watcher is not None and _watcher.wakeup_set:
                signal.set_wakeup_fd(-1)
    except Exception:
        pass
    util = sys.modules.get("multiprocessing.util")
    if util is not None and _live:
        with internal_errors("registering a forked child's exit flush"):
            util.register_after_fork(_child_exit_token, _child_exit)  # run after it clears inherited finalizers


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- SIGTERM ----------------------------------------------------------------------------------------
class _Watcher:
    """The thread that ends the clients on SIGTERM (see the module's docstring). One per process."""

    def __init__(self) -> None:
        self.wake_read, self.wake_write = os.pipe()  # the Python-level handler writes here
        self.done_read, self.done_write = os.pipe()  # the watcher answers here when it is done
        self.signal_read, self.signal_write = os.pipe()  # the wakeup fd: the C-level side writes here
        for fd in (self.signal_read, self.signal_write):
            os.set_blocking(fd, False)
        self.wakeup_set = False
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._run, name="sessionkit-sigterm", daemon=True)
        self.thread.start()

    def use_wakeup_fd(self) -> None:
        """Hear SIGTERM from the C-level handler too, unless the program set a wakeup fd of its own."""
        try:
            previous = signal.set_wakeup_fd(self.signal_write, warn_on_full_buffer=False)
        except (ValueError, OSError):
            return
        if previous not in (-1, self.signal_write):
            signal.set_wakeup_fd(previous)  # someone else's (an event loop's): theirs, not ours
            return
        self.wakeup_set = True

    def _run(self) -> None:
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # let it reach another thread
        except (AttributeError, OSError, ValueError):
            pass
        while True:
            try:
                ready, _, _ = select.select([self.wake_read, self.signal_read], [], [])
            except OSError:
                return
            from_handler = self.wake_read in ready
            if from_handler:
                os.read(self.wake_read, 1)
            elif not _sigterm_in(self.signal_read):
                continue  # another signal's byte (SIGINT, a handler of the program's)
            _end_bounded()
            os.write(self.done_write, b"x")
            if not from_handler:
                # The main thread may never run the Python-level handler (blocked in a lock):
                # take SIGTERM's default action from here.
                _die_of_sigterm()


def _sigterm_in(fd: int) -> bool:
    try:
        data = os.read(fd, 512)
    except OSError:
        return False
    return bytes([signal.SIGTERM]) in data


def _end_bounded() -> None:
    """End every live client in a helper thread, waiting at most ``_bound()``: an interrupted
    main thread may hold a lock the shutdown needs."""
    thread = threading.Thread(
        target=_end_all, args=("the process received SIGTERM",), name="sessionkit-sigterm-end", daemon=True
    )
    thread.start()
    thread.join(_bound())


def _die_of_sigterm() -> None:
    """SIGTERM's default action, from any thread."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        libc.signal(int(signal.SIGTERM), 0)  # SIG_DFL
        os.kill(os.getpid(), signal.SIGTERM)
    except Exception:
        pass
    os._exit(128 + int(signal.SIGTERM))


_watcher: Optional[_Watcher] = None
_warned_thread = [False]


def _on_sigterm(signum: int, frame: Any) -> None:
    watcher = _watcher
    try:
        if watcher is not None and watcher.pid == os.getpid() and watcher.thread.is_alive():
            os.write(watcher.wake_write, b"x")
            select.select([watcher.done_read], [], [], _bound())
    except Exception:  # never let the handler itself keep the process alive
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _in_multiprocessing_child() -> bool:
    if "--multiprocessing-fork" in sys.argv:  # a spawn or forkserver child, before its start
        return True
    process = sys.modules.get("multiprocessing.process")
    try:
        return process is not None and process.parent_process() is not None
    except Exception:
        return False


def install_sigterm_handler() -> None:
    """Handle SIGTERM as the module's docstring says, where that is safe: on the main thread,
    where nobody else handles it, and not in a ``multiprocessing`` child (whose parent may
    terminate it at any moment and wait for it with no timeout)."""
    global _watcher
    try:
        handler = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):
        return
    if threading.current_thread() is not threading.main_thread():
        if handler is signal.SIG_DFL and not _warned_thread[0]:
            _warned_thread[0] = True
            logger.warning(
                "sessionkit: init() ran outside the main thread, where Python allows no signal handler: on "
                "SIGTERM, open sessions end unexported. Call sessionkit.init() once on the main thread, or call "
                "client.shutdown() from your own SIGTERM handler (handle_sigterm=False silences this)."
            )
        return
    if handler is not signal.SIG_DFL and handler is not _on_sigterm:
        return  # someone else handles SIGTERM: theirs to decide
    if _in_multiprocessing_child():
        return
    try:
        if _watcher is None or _watcher.pid != os.getpid() or not _watcher.thread.is_alive():
            _watcher = _Watcher()
        signal.signal(signal.SIGTERM, _on_sigterm)
        _watcher.use_wakeup_fd()
    except (ValueError, OSError):
        logger.debug("sessionkit: could not install the SIGTERM handler", exc_info=True)

"""Scopes and decorators over the session registry: ``ContinuedScope`` (a caller's session for
a block), ``SessionScope`` and ``@client.session`` (a session per block or call), and
``TurnDecorator`` (``@client.turn``: a turn per call)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Optional, Protocol, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from ._current import current, make_current, restore
from ._propagation import Incoming, session_kept
from ._registry import SessionRegistry
from ._session import Session
from ._spans import ARRIVAL_KEY, Arrival, is_clean_exit
from ._turn import Turn
from ._types import EndState, Host, SessionFields, check_fields
from ._wrap import bound_arguments, signature_of, wrap

F = TypeVar("F", bound=Callable[..., Any])
_TRACE_ID_MASK = 0xFFFFFFFFFFFFFFFF  # the low 64 bits, as OpenTelemetry's ratio sampler reads them

__all__ = ["ContinuedScope", "SessionScope", "TurnDecorator", "TurnHost", "session_decorator"]

logger = logging.getLogger("sessionkit")


class ContinuedScope:
    """``with client.continue_session(headers) as session:``: the block runs in the caller's
    session (``session`` is it, or None when the headers carry none), under the caller's span.
    The session continued here ends with the block (``fail`` on an exception).

    ``trusted`` (``trust=True``: the caller is this program's own, a pool task, an internal
    service) lets the request join a session this process has open and keeps the caller's
    sampling decision. Otherwise the request gets a session object of its own (its user is the
    caller's), its trace id joins nothing here, and ``sample_rate`` decides its sampling."""

    def __init__(
        self, registry: SessionRegistry, incoming: Incoming, name: Optional[str], trusted: bool = False
    ) -> None:
        self._registry = registry
        self._incoming = incoming
        self._name = name
        self._trusted = trusted
        self._stack: list[tuple[Optional[Session], bool, Any, Any, Optional[int]]] = []

    def __enter__(self) -> Optional[Session]:
        incoming = self._incoming
        registry = self._registry
        session: Optional[Session] = None
        owned = False
        parent = incoming.parent
        try:
            if incoming.session_id is not None and registry.host.recording:
                known = registry.by_id.get(incoming.session_id)
                if (
                    self._trusted
                    and known is not None
                    and known.is_active
                    and known.started_in_this_process
                    and not known.continues_a_caller  # (another request's: each request has its own)
                ):
                    session = known  # the caller is in this process: join its session
                else:
                    if parent is not None and not self._trusted:
                        parent = _with_our_sampling(parent, incoming.session_id, registry.host.config.sample_rate)
                    remote = (parent, incoming.turn_index, incoming.project) if parent is not None else None
                    session = registry.open(
                        self._name or "session",
                        remote,
                        incoming=True,
                        session_id=incoming.session_id,
                        thread_id=incoming.thread_id,
                        user_id=incoming.user_id,
                    )
                    owned = True
            elif parent is not None and not self._trusted:
                parent = _with_our_sampling(parent, None, registry.host.config.sample_rate)
        except Exception:
            logger.warning("sessionkit: could not continue session %r (ignored)", incoming.session_id, exc_info=True)
            session, owned = None, False
        context = otel_context.get_current()
        arriving: Optional[int] = None
        if parent is not None:
            outer = trace.get_current_span(context)
            if not (outer.is_recording() and outer.get_span_context().trace_id == parent.trace_id):
                # (else a server span made from the same headers by an outer middleware, the
                # app's own OpenTelemetry instrumentation, is current: the request's spans go under it)
                context = trace.set_span_in_context(NonRecordingSpan(parent), context)
            arriving = parent.trace_id
            context = otel_context.set_value(ARRIVAL_KEY, Arrival(arriving, session), context)
            registry.arriving[arriving] = registry.arriving.get(arriving, 0) + 1
        elif session is not None:
            context = session.root_context
        session_token = current.set(session) if session is not None else None
        self._stack.append((session, owned, session_token, otel_context.attach(context), arriving))
        return session

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        session, owned, session_token, token, arriving = self._stack.pop()
        otel_context.detach(token)
        if session_token is not None:
            current.reset(session_token)
        if arriving is not None:
            left = self._registry.arriving.get(arriving, 1) - 1
            if left > 0:
                self._registry.arriving[arriving] = left
            else:
                self._registry.arriving.pop(arriving, None)
        if owned and session is not None and session.is_active:
            if exc is None or is_clean_exit(exc):
                session.end(EndState.SUCCESS)
            else:
                session.end(EndState.FAIL, f"{type(exc).__name__}: {exc}")

    async def __aenter__(self) -> Optional[Session]:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def _with_our_sampling(parent: SpanContext, session_id: Optional[str], rate: float) -> SpanContext:
    """An untrusted caller's span context with this service's sampling decision in place of the
    caller's flag: the session's, from its id, or (no session) the rate's, from the trace id."""
    if session_id is not None:
        kept = session_kept(session_id, rate)
    else:
        kept = rate >= 1.0 or (parent.trace_id & _TRACE_ID_MASK) < int(rate * (_TRACE_ID_MASK + 1))
    flags = TraceFlags(TraceFlags.SAMPLED if kept else TraceFlags.DEFAULT)
    if flags == parent.trace_flags:
        return parent
    return SpanContext(parent.trace_id, parent.span_id, True, flags, parent.trace_state)


# -- sessions in a block, and per call ------------------------------------------------------------
class SessionScope:
    """What :meth:`Client.session` returns: a session that starts on entering a block."""

    def __init__(self, registry: SessionRegistry, name: str, fields: SessionFields) -> None:
        check_fields(fields)
        self._registry = registry
        self._name = name
        self._fields = fields
        self._sessions: list[Session] = []

    def __enter__(self) -> Session:
        session = self._registry.open(self._name, **self._fields)
        self._sessions.append(session)
        return session.__enter__()

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self._sessions.pop().__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """As a decorator: each call of ``func`` runs in a new session of its own."""
        registry = self._registry
        return session_decorator(lambda: registry, self._name, self._fields)(func)


class _SessionRun:
    """One call of a session-decorated function: a new session for the call."""

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def enter(self) -> Any:
        return make_current(self.session)

    def leave(self, token: Any) -> None:
        restore(token)

    def end(self, exc: Optional[BaseException] = None, result: Any = None, completed: Optional[bool] = None) -> None:
        if exc is not None and not is_clean_exit(exc):
            self.session.end(EndState.FAIL, f"{type(exc).__name__}: {exc}")
        elif completed is False:
            self.session.end(EndState.INDETERMINATE, "the generator was closed before it finished")
        else:
            self.session.end(EndState.SUCCESS)


class _SessionSpec:
    __slots__ = ("name", "fields")
    needs_recording = False  # a session keeps its figures with tracing off too

    def __init__(self, name: str, fields: SessionFields) -> None:
        self.name = name
        self.fields = fields

    def run(self, registry: SessionRegistry, instance: Any, args: tuple, kwargs: dict) -> _SessionRun:
        return _SessionRun(registry.open(self.name, **self.fields))


def session_decorator(
    get_registry: Callable[[], Optional[SessionRegistry]], name: str, fields: SessionFields
) -> Callable[[F], F]:
    """Each call of the decorated function runs in a new session of its own."""

    def decorate(f: F) -> F:
        return wrap(f, lambda target: _SessionSpec(name, fields), get_registry)

    return decorate


# -- a turn per call ------------------------------------------------------------------------------
class TurnHost(Host, Protocol):
    """What ``@client.turn`` needs of a client: a ``Host`` that knows the calling code's session.
    Implemented by ``Client``."""

    def current_session(self) -> Optional[Session]: ...


class _TurnRun:
    """One call of a turn-decorated function: a turn of the calling code's session."""

    __slots__ = ("turn",)

    def __init__(self, turn: Turn) -> None:
        self.turn = turn

    def enter(self) -> Any:
        return self.turn.enter()

    def leave(self, token: Any) -> None:
        self.turn.leave(token)

    def end(self, exc: Optional[BaseException] = None, result: Any = None, completed: Optional[bool] = None) -> None:
        self.turn.end_call(exc, result)


class _TurnSpec:
    __slots__ = ("name", "input", "signature")
    needs_recording = False  # a turn keeps its figures with tracing off too

    def __init__(self, name: Optional[str], input: Optional[str], func: Callable[..., Any]) -> None:
        self.name = name
        self.input = input
        self.signature = signature_of(func)
        if input is not None and self.signature is not None and input not in self.signature.parameters:
            raise TypeError(
                f"sessionkit: @turn(input={input!r}): {getattr(func, '__qualname__', func)!r} has no argument "
                f"{input!r}; name the argument that holds the user's message"
            )

    def run(self, client: TurnHost, instance: Any, args: tuple, kwargs: dict) -> Optional[_TurnRun]:
        session = client.current_session()
        if session is None:
            return None  # outside any session the call just runs (@client.session makes one per call)
        value: Any = None
        if self.input is not None:  # the argument the program named as the message: turn content
            value = bound_arguments(self.signature, instance, args, kwargs).get(self.input)
        elif client.config.capture_content:
            arguments = bound_arguments(self.signature, instance, args, kwargs)
            value = next(iter(arguments.values())) if len(arguments) == 1 else arguments  # the message itself
        return _TurnRun(session.turn(value, name=self.name))


class TurnDecorator:
    """``@turn``, ``@turn(name=..., input="message")``: each call is a turn of the session the
    calling code is in; its return value is the turn's output and ``input``'s argument its input
    (``capture_turn_content``, on by default); without ``input``, the arguments are the input
    when ``capture_content`` is on."""

    def __init__(self, get_client: Callable[[], Optional[TurnHost]]) -> None:
        self._get_client = get_client

    @overload
    def __call__(self, func: F, /) -> F: ...

    @overload
    def __call__(
        self, func: None = None, /, *, name: Optional[str] = None, input: Optional[str] = None
    ) -> Callable[[F], F]: ...

    def __call__(self, func: Any = None, /, *, name: Optional[str] = None, input: Optional[str] = None) -> Any:
        if isinstance(func, str):
            name, func = func, None
        if input is not None and not isinstance(input, str):
            raise TypeError(
                f"sessionkit: @turn(input=...) takes an argument's name, e.g. input='message'; got {input!r}"
            )

        def decorate(f: F) -> F:
            if not callable(f):
                raise TypeError(f"sessionkit: @turn decorates functions and methods, not {f!r}")
            return wrap(f, lambda target: _TurnSpec(name, input, target), self._get_client)

        return decorate(func) if func is not None else decorate

    def __repr__(self) -> str:
        return "<sessionkit.turn decorator>"

"""The wrap engine: a function, method, coroutine, generator, async generator or a class's
public methods made to run each call as a ``Run`` that a ``Spec`` makes (span decorators,
history loaders, sessions and turns are specs)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Optional, Protocol, TypeVar

import wrapt
from opentelemetry import context as otel_context

from ._types import Host

__all__ = ["ClientGetter", "CurrentSpanRun", "F", "Run", "Spec", "bound_arguments", "signature_of", "wrap"]

logger = logging.getLogger("sessionkit")

F = TypeVar("F", bound=Callable[..., Any])

ClientGetter = Callable[[], Any]
"""Returns the client (a ``Host``, or the session registry for the session decorator) or None."""


class Run(Protocol):
    """One decorated call: made current around each piece of the user's code, ended once. Implemented by
    the engine's calls."""

    def enter(self) -> Any: ...

    def leave(self, token: Any) -> None: ...

    def end(
        self, exc: Optional[BaseException] = None, result: Any = None, completed: Optional[bool] = None
    ) -> None: ...


class Spec(Protocol):
    """What a decorator was configured with; makes a run per call (None: run the call untraced).
    Implemented by the span, history-loader, session and turn specs."""

    needs_recording: bool
    """True when a run needs a recording client (spans); False when it is useful without (sessions)."""

    def run(self, client: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[Run]: ...


# -- recording helpers ------------------------------------------------------------------------------
def signature_of(func: Callable[..., Any]) -> Optional[inspect.Signature]:
    """``func``'s signature, or None for the callables that have none (some builtins)."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def bound_arguments(signature: Optional[inspect.Signature], instance: Any, args: tuple, kwargs: dict) -> Any:
    if signature is None:
        return {"args": list(args), "kwargs": kwargs}
    try:
        if instance is not None:
            bound = signature.bind_partial(instance, *args, **kwargs).arguments
            bound.pop(next(iter(signature.parameters)), None)  # self / cls
            return dict(bound)
        return dict(signature.bind_partial(*args, **kwargs).arguments)
    except TypeError:
        try:
            return dict(signature.bind_partial(*args, **kwargs).arguments)
        except TypeError:
            return {"args": list(args), "kwargs": kwargs}


# -- runs: what one decorated call opens and closes ------------------------------------------------
class CurrentSpanRun:
    """A run whose span (``self.context``) is current while the user's code executes."""

    __slots__ = ()
    context: otel_context.Context

    def enter(self) -> object:
        return otel_context.attach(self.context)

    def leave(self, token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]


# -- wrapping each kind of function ----------------------------------------------------------------
def _start(spec: Spec, client: Host, instance: Any, args: tuple, kwargs: dict) -> Optional[Run]:
    try:
        return spec.run(client, instance, args, kwargs)
    except Exception:
        logger.exception("sessionkit: could not start a span for %s (the call goes on untraced)", spec)
        return None


def _client_for(spec: Spec, get_client: ClientGetter) -> Optional[Host]:
    """The client to record a call with, or None: no client, or tracing off for a span kind."""
    client = get_client()
    if client is None or (spec.needs_recording and not client.recording):
        return None
    return client


def _wrap_function(spec: Spec, get_client: ClientGetter) -> Callable[..., Any]:
    own = getattr(spec, "plain_wrapper", None)  # a spec's own path for plain functions (span decorators)
    if own is not None:
        return own(get_client)
    span_only = spec.needs_recording

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        client = get_client()
        if client is None or (span_only and not client.recording):
            return wrapped(*args, **kwargs)
        run = _start(spec, client, instance, args, kwargs)
        if run is None:
            return wrapped(*args, **kwargs)
        token = run.enter()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            run.leave(token)
            run.end(exc)
            raise
        run.leave(token)
        run.end(None, result)
        return result

    return wrapper


def _wrap_coroutine(spec: Spec, get_client: ClientGetter) -> Callable[..., Any]:
    span_only = spec.needs_recording

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        async def call() -> Any:
            client = get_client()
            if client is None or (span_only and not client.recording):
                return await wrapped(*args, **kwargs)
            run = _start(spec, client, instance, args, kwargs)
            if run is None:
                return await wrapped(*args, **kwargs)
            token = run.enter()
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                run.leave(token)
                run.end(exc)
                raise
            run.leave(token)
            run.end(None, result)
            return result

        return call()

    return wrapper


def _traced_generator(gen: Generator[Any, Any, Any], run: Run) -> Generator[Any, Any, Any]:
    send_value: Any = None
    thrown: Optional[BaseException] = None
    ended = False
    try:
        while True:
            token = run.enter()
            try:
                if thrown is not None:
                    exc, thrown = thrown, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(send_value)
            except StopIteration as stop:
                run.leave(token)
                ended = True
                run.end(None, stop.value, completed=True)
                return stop.value
            except BaseException as exc:
                run.leave(token)
                ended = True
                run.end(exc)
                raise
            run.leave(token)
            try:
                send_value = yield item
            except GeneratorExit:
                token = run.enter()
                try:
                    gen.close()
                finally:
                    run.leave(token)
                raise
            except BaseException as exc:
                thrown = exc
    finally:
        if not ended:
            run.end(None, None, completed=False)


def _wrap_iterator(spec: Spec, get_client: ClientGetter, drive: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """For generators and async generators: the call makes the iterator; ``drive`` runs it
    inside the span, step by step."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        iterator = wrapped(*args, **kwargs)
        client = _client_for(spec, get_client)
        run = _start(spec, client, instance, args, kwargs) if client is not None else None
        return iterator if run is None else drive(iterator, run)

    return wrapper


async def _traced_async_generator(agen: AsyncGenerator[Any, Any], run: Run) -> AsyncGenerator[Any, Any]:
    send_value: Any = None
    thrown: Optional[BaseException] = None
    ended = False
    try:
        while True:
            token = run.enter()
            try:
                if thrown is not None:
                    exc, thrown = thrown, None
                    item = await agen.athrow(exc)
                else:
                    item = await agen.asend(send_value)
            except StopAsyncIteration:
                run.leave(token)
                ended = True
                run.end(None, None, completed=True)
                return
            except BaseException as exc:
                run.leave(token)
                ended = True
                run.end(exc)
                raise
            run.leave(token)
            try:
                send_value = yield item
            except GeneratorExit:
                token = run.enter()
                try:
                    await agen.aclose()
                finally:
                    run.leave(token)
                raise
            except BaseException as exc:
                thrown = exc
    finally:
        if not ended:
            run.end(None, None, completed=False)


def wrap(func: F, make_spec: Callable[[Callable[..., Any]], Spec], get_client: ClientGetter) -> F:
    """Wrap ``func`` (function, method, generator, async, or a class's public methods)."""
    if inspect.isclass(func):
        return _wrap_class(func, make_spec, get_client)  # type: ignore[return-value]
    target = func.__func__ if isinstance(func, (staticmethod, classmethod)) else func
    spec = make_spec(target)
    if inspect.isasyncgenfunction(target):
        wrapper = _wrap_iterator(spec, get_client, _traced_async_generator)
    elif inspect.iscoroutinefunction(target):
        wrapper = _wrap_coroutine(spec, get_client)
    elif inspect.isgeneratorfunction(target):
        wrapper = _wrap_iterator(spec, get_client, _traced_generator)
    else:
        wrapper = _wrap_function(spec, get_client)
    wrapped = wrapt.FunctionWrapper(target, wrapper)
    if isinstance(func, staticmethod):
        return staticmethod(wrapped)  # type: ignore[return-value]
    if isinstance(func, classmethod):
        return classmethod(wrapped)
    return wrapped  # type: ignore[return-value]


def _wrap_class(cls: type, make_spec: Callable[[Callable[..., Any]], Spec], get_client: ClientGetter) -> type:
    for attr, value in list(vars(cls).items()):
        if attr.startswith("_"):
            continue
        func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if inspect.isfunction(func):
            setattr(cls, attr, wrap(value, make_spec, get_client))
    return cls

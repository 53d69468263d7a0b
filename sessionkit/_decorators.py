"""Decorators for agent code: agent, tool, task, llm and trace, and the engine that wraps them.

Each decorated call is a *run*: a ``Spec`` (what the decorator was configured with) makes a
``Run`` per call, which creates its span (or, for the session decorator, its session); ``enter``/``leave``
make it current around every piece of the user's code that executes, and ``end`` closes it
once. Generators are entered and left around each step, so the caller between two ``next``
calls never sees the generator's span, and closing or abandoning a generator from anywhere ends
the span exactly once.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Optional, Protocol, TypeVar, overload

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from . import semconv
from ._payloads.body import captured
from ._payloads.llm import cost_attributes, usage_attributes
from ._spans import attributes_of, is_clean_exit, record_error, set_clean_attributes
from ._types import Host
from ._values import as_count, to_attributes

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


class _Kind:
    """What a decorator kind writes: span name, span kind and fixed attributes."""

    __slots__ = ("name", "span_kind", "operation", "openinference", "name_attribute", "prefix")

    def __init__(
        self,
        name: str,
        openinference: str,
        *,
        operation: Optional[str] = None,
        name_attribute: Optional[str] = None,
        prefix: str = "",
        span_kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        self.name = name
        self.openinference = openinference
        self.operation = operation
        self.name_attribute = name_attribute
        self.prefix = prefix
        self.span_kind = span_kind


KINDS = {
    "agent": _Kind(
        "agent",
        "AGENT",
        operation=semconv.OPERATION_INVOKE_AGENT,
        name_attribute=semconv.GEN_AI_AGENT_NAME,
        prefix="invoke_agent ",
    ),
    "tool": _Kind(
        "tool",
        "TOOL",
        operation=semconv.OPERATION_EXECUTE_TOOL,
        name_attribute=semconv.GEN_AI_TOOL_NAME,
        prefix="execute_tool ",
    ),
    "llm": _Kind("llm", "LLM", operation=semconv.OPERATION_CHAT, prefix="chat ", span_kind=SpanKind.CLIENT),
    "task": _Kind("task", "CHAIN"),
    "trace": _Kind("trace", "CHAIN"),
}
_LLM, _TOOL = KINDS["llm"], KINDS["tool"]


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


def _usage_from(result: Any) -> tuple[Optional[int], Optional[int]]:
    """Token counts from an OpenAI- or Anthropic-shaped response object or dict, if present."""
    usage = result.get("usage") if isinstance(result, dict) else getattr(result, "usage", None)
    if usage is None:
        return None, None

    def pick(*names: str) -> Optional[int]:
        for name in names:
            value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    return pick("input_tokens", "prompt_tokens"), pick("output_tokens", "completion_tokens")


def record_llm_usage(
    input_tokens: Optional[int] = None,
    output_tokens: Optional[int] = None,
    *,
    response_model: Optional[str] = None,
    span: Optional[Span] = None,
) -> None:
    """Set token usage on the current (or given) LLM span, in both the GenAI and the
    OpenInference names. Use it inside an ``@llm`` function the HTTP layer cannot see."""
    for value, label in ((input_tokens, "input_tokens"), (output_tokens, "output_tokens")):
        if value is not None and as_count(value) is None:
            raise ValueError(f"sessionkit: {label} must be a non-negative int, got {value!r}")
    target = span if span is not None else trace.get_current_span()
    attrs: dict[str, Any] = usage_attributes(input_tokens, output_tokens)
    if response_model is not None:
        attrs[semconv.GEN_AI_RESPONSE_MODEL] = str(response_model)
    target.set_attributes(attrs)


# -- runs: what one decorated call opens and closes ------------------------------------------------
class CurrentSpanRun:
    """A run whose span (``self.context``) is current while the user's code executes."""

    __slots__ = ()
    context: otel_context.Context

    def enter(self) -> object:
        return otel_context.attach(self.context)

    def leave(self, token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]


class _SpanRun(CurrentSpanRun):
    """One call of a span-decorated function."""

    __slots__ = ("spec", "span", "context", "capture", "client")

    def __init__(self, spec: _SpanSpec, client: Host, instance: Any, args: tuple, kwargs: dict) -> None:
        self.spec = spec
        attributes = spec.attributes
        capture = spec.capture_content if spec.capture_content is not None else client.config.capture_content
        if capture:
            attributes = dict(attributes)
            arguments = bound_arguments(spec.signature, instance, args, kwargs)
            text = captured(arguments, client.config.max_content_length, client.redact)
            attributes[semconv.INPUT_VALUE] = text
            if spec.kind is _TOOL:
                attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = text
        # The processor stamps the session as the span starts; the decorator's own attributes are
        # valid already, so they go in without the SDK's per-value cleaning.
        current_context = otel_context.get_current()  # looked up once, for the parent and for the span's own
        parent = client.span_parent(current_context)
        self.span = client.tracer.start_span(spec.span_name, context=parent, kind=spec.kind.span_kind)
        set_clean_attributes(self.span, attributes, fresh=True)
        self.context = trace.set_span_in_context(self.span, current_context)
        self.capture = capture
        self.client = client

    def _price(self, span: Span) -> None:
        """The cost of an ``@llm`` call whose tokens are known (from its result, or
        ``record_llm_usage``), unless the call seen on the wire inside it carries it."""
        attrs = attributes_of(span)
        if semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs and semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in attrs:
            return  # nothing to price
        if attrs.get(semconv.LLM_COUNTED_IN_CHILD) or semconv.LLM_COST_TOTAL in attrs:
            return
        tokens_in = as_count(attrs.get(semconv.GEN_AI_USAGE_INPUT_TOKENS))
        tokens_out = as_count(attrs.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS))
        model = attrs.get(semconv.GEN_AI_RESPONSE_MODEL) or attrs.get(semconv.GEN_AI_REQUEST_MODEL)
        provider = attrs.get(semconv.GEN_AI_PROVIDER_NAME)
        cost = self.client.prices.cost(
            str(model) if model else None, str(provider) if provider else None, tokens_in, tokens_out
        )
        if cost is not None:
            span.set_attributes(cost_attributes(cost))

    def end(self, exc: Optional[BaseException] = None, result: Any = None, completed: Optional[bool] = None) -> None:
        span = self.span
        try:
            if exc is not None:
                if not is_clean_exit(exc):  # sys.exit(0) passing through is no error
                    record_error(span, exc)
            else:
                if self.capture:
                    text = captured(result, self.client.config.max_content_length, self.client.redact)
                    span.set_attribute(semconv.OUTPUT_VALUE, text)
                    if self.spec.kind is _TOOL:
                        span.set_attribute(semconv.GEN_AI_TOOL_CALL_RESULT, text)
                if (
                    self.spec.kind is _LLM
                    and result is not None
                    and not attributes_of(span).get(semconv.LLM_COUNTED_IN_CHILD)
                ):
                    tokens_in, tokens_out = _usage_from(result)
                    if tokens_in is not None or tokens_out is not None:
                        record_llm_usage(tokens_in, tokens_out, span=span)
            if self.spec.kind is _LLM:
                self._price(span)
            if completed is not None:
                span.set_attribute(semconv.GENERATOR_COMPLETED, completed)
        except Exception:
            logger.debug("sessionkit: could not record a result", exc_info=True)
        span.end()


# -- specs: what a decorator was configured with ---------------------------------------------------
def _default_name(func: Callable[..., Any]) -> str:
    """``name`` for a function, ``Class.name`` for a method."""
    parts = str(getattr(func, "__qualname__", "") or getattr(func, "__name__", "function")).split(".")
    if len(parts) >= 2 and parts[-2] != "<locals>":
        return f"{parts[-2]}.{parts[-1]}"
    return parts[-1]


class _SpanSpec:
    __slots__ = ("kind", "span_name", "attributes", "capture_content", "signature")
    needs_recording = True

    def __init__(
        self,
        kind: _Kind,
        func: Callable[..., Any],
        name: Optional[str],
        model: Optional[str],
        provider: Optional[str],
        capture_content: Optional[bool],
        attributes: dict[str, Any],
    ) -> None:
        label = name or _default_name(func)
        attrs: dict[str, Any] = {semconv.OPENINFERENCE_SPAN_KIND: kind.openinference}
        if kind.operation:
            attrs[semconv.GEN_AI_OPERATION_NAME] = kind.operation
        if kind.name_attribute:
            attrs[kind.name_attribute] = label
        if kind is _LLM:
            label = model or name or "unknown"
            attrs[semconv.GEN_AI_REQUEST_MODEL] = label
            attrs[semconv.LLM_MODEL_NAME] = label
        if provider:
            attrs[semconv.GEN_AI_PROVIDER_NAME] = provider
        attrs.update(to_attributes(attributes))
        self.kind = kind
        self.span_name = kind.prefix + label
        self.attributes = attrs
        self.capture_content = capture_content
        self.signature = signature_of(func)

    def run(self, client: Host, instance: Any, args: tuple, kwargs: dict) -> _SpanRun:
        return _SpanRun(self, client, instance, args, kwargs)


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


def _wrap_span_function(spec: _SpanSpec, get_client: ClientGetter) -> Callable[..., Any]:
    """``_wrap_function`` for a span decorator on a plain function, the hottest path there is:
    the run made and made current directly, without the generic run protocol's calls."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        client = get_client()
        if client is None or not client.recording:
            return wrapped(*args, **kwargs)
        try:
            run = _SpanRun(spec, client, instance, args, kwargs)
        except Exception:
            logger.exception("sessionkit: could not start a span for %s (the call goes on untraced)", spec)
            return wrapped(*args, **kwargs)
        token = otel_context.attach(run.context)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            otel_context.detach(token)
            run.end(exc)
            raise
        otel_context.detach(token)
        run.end(None, result)
        return result

    return wrapper


def _wrap_function(spec: Spec, get_client: ClientGetter) -> Callable[..., Any]:
    if type(spec) is _SpanSpec:
        return _wrap_span_function(spec, get_client)
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


# -- the public decorator factories -----------------------------------------------------------------
class SpanDecorator:
    """``@kind``, ``@kind("name")`` or ``@kind(name=..., capture_content=..., **attributes)``."""

    def __init__(self, kind: str, get_client: ClientGetter) -> None:
        self._kind = KINDS[kind]
        self._get_client = get_client

    @overload
    def __call__(self, func: F, /) -> F: ...

    @overload
    def __call__(
        self,
        func: Optional[str] = None,
        /,
        *,
        name: Optional[str] = None,
        model: Optional[str] = None,
        provider: Optional[str] = None,
        capture_content: Optional[bool] = None,
        **attributes: Any,
    ) -> Callable[[F], F]: ...

    def __call__(
        self,
        func: Any = None,
        /,
        *,
        name: Optional[str] = None,
        model: Optional[str] = None,
        provider: Optional[str] = None,
        capture_content: Optional[bool] = None,
        **attributes: Any,
    ) -> Any:
        if isinstance(func, str):
            name, func = func, None
        if capture_content is not None and not isinstance(capture_content, bool):
            raise TypeError(f"sessionkit: capture_content must be True, False or None, got {capture_content!r}")
        kind = self._kind

        def decorate(f: F) -> F:
            if not callable(f) and not isinstance(f, (staticmethod, classmethod)):
                raise TypeError(f"sessionkit: @{kind.name} decorates functions, methods and classes, not {f!r}")
            owner = f.__name__ if inspect.isclass(f) else None

            def make_spec(target: Callable[..., Any]) -> Spec:
                label = name
                if label is None and owner is not None:
                    label = f"{owner}.{target.__name__}"
                return _SpanSpec(kind, target, label, model, provider, capture_content, attributes)

            return wrap(f, make_spec, self._get_client)

        return decorate(func) if func is not None else decorate

    def __repr__(self) -> str:
        return f"<sessionkit.{self._kind.name} decorator>"

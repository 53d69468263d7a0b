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
import zlib
from collections.abc import Callable
from typing import Any, Optional, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from . import semconv
from ._payloads.body import captured
from ._payloads.llm import cost_attributes, usage_attributes
from ._spans import attributes_of, is_clean_exit, record_error, set_clean_attributes
from ._types import Host
from ._values import as_count, to_attributes
from ._wrap import ClientGetter, CurrentSpanRun, F, Spec, bound_arguments, signature_of, wrap

logger = logging.getLogger("sessionkit")


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


def _fingerprint(args: tuple, kwargs: dict) -> int:
    """The same int for the same arguments within this process, never the arguments (the
    ``loop`` finding's key for a tool called with content capture off)."""
    try:
        return hash((args, frozenset(kwargs.items())) if kwargs else args) & 0x7FFFFFFFFFFFFFFF
    except TypeError:  # (unhashable arguments: a list, a dict)
        return zlib.crc32(repr((args, sorted(kwargs.items(), key=str)))[:8192].encode())


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
        elif spec.kind is _TOOL and (args or kwargs) and "loop" in client.config.findings:
            attributes = dict(attributes)
            attributes[semconv.TOOL_CALL_FINGERPRINT] = _fingerprint(args, kwargs)
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

    def plain_wrapper(self, get_client: ClientGetter) -> Callable[..., Any]:
        """The wrapper of a plain function: the hottest path there is, without the generic run
        protocol's calls (the engine in ``_wrap`` asks a spec for it)."""
        return _wrap_span_function(self, get_client)


def _wrap_span_function(spec: _SpanSpec, get_client: ClientGetter) -> Callable[..., Any]:
    """The engine's function wrapper for a span decorator on a plain function, the hottest path there is:
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

"""The one place where sessionkit reaches into the SDK's span internals, for speed.

Reading: ``attributes_of`` gives the span's plain attribute dict (lookups of absent keys on the
SDK's mapping cost an exception each). Writing:
every span sessionkit stamps gets the same handful of attributes (session id, user, thread,
name, tags; a decorator's kind and name). They are built once, already valid, yet
``Span.set_attributes`` cleans each value again on every span (generic ``isinstance`` checks
against ``Sequence`` and ``Mapping``), which costs about as much as the rest of the span.
``set_clean_attributes`` writes such pre-validated attributes straight into the span's
attribute dict when the SDK's structure is the one this was written against and no attribute
limit could apply; otherwise it falls back to ``set_attributes``. Only ever call it with values
that ``to_attribute`` produced (str, bool, int, float, tuples of str).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Optional

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context, create_key
from opentelemetry.trace import Span, Status, StatusCode

from . import semconv

logger = logging.getLogger("sessionkit")

# The parent context every session root starts from: empty (so the root is a new trace), and
# recognised by identity, so the processor does not stamp a root with an enclosing session.
SESSION_ROOT_PARENT = Context()

# The same for a session that sampling dropped (``sample_rate``): the sampler drops a span
# started from it, and every span under it.
DROPPED_ROOT_PARENT = Context({create_key("sessionkit-dropped-session"): True})

# Set by a session in a parent context it gives out (``Session.span_parent``): a span started
# from it is a new turn of that session (the processor reads it).
TURN_START_KEY = create_key("sessionkit-turn-start")

# Set by ``continue_session`` in the context of a request that arrived with a caller's trace:
# the request's ``Arrival``. The trace id came from outside, so it proves nothing: a span of that
# trace in the request belongs to the session the request was given, never to whichever session
# of this process made a trace of that id (a forged or leaked ``traceparent``).
ARRIVAL_KEY = create_key("sessionkit-arrival")


class Arrival:
    """A request that came in with a caller's trace id, and the session it runs in (or None)."""

    __slots__ = ("trace_id", "session")

    def __init__(self, trace_id: int, session: Any) -> None:
        self.trace_id = trace_id
        self.session = session


def set_clean_attributes(span: Any, attributes: Mapping[str, Any], fresh: bool = False) -> None:
    """Write pre-validated ``attributes`` on ``span``. ``fresh``: no other thread can see the
    span yet (it is being started, or was just started here), so the attributes' lock is not
    taken."""
    bounded = getattr(span, "_attributes", None)
    if (
        type(bounded) is BoundedAttributes
        and not bounded._immutable
        and bounded.max_value_len is None
        and (bounded.maxlen is None or len(bounded._dict) + len(attributes) <= bounded.maxlen)
    ):  # only a live SDK span has mutable BoundedAttributes: an ended one is immutable
        if fresh:
            bounded._dict.update(attributes)
        else:
            with bounded._lock:
                bounded._dict.update(attributes)
    else:
        span.set_attributes(attributes)


_OK = Status(StatusCode.OK)  # immutable, shared


def set_ok_status(span: Any) -> None:
    """Status OK on a live SDK span (a session's root that succeeded). The SDK's ``set_status``
    takes the span's lock and re-checks through a decorator; the span here is still recording
    and has no status yet (UNSET), so OK is written directly. Anything else: the public API."""
    if (
        type(getattr(span, "_status", None)) is Status
        and span._status.status_code is StatusCode.UNSET
        and getattr(span, "_end_time", 0) is None
    ):
        span._status = _OK
    else:
        span.set_status(_OK)


_EMPTY: Mapping[str, Any] = {}


def attributes_of(span: Any) -> Mapping[str, Any]:
    """A span's attributes for reading. The SDK's ``BoundedAttributes`` answers ``get`` and
    ``in`` for a missing key by raising and catching ``KeyError`` (``Mapping``'s generic
    implementation), which costs microseconds per lookup; its plain dict does not."""
    bounded = getattr(span, "_attributes", None)
    inner = getattr(bounded, "_dict", None)
    if type(inner) is dict:
        return inner
    attributes = getattr(span, "attributes", None)
    return dict(attributes) if attributes else _EMPTY


def fast_path_available() -> bool:
    """Whether this SDK has the internals ``set_clean_attributes`` writes to (else it is only slower)."""
    probe = BoundedAttributes(maxlen=None, immutable=False)
    return all(hasattr(probe, name) for name in ("_dict", "_lock", "_immutable", "max_value_len", "maxlen"))


def record_error(span: Span, exc: BaseException) -> None:
    """Status ERROR, ``error.type`` and the exception event; never raises."""
    try:
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.set_attribute(semconv.ERROR_TYPE, type(exc).__qualname__)
        span.record_exception(exc)
    except Exception:
        logger.debug("sessionkit: could not record an exception on a span", exc_info=True)


def is_clean_exit(exc: BaseException) -> bool:
    """``sys.exit()`` / ``sys.exit(0)``: the program ending on purpose, not a failure."""
    return isinstance(exc, SystemExit) and exc.code in (0, None)


ENRICHERS: dict[str, Callable[[Any], None]] = {}
"""By instrumentation scope name: a function that completes a span of that scope at its start
(an integration's, for a library that traces itself: ``integrations.mcp``). Read by the session
processor for every span while any is registered."""


def add_enricher(scope: str, enrich: Callable[[Any], None]) -> None:
    """Complete the spans of instrumentation scope ``scope`` with ``enrich(span)`` at their start."""
    ENRICHERS[scope] = enrich


# What a span that describes an LLM call gives up when the wire span under it counts the call:
# the token usage and cost, in every convention dashboards read (GenAI, OpenInference,
# OpenLLMetry, Logfire), so a dashboard summing a trace's spans counts the call once.
_USAGE_PREFIXES = ("gen_ai.usage.", "llm.token_count.", "llm.cost.", "llm.usage.")
_USAGE_KEYS = frozenset({"operation.cost", semconv.LLM_USAGE_MISSING})


# What a library that writes a call onto the current span (litellm) leaves on one of
# sessionkit's own spans: any one of these means it wrote the rest.
_FOREIGN_MARKS = (
    semconv.GEN_AI_OPERATION_NAME,
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.LLM_TOKEN_COUNT_PROMPT,
    semconv.LLM_TOKEN_COUNT_TOTAL,
)
_OURS_DROPS = frozenset({semconv.GEN_AI_OPERATION_NAME})  # (not of sessionkit's own spans either)


def for_export(span: Any, project: Optional[str]) -> Any:
    """``span`` as it is exported: itself, or one copy of it
    - without usage and cost when another span counts its call: a framework's or SDK's span
      marked ``sessionkit.llm.counted_in_child`` (its child, seen on the wire, is the LLM span:
      an OpenInference ``LLM`` becomes a ``CHAIN``), or one of sessionkit's own spans (a record,
      a turn block's root) that another library wrote a call onto, which also loses the
      operation;
    - with the caller's dashboard ``project`` in its resource (a session continued from it)."""
    attrs = attributes_of(span)
    drop: Optional[frozenset[str]] = None
    if attrs.get(semconv.LLM_COUNTED_IN_CHILD):
        drop = _USAGE_KEYS
    elif semconv.SPAN_TYPE in attrs and any(key in attrs for key in _FOREIGN_MARKS):
        drop = _USAGE_KEYS | _OURS_DROPS
    if drop is None and project is None:
        return span  # (the common case: two lookups)
    attributes = None
    if drop is not None:
        attributes = {k: v for k, v in attrs.items() if not k.startswith(_USAGE_PREFIXES) and k not in drop}
        if attributes.get(semconv.OPENINFERENCE_SPAN_KIND) == "LLM":
            attributes[semconv.OPENINFERENCE_SPAN_KIND] = "CHAIN"
    return _copy(span, attributes, None if project is None else _in_project(span.resource, project))


def _in_project(resource: Any, project: str) -> Any:
    """``resource`` with ``openinference.project.name`` set to ``project`` (made once, kept)."""
    key = (id(resource), project)
    found = _project_resources.get(key)
    if found is None or found[0] is not resource:
        from opentelemetry.sdk.resources import Resource

        if len(_project_resources) >= 64:
            _project_resources.clear()
        merged = resource.merge(Resource({semconv.OPENINFERENCE_PROJECT_NAME: project}))
        found = _project_resources[key] = (resource, merged)
    return found[1]


_project_resources: dict[tuple[int, str], tuple[Any, Any]] = {}


def _copy(span: Any, attributes: Any, resource: Any) -> Any:
    """An ended ``span`` with other ``attributes`` or another ``resource`` (None: its own)."""
    from opentelemetry.sdk.trace import ReadableSpan

    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource if resource is None else resource,
        attributes=attributes_of(span) if attributes is None else attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )

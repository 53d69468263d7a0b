"""Spans to rows of the store and back, and spans to OTLP JSON.

A stored row keeps every field the OTLP encoder reads from a span (attributes, events and links
as JSON, whose Python round trip keeps ints, floats, strings and booleans apart), so a span read
back encodes to the same OTLP bytes it had when it was written: ``sessionkit export`` sends what
was captured, not an approximation of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from .. import semconv

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode

# OTLP span flags: the parent's (or a link's) "is remote" is known, and its value.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_BYTES = "__bytes__"  # how a bytes attribute value is kept in JSON (base64)

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "session_id",
    "turn_index",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status_code",
    "status_message",
    "attributes",
    "events",
    "links",
    "trace_state",
    "flags",
    "dropped",
    "resource_id",
    "scope_id",
)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_typed(v) for v in value)
    if isinstance(value, dict):
        if len(value) == 1 and _BYTES in value:
            return base64.b64decode(value[_BYTES])
        return {k: _typed(v) for k, v in value.items()}
    return value


def dump_attributes(attributes: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Attributes as a JSON object (None when there are none)."""
    if not attributes:
        return None
    try:
        return _dumps(attributes if type(attributes) is dict else dict(attributes))
    except (TypeError, ValueError):  # bytes, or a nested mapping holding them
        return _dumps({key: _plain(value) for key, value in attributes.items()})


def load_attributes(text: Optional[str]) -> dict[str, Any]:
    if not text:
        return {}
    loaded = json.loads(text)
    return {key: _typed(value) if isinstance(value, (list, dict)) else value for key, value in loaded.items()}


def digest(*parts: Any) -> str:
    """A stable key for a resource or a scope (what it holds, not where it came from)."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


def _dropped(span: ReadableSpan) -> Optional[str]:
    counts = (span.dropped_attributes, span.dropped_events, span.dropped_links)
    return None if not any(counts) else json.dumps(counts)


def _events(span: ReadableSpan) -> Optional[str]:
    if not span.events:
        return None
    return json.dumps(
        [[e.name, e.timestamp, _plain(dict(e.attributes or {})), e.dropped_attributes] for e in span.events],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _links(span: ReadableSpan) -> Optional[str]:
    if not span.links:
        return None
    return json.dumps(
        [
            [
                f"{link.context.trace_id:032x}",
                f"{link.context.span_id:016x}",
                _plain(dict(link.attributes or {})),
                link.dropped_attributes,
                bool(link.context.is_remote),
                int(link.context.trace_flags),
            ]
            for link in span.links
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def session_of(attributes: Mapping[str, Any]) -> Optional[str]:
    """The session a span belongs to (its record names it under another key)."""
    value = attributes.get(semconv.SESSION_ID) or attributes.get(semconv.RECORD_SESSION_ID)
    return value if isinstance(value, str) else None


def span_row(
    span: ReadableSpan, attributes: dict[str, Any], resource_id: int, scope_id: Optional[int]
) -> tuple[Any, ...]:
    """One span (its attributes as a dict) as the values of ``SPAN_COLUMNS``."""
    context = span.get_span_context()
    assert context is not None  # an SDK span always has one
    parent = span.parent
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)
    trace_state = context.trace_state
    status = span.status
    turn = attributes.get(semconv.TURN_INDEX)
    return (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        f"{parent.span_id:016x}" if parent is not None else None,
        session_of(attributes),
        turn if type(turn) is int and attributes.get(semconv.SPAN_TYPE) != semconv.SPAN_TYPE_SESSION else None,
        span.name,
        span.kind.value,
        span.start_time,
        span.end_time,
        status.status_code.value,
        status.description,
        dump_attributes(attributes),
        _events(span) if span.events else None,
        _links(span) if span.links else None,
        trace_state.to_header() if trace_state else None,
        flags | int(context.trace_flags),
        _dropped(span),
        resource_id,
        scope_id,
    )


def resource_row(resource: Resource) -> tuple[str, Optional[str], str]:
    attributes = dump_attributes(resource.attributes)
    return digest("resource", attributes, resource.schema_url), attributes, resource.schema_url


def scope_row(
    scope: Optional[InstrumentationScope],
) -> Optional[tuple[str, str, Optional[str], Optional[str], Optional[str]]]:
    if scope is None:
        return None
    attributes = dump_attributes(scope.attributes)
    return (
        digest("scope", scope.name, scope.version, scope.schema_url, attributes),
        scope.name,
        scope.version,
        scope.schema_url,
        attributes,
    )


def make_resource(attributes: Optional[str], schema_url: Optional[str]) -> Resource:
    return Resource(load_attributes(attributes), schema_url or "")


def make_scope(
    name: Optional[str], version: Optional[str], schema_url: Optional[str], attributes: Optional[str]
) -> InstrumentationScope:
    return InstrumentationScope(name or "", version, schema_url, load_attributes(attributes) or None)


def _bounded(attributes: dict[str, Any], dropped: int) -> BoundedAttributes:
    bounded = BoundedAttributes(attributes=attributes, immutable=False, max_value_len=None)
    bounded.dropped = dropped
    return bounded


def make_span(row: Any, resource: Resource, scope: Optional[InstrumentationScope]) -> ReadableSpan:
    """A stored row back as a span the OTLP exporters encode as it was first encoded."""
    flags = int(row["flags"] or 0)
    trace_flags = TraceFlags(flags & 0xFF)
    state = TraceState.from_header([row["trace_state"]]) if row["trace_state"] else None
    trace_id = int(row["trace_id"], 16)
    context = SpanContext(trace_id, int(row["span_id"], 16), False, trace_flags, state)
    parent = None
    if row["parent_span_id"]:
        parent = SpanContext(trace_id, int(row["parent_span_id"], 16), bool(flags & _IS_REMOTE), trace_flags)
    dropped = json.loads(row["dropped"]) if row["dropped"] else (0, 0, 0)
    events: BoundedList = BoundedList(None)
    for name, timestamp, attrs, dropped_attrs in json.loads(row["events"]) if row["events"] else ():
        events.append(Event(name, _bounded(_typed(attrs), dropped_attrs), timestamp))
    events.dropped = dropped[1]
    links: BoundedList = BoundedList(None)
    for link_trace, link_span, attrs, dropped_attrs, remote, link_flags in (
        json.loads(row["links"]) if row["links"] else ()
    ):
        link_context = SpanContext(int(link_trace, 16), int(link_span, 16), remote, TraceFlags(link_flags))
        links.append(Link(link_context, _bounded(_typed(attrs), dropped_attrs)))
    links.dropped = dropped[2]
    code = StatusCode(int(row["status_code"] or 0))
    span = ReadableSpan(
        name=row["name"],
        context=context,
        parent=parent,
        resource=resource,
        attributes=_bounded(load_attributes(row["attributes"]), dropped[0]),
        events=events,
        links=links,
        kind=SpanKind(int(row["kind"] or 0)),
        status=Status(code, row["status_message"]) if code is not StatusCode.UNSET else Status(code),
        start_time=row["start_ns"],
        end_time=row["end_ns"],
        instrumentation_scope=scope,
    )
    return span


# -- OTLP JSON (the Collector's file exporter format) ------------------------------------------------
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> None:
    """protobuf's JSON mapping writes bytes as base64; OTLP JSON wants ids as hex."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """Spans as an OTLP JSON ``ExportTraceServiceRequest`` dict (ids in hex, enums as numbers)."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    message = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    _hex_ids(message)
    return message

"""Stores of sessionkit before the database: OTLP JSON lines, moved into the database once.

Each ``spans-*.jsonl`` file of the folder is read into spans, written through the store's writer
(so its sessions and turns are counted as new spans would be), and moved to ``imported-jsonl/``
with the ``events-*.jsonl`` files (the store derives a session's events from its record). A
file's name is claimed in the same transaction as its spans, so two processes opening the store
at once import it once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Optional

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from .writer import StoreWriter

logger = logging.getLogger("sessionkit")

IMPORTED = "imported-jsonl"
_REMOTE = 0x200


def _any_value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])  # int64 is a string in OTLP JSON
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return tuple(_any_value(v) for v in value["arrayValue"].get("values", []))
    if "kvlistValue" in value:
        return {kv["key"]: _any_value(kv.get("value", {})) for kv in value["kvlistValue"].get("values", [])}
    if "bytesValue" in value:
        import base64

        return base64.b64decode(value["bytesValue"])
    return None


def _attributes(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _any_value(item.get("value", {})) for item in items}


def parse_line(line: str) -> Iterator[ReadableSpan]:
    """The spans of one OTLP JSON ``ExportTraceServiceRequest``."""
    request = json.loads(line)
    for resource_spans in request.get("resourceSpans", []):
        raw = resource_spans.get("resource", {})
        resource = Resource(_attributes(raw.get("attributes", [])), resource_spans.get("schemaUrl", ""))
        for scope_spans in resource_spans.get("scopeSpans", []):
            raw_scope = scope_spans.get("scope")
            scope = None
            if raw_scope is not None:
                scope = InstrumentationScope(
                    raw_scope.get("name", ""),
                    raw_scope.get("version"),
                    scope_spans.get("schemaUrl"),
                    _attributes(raw_scope.get("attributes", [])) or None,
                )
            for span in scope_spans.get("spans", []):
                yield _span(span, resource, scope)


def _span(span: dict[str, Any], resource: Resource, scope: Optional[InstrumentationScope]) -> ReadableSpan:
    trace_id = int(span["traceId"], 16)
    flags = int(span.get("flags", 0))
    state = TraceState.from_header([span["traceState"]]) if span.get("traceState") else None
    context = SpanContext(trace_id, int(span["spanId"], 16), False, TraceFlags(TraceFlags.SAMPLED), state)
    parent = None
    if span.get("parentSpanId"):
        parent = SpanContext(trace_id, int(span["parentSpanId"], 16), bool(flags & _REMOTE))
    status = span.get("status", {})
    code = StatusCode(int(status.get("code", 0)))
    return ReadableSpan(
        name=span.get("name", ""),
        context=context,
        parent=parent,
        resource=resource,
        attributes=_attributes(span.get("attributes", [])),
        events=[
            Event(e.get("name", ""), _attributes(e.get("attributes", [])), int(e.get("timeUnixNano", 0)))
            for e in span.get("events", [])
        ],
        links=[
            Link(
                SpanContext(
                    int(link["traceId"], 16), int(link["spanId"], 16), bool(int(link.get("flags", 0)) & _REMOTE)
                ),
                _attributes(link.get("attributes", [])),
            )
            for link in span.get("links", [])
        ],
        kind=SpanKind(max(int(span.get("kind", 1)) - 1, 0)),  # OTLP numbers kinds from 1 (INTERNAL)
        status=Status(code, status.get("message")) if code is not StatusCode.UNSET else Status(code),
        start_time=int(span.get("startTimeUnixNano", 0)),
        end_time=int(span.get("endTimeUnixNano", 0)),
        instrumentation_scope=scope,
    )


def legacy_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("spans-*.jsonl"), *folder.glob("events-*.jsonl")])


def migrate(folder: Path, writer: StoreWriter, say: Callable[[str], None]) -> int:
    """Import the folder's JSON-lines files into the store once; returns the spans imported."""
    files = legacy_files(folder)
    if not files:
        return 0
    say(f"sessionkit: moving {len(files)} JSON-lines files of the old local store in {folder} into {writer.path.name}")
    total = 0
    for path in files:
        spans: list[ReadableSpan] = []
        if path.name.startswith("spans-"):  # (events-*: the store derives a session's events)
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        spans.extend(parse_line(line))
                    except (ValueError, KeyError, TypeError):
                        logger.warning("sessionkit: skipping unreadable line %d of %s", number, path)
        if writer.write_spans(spans, claim=path.name):
            total += len(spans)
        target = folder / IMPORTED
        target.mkdir(exist_ok=True)
        try:
            path.rename(target / path.name)
        except OSError:
            pass  # another process moved it first
    say(f"sessionkit: imported {total} spans; the old files are in {folder / IMPORTED}")
    return total

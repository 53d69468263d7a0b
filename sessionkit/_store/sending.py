"""Sending a store's spans on: to an OTLP/HTTP collector (each span encoding to the bytes it was
captured with) or to a file of OTLP JSON lines, in batches, with progress."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from .._errors import ConfigError
from .codec import spans_to_otlp_json
from .filters import Since
from .schema import ExportRefused

if TYPE_CHECKING:
    from .query import Store

__all__ = ["send_otlp", "write_jsonl"]


def send_otlp(
    store: Store,
    endpoint: str,
    *,
    since: Since = None,
    headers: Optional[dict[str, str]] = None,
    timeout: float = 10.0,
    progress: Optional[Callable[[int, int], None]] = None,
) -> int:
    """``Store.export``: the spans to an OTLP/HTTP collector; the number sent."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise ConfigError(
            f"sessionkit: endpoint={endpoint!r} must be an http:// or https:// URL of an OTLP/HTTP collector",
            field="endpoint",
            value=endpoint,
        )
    if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise ConfigError(
            f"sessionkit: timeout={timeout!r} must be a finite number of seconds > 0",
            field="timeout",
            value=timeout,
        )
    url = endpoint if endpoint.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    exporter = OTLPSpanExporter(endpoint=url, headers=headers, timeout=timeout)
    total = store.count_spans(since) if progress is not None else 0
    sent = 0
    try:
        for chunk in store.readable_spans(since):
            if exporter.export(chunk) is not SpanExportResult.SUCCESS:
                raise ExportRefused(f"sessionkit: the collector at {url} did not take the spans ({sent} sent before)")
            sent += len(chunk)
            if progress is not None:
                progress(sent, total)
    finally:
        exporter.shutdown()
    return sent


def write_jsonl(
    store: Store, path: Union[str, Path], *, since: Since = None, progress: Optional[Callable[[int, int], None]] = None
) -> int:
    """``Store.export_jsonl``: the spans as OTLP JSON lines; the number written."""
    total = store.count_spans(since) if progress is not None else 0
    sent = 0
    with open(path, "w", encoding="utf-8") as handle:
        for chunk in store.readable_spans(since):
            handle.write(json.dumps(spans_to_otlp_json(chunk), separators=(",", ":")) + "\n")
            sent += len(chunk)
            if progress is not None:
                progress(sent, total)
    return sent

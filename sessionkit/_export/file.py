"""The ``file`` exporter: OTLP JSON, one ``ExportTraceServiceRequest`` per line.

This is the format of the OpenTelemetry Collector's file exporter (ids as hex, enums as
numbers), so the files can be replayed into any OTLP backend. Each process writes its own
file, so concurrent processes and forked children never interleave lines.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Optional

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._context import at_fork_in_child

logger = logging.getLogger("sessionkit")

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
    """Encode spans as an OTLP JSON ``ExportTraceServiceRequest`` dict."""
    message = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    _hex_ids(message)
    return message


class FileSpanExporter(SpanExporter):
    """Appends spans to ``<folder>/spans-<date>-<pid>.jsonl``."""

    def __init__(self, folder: os.PathLike[str] | str) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._file: Optional[IO[str]] = None
        self._path: Optional[Path] = None
        self._pid = -1
        at_fork_in_child(self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # the parent's lock may have been held at fork time

    @property
    def path(self) -> Optional[Path]:
        """The file written last (None before the first export)."""
        return self._path

    def _open(self) -> IO[str]:
        pid = os.getpid()
        if self._file is not None and self._pid == pid:
            return self._file
        # First use, or a forked child: the child writes a file of its own.
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path = self.folder / f"spans-{time.strftime('%Y%m%d-%H%M%S')}-{pid}.jsonl"
        self._file = open(self._path, "a", encoding="utf-8")
        self._pid = pid
        return self._file

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            line = json.dumps(spans_to_otlp_json(spans), separators=(",", ":"))
            with self._lock:
                handle = self._open()
                handle.write(line + "\n")
                handle.flush()
            return SpanExportResult.SUCCESS
        except Exception:
            logger.exception("sessionkit: could not write spans to %s", self.folder)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

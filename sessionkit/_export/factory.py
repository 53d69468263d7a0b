"""Exporters: build the one a Config names.

The OTLP and file exporters are *deferred*: ``init`` checks that they can be built and hands the
pipeline a stand-in that builds the real exporter when the first batch is exported, in the
export thread. Their HTTP, gRPC and protobuf stacks (``requests`` alone is about as heavy as
the OpenTelemetry SDK) are then imported off the caller's path, and never in a process that
ends before it exports anything.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._errors import ConfigError

if TYPE_CHECKING:
    from .._config import Config


logger = logging.getLogger("sessionkit")


class DeferredExporter(SpanExporter):
    """Stands in for an exporter that is built on first use (see the module's docstring)."""

    def __init__(self, build: Callable[[], SpanExporter], label: str) -> None:
        self._build = build
        self._label = label
        self._inner: Optional[SpanExporter] = None
        self._lock = threading.Lock()

    def get(self) -> SpanExporter:
        """The real exporter, built now if it was not yet."""
        inner = self._inner
        if inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = self._build()
                inner = self._inner
        return inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.get().export(spans)

    def shutdown(self) -> None:
        if self._inner is not None:  # never built: nothing was sent, nothing to close
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True if self._inner is None else bool(self._inner.force_flush(timeout_millis))

    def __repr__(self) -> str:
        return f"<deferred {self._label} exporter, {'built' if self._inner is not None else 'not built yet'}>"


def resolve(exporter: Optional[SpanExporter]) -> Optional[SpanExporter]:
    """The real exporter behind a deferred one (building it), or the exporter itself."""
    return exporter.get() if isinstance(exporter, DeferredExporter) else exporter


def build_exporter(config: Config) -> SpanExporter:
    """The exporter for ``config.exporter`` (tracing must be enabled)."""
    name = config.exporter
    if isinstance(name, SpanExporter):
        return name
    if name in ("file", "otlp", "otlp-grpc"):
        if _uses_grpc(config) and importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is None:
            raise _grpc_missing(name)
        return DeferredExporter(lambda: build_now(config), str(name))
    return build_now(config)


def _uses_grpc(config: Config) -> bool:
    return config.exporter == "otlp-grpc" or (config.exporter == "otlp" and config.protocol == "grpc")


def _grpc_missing(name: Any) -> ConfigError:
    return ConfigError(
        "sessionkit: exporter='otlp-grpc' needs the gRPC exporter: pip install 'sessionkit[grpc]'",
        field="exporter",
        value=name,
    )


def build_now(config: Config) -> SpanExporter:
    """Build the exporter for ``config.exporter`` at once."""
    name = config.exporter
    if isinstance(name, SpanExporter):
        return name
    if name == "file":
        from .file import FileSpanExporter

        return FileSpanExporter(config.file_dir)
    if name == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        return InMemorySpanExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if _uses_grpc(config):
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError:
            raise _grpc_missing(name) from None
        url = config.traces_url()
        return GrpcExporter(
            endpoint=url,
            insecure=url.startswith("http://"),
            headers=dict(config.headers) or None,
            timeout=config.export_timeout,
        )
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=config.traces_url(),
            headers=dict(config.headers) or None,
            timeout=config.export_timeout,
        )
    raise ConfigError(f"sessionkit: exporter {name!r} cannot export", field="exporter", value=name)


def build_metric_reader(config: Config) -> Any:
    """A periodic OTLP metric reader to the same collector as the spans."""
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    url = config.traces_url()
    if config.exporter == "otlp-grpc" or config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter

        exporter: Any = GrpcMetricExporter(
            endpoint=url,
            insecure=url.startswith("http://"),
            headers=dict(config.headers) or None,
            timeout=config.export_timeout,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(
            endpoint=url.removesuffix("/v1/traces") + "/v1/metrics",
            headers=dict(config.headers) or None,
            timeout=config.export_timeout,
        )
    return PeriodicExportingMetricReader(exporter, export_interval_millis=max(config.export_interval, 1.0) * 1000)

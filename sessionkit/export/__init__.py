"""Exporters: build the one a Config names. Optional exporters are imported only when asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace.export import SpanExporter

from .._errors import ConfigError

if TYPE_CHECKING:
    from ..config import Config


def build_exporter(config: Config) -> SpanExporter:
    """The exporter for ``config.exporter`` (tracing must be enabled)."""
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
    if name == "otlp-grpc" or (name == "otlp" and config.protocol == "grpc"):
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError:
            raise ConfigError(
                "sessionkit: exporter='otlp-grpc' needs the gRPC exporter: pip install 'sessionkit[grpc]'",
                field="exporter",
                value=name,
            ) from None
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

        exporter: Any = GrpcMetricExporter(endpoint=url, insecure=url.startswith("http://"),
                                           headers=dict(config.headers) or None, timeout=config.export_timeout)  # fmt: skip
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=url.removesuffix("/v1/traces") + "/v1/metrics",
                                      headers=dict(config.headers) or None, timeout=config.export_timeout)  # fmt: skip
    return PeriodicExportingMetricReader(exporter, export_interval_millis=max(config.export_interval, 1.0) * 1000)

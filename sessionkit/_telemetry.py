"""Telemetry: a client's OpenTelemetry plumbing.

The tracer provider and tracer, the meter (made on first use, with its instrument cache) and the
export pipeline behind the session processor. ``apply`` rebuilds only what a change of settings
touches: the provider when its resource or target changes, the pipeline when export settings
change (the old one drains in the background, bounded), the meter lazily after either.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Optional, TypeVar

from opentelemetry.metrics import Meter, NoOpMeter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import NoOpTracer, Tracer

from . import semconv
from ._config import Config
from ._export.events import SessionEvents
from ._export.factory import build_exporter, build_metric_reader, is_local, pipeline_probe, unwrap
from ._export.pipeline import ExportPipeline, run_bounded
from ._processor import SessionSampler, SessionSpanProcessor

__all__ = ["PIPELINE_FIELDS", "PROVIDER_FIELDS", "VERSION", "Telemetry"]

logger = logging.getLogger("sessionkit")

T = TypeVar("T")

VERSION = "0.1.0"

# Settings that need a new export pipeline when they change; the rest are read at use.
PIPELINE_FIELDS = frozenset(
    {
        "exporter",
        "endpoint",
        "headers",
        "protocol",
        "export_timeout",
        "file_dir",
        "store_max_mb",
        "store_max_age_days",
        "max_queue_size",
        "max_export_batch_size",
        "export_interval",
        "enabled",
        "tracer_provider",
    }
)
# Settings that need a new session-event logger.
EVENT_FIELDS = frozenset({"logs_exporter", "exporter", "endpoint", "headers", "file_dir", "export_timeout", "enabled"})
# Settings that need a new tracer provider.
PROVIDER_FIELDS = frozenset(
    {
        "service_name",
        "project_name",
        "resource_attributes",
        "enabled",
        "tracer_provider",
        "meter_provider",
        "export_metrics",
        "exporter",
        "endpoint",
        "headers",
        "protocol",
        "sample_rate",
    }
)


class Telemetry:
    """Provider, tracer, meter and pipeline of one client (see the module's docstring)."""

    def __init__(
        self, config: Config, processor: SessionSpanProcessor, observe: Callable[[Sequence[ReadableSpan]], None]
    ) -> None:
        self.config = config
        self.processor = processor
        self._observe = observe
        self._lock = threading.Lock()
        self.provider: Optional[TracerProvider] = None
        self.tracer: Tracer = NoOpTracer()
        self._attached_to: weakref.WeakSet[TracerProvider] = weakref.WeakSet()  # users' providers
        self._meter_provider: Any = None
        self._meter: Optional[Meter] = None
        self._instruments: dict[str, Any] = {}
        self._metric_reader: Any = None
        self._meter_resource: Optional[Resource] = None
        self.events = SessionEvents(config, None)
        self._build_provider()
        processor.pipeline = self._build_pipeline()

    def apply(self, config: Config, changed: set[str]) -> None:
        """Take new settings; ``changed`` names the ones that differ from the current ones."""
        self.config = config
        if changed & PROVIDER_FIELDS:
            self._build_provider()
        if changed & PIPELINE_FIELDS:
            self._swap_pipeline(self._build_pipeline())
        if changed & EVENT_FIELDS and not changed & PROVIDER_FIELDS:
            self._build_events(self.provider.resource if self.provider is not None else None)

    # -- traces -------------------------------------------------------------------------------------
    def _build_provider(self) -> None:
        config = self.config
        if not config.tracing_enabled:
            self.provider = None
            self.tracer = NoOpTracer()
            self._reset_meter(None)
            self._build_events(None)
            return
        if config.tracer_provider is not None:
            provider: TracerProvider = config.tracer_provider
            if provider not in self._attached_to:  # re-init on the same provider adds nothing
                provider.add_span_processor(self.processor)
                self._attached_to.add(provider)
        else:
            attributes: dict[str, Any] = dict(config.resource_attributes)
            attributes[semconv.SERVICE_NAME] = config.service_name
            attributes[semconv.OPENINFERENCE_PROJECT_NAME] = config.effective_project_name
            # An earlier provider (before re-init) keeps the same processor, so spans from
            # tracers that libraries cached from it still reach the current exporter.
            sampler = SessionSampler(self.processor.sessions, config.sample_rate) if config.sample_rate < 1 else None
            provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False, sampler=sampler)
            provider.add_span_processor(self.processor)
        self.provider = provider
        self.tracer = provider.get_tracer("sessionkit", VERSION)
        self._reset_meter(provider.resource)
        self._build_events(provider.resource)

    def _build_pipeline(self) -> Optional[ExportPipeline]:
        config = self.config
        if not config.tracing_enabled or config.exporter is None:
            return None  # disabled, or attached to a provider that exports on its own
        return ExportPipeline(
            build_exporter(config),
            max_queue_size=config.max_queue_size,
            max_export_batch_size=config.max_export_batch_size,
            export_interval=config.export_interval,
            synchronous=config.exporter == "memory",
            observe=self._observe,
            local=is_local(config),
            probe=pipeline_probe(config),
        )

    def _swap_pipeline(self, pipeline: Optional[ExportPipeline]) -> None:
        old = self.pipeline
        self.processor.pipeline = pipeline
        if old is not None:
            # Drain the old exporter in the background: a dead old collector must not make
            # re-init slow. Its shutdown is bounded by shutdown_timeout.
            timeout = self.config.shutdown_timeout
            threading.Thread(target=old.shutdown, args=(timeout,), name="sessionkit-old-pipeline", daemon=True).start()

    @property
    def pipeline(self) -> Optional[ExportPipeline]:
        pipeline = self.processor.pipeline
        return pipeline if isinstance(pipeline, ExportPipeline) else None

    @property
    def exporter(self) -> Optional[SpanExporter]:
        """The exporter spans go to, built now if it is deferred."""
        pipeline = self.pipeline
        return unwrap(pipeline.exporter) if pipeline is not None else None

    # -- session events (logs) ---------------------------------------------------------------------
    def _build_events(self, resource: Optional[Resource]) -> None:
        old = self.events
        self.events = SessionEvents(self.config, resource)
        if old.exporter is not None:  # drained in the background, as an old pipeline is
            threading.Thread(target=old.shutdown, name="sessionkit-old-events", daemon=True).start()

    # -- metrics ------------------------------------------------------------------------------------
    def _reset_meter(self, resource: Optional[Resource]) -> None:
        """Forget the current meter; the next use of ``meter`` builds one for the new settings."""
        with self._lock:
            old = self._meter_provider
            self._meter, self._meter_provider, self._metric_reader = None, None, None
            self._instruments = {}
            self._meter_resource = resource
        if old is not None and old is not self.config.meter_provider:
            threading.Thread(target=old.shutdown, name="sessionkit-old-meter", daemon=True).start()

    @property
    def meter(self) -> Meter:
        meter = self._meter
        if meter is not None:
            return meter
        with self._lock:
            if self._meter is None:
                self._meter = self._new_meter()
            return self._meter

    def instruments(self, name: str, build: Callable[[Meter], T]) -> T:
        cache = self._instruments
        found = cache.get(name)
        if found is None:
            found = cache[name] = build(self.meter)
        return found

    @property
    def metric_reader(self) -> Any:
        self.meter  # noqa: B018 - builds it
        return self._metric_reader

    def _new_meter(self) -> Meter:
        config = self.config
        if config.meter_provider is not None:
            provider = config.meter_provider
        elif self._meter_resource is None:
            return NoOpMeter("sessionkit")  # tracing is off
        else:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader

            readers: list[Any] = []
            if config.exporter == "memory":
                self._metric_reader = InMemoryMetricReader()
                readers.append(self._metric_reader)
            elif config.export_metrics and config.exporter in ("otlp", "otlp-grpc"):
                readers.append(build_metric_reader(config))
            provider = MeterProvider(resource=self._meter_resource, metric_readers=readers, shutdown_on_exit=False)
        self._meter_provider = provider
        return provider.get_meter("sessionkit", VERSION)

    # -- export control -----------------------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        pipeline = self.processor.pipeline
        events = self.events.flush(timeout)
        return (True if pipeline is None else pipeline.flush(timeout)) and events

    def shutdown(self, timeout: float) -> bool:
        """Export what is left within ``timeout`` seconds and stop; warn about what was lost."""
        pipeline = self.pipeline
        ok = True if pipeline is None else pipeline.shutdown(timeout)
        run_bounded(self.events.shutdown, min(timeout, 1.0), "session events shutdown")
        meter_provider = self._meter_provider
        if meter_provider is not None and meter_provider is not self.config.meter_provider:
            run_bounded(meter_provider.shutdown, min(timeout, 1.0), "metrics shutdown")
        if pipeline is not None and (pipeline.dropped_spans or pipeline.spans_failed):
            logger.warning(
                "sessionkit: %d spans dropped and %d failed to export in this process",
                pipeline.dropped_spans,
                pipeline.spans_failed,
            )
        return ok

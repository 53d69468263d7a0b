"""A small fake ``Host``: what decorators, channels, history loads and the wire hook need of a
client, without a Client (no pipeline, no threads, no registry). Spans go to an in-memory
exporter through a plain SDK provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sessionkit import Config
from sessionkit._prices import PriceTable


class FakeHost:
    """Satisfies ``sessionkit._types.Host`` structurally; every member is plain."""

    def __init__(self, **settings: Any) -> None:
        self.config = Config.resolve(exporter="memory", **settings)
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("fake-host")
        self.recording = True
        self.closed = False
        self.metric_reader = InMemoryMetricReader()
        self.meter = MeterProvider(metric_readers=[self.metric_reader]).get_meter("fake-host")
        self._instruments: dict[str, Any] = {}
        self.parent: Optional[otel_context.Context] = None  # what span_parent gives when nothing is current
        self.session: Any = None  # what current_session() returns (history loaders)
        self.prices = PriceTable(self.config.prices)
        self.events: list[tuple[str, dict[str, Any]]] = []  # session events, as emitted

    def session_event(self, name: str, attributes: Any) -> None:
        self.events.append((name, dict(attributes)))

    def redact(self, text: str) -> str:
        return text.replace("secret", "[redacted]")

    def instruments(self, name: str, build: Callable[[Any], Any]) -> Any:
        if name not in self._instruments:
            self._instruments[name] = build(self.meter)
        return self._instruments[name]

    def span_parent(self, context: Optional[otel_context.Context] = None) -> otel_context.Context:
        context = otel_context.get_current() if context is None else context
        if trace.get_current_span(context).get_span_context().is_valid or self.parent is None:
            return context
        return self.parent

    def current_session(self) -> Any:
        return self.session

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

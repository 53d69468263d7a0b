"""Session events on the OpenTelemetry logs signal: ``session.start`` and ``session.end``.

The semantic conventions' ``session`` namespace defines these two events (``session.id``, and
``session.previous_id`` on a start that follows a user's earlier session). They go out as log
records with an ``event_name`` through the logs SDK, to the exporter ``logs_exporter`` names:
OTLP (over HTTP to the traces endpoint's ``/v1/logs``, or over gRPC when the traces go over
gRPC), the local store (its events table, next to the spans), the console, or memory (tests).
Nothing of the logs SDK is imported until the first event, and with no logs exporter an event
costs one attribute check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from .._config import Config

__all__ = ["SessionEvents"]

logger = logging.getLogger("sessionkit")


class SessionEvents:
    """A client's session-event logger, built on the first event."""

    def __init__(self, config: Config, resource: Any) -> None:
        self.kind = config.effective_logs_exporter
        self._config = config
        self._resource = resource
        self._lock = threading.Lock()
        self._logger: Any = None
        self._provider: Any = None
        self.exporter: Any = None
        """The log record exporter (built with the first event; for ``"memory"``, read it in tests)."""

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    def emit(self, name: str, attributes: Mapping[str, Any]) -> None:
        if self.kind == "none":
            return
        log = self._logger
        if log is None:
            with self._lock:
                if self._logger is None:
                    self._logger = self._build()
                log = self._logger
        from opentelemetry._logs import SeverityNumber

        log.emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            event_name=name,
            attributes=dict(attributes),
        )

    def _build(self) -> Any:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor

        config = self._config
        provider = LoggerProvider(resource=self._resource, shutdown_on_exit=False)
        if self.kind == "memory":
            from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

            self.exporter = InMemoryLogRecordExporter()
            provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        elif self.kind == "console":
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

            self.exporter = ConsoleLogRecordExporter()
            provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        else:
            if self.kind == "otlp" and (config.protocol == "grpc" or config.exporter == "otlp-grpc"):
                from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

                self.exporter = GrpcLogExporter(
                    endpoint=config.traces_url(), headers=dict(config.headers), timeout=config.export_timeout
                )
            elif self.kind == "otlp":
                from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

                self.exporter = OTLPLogExporter(
                    endpoint=config.logs_url(), headers=dict(config.headers), timeout=config.export_timeout
                )
            else:
                from .._store.writer import StoreLogExporter
                from .factory import store_writer

                self.exporter = StoreLogExporter(store_writer(config))
            delay_ms = int(config.export_interval * 1000)
            provider.add_log_record_processor(BatchLogRecordProcessor(self.exporter, schedule_delay_millis=delay_ms))
        self._provider = provider
        return provider.get_logger("sessionkit")

    def flush(self, timeout: float) -> bool:
        provider = self._provider
        return True if provider is None else bool(provider.force_flush(int(timeout * 1000)))

    def shutdown(self) -> None:
        provider = self._provider
        if provider is not None:
            try:
                provider.shutdown()
            except Exception:
                logger.debug("sessionkit: could not shut the session-event logger down", exc_info=True)

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
import socket
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Optional, cast
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._context import around_fork
from .._errors import ConfigError

if TYPE_CHECKING:
    from .._config import Config
    from .._store.writer import StoreWriter


logger = logging.getLogger("sessionkit")


class DeferredExporter(SpanExporter):
    """Stands in for an exporter that is built on first use (see the module's docstring)."""

    def __init__(self, build: Callable[[], SpanExporter], label: str) -> None:
        self._build = build
        self._label = label
        self._inner: Optional[SpanExporter] = None
        self._lock = threading.Lock()
        self._held_for_fork = False
        around_fork(self._before_fork, self._after_fork_in_parent, self._after_fork_in_child)

    # A fork while the export thread builds the exporter (importing its modules) would leave the
    # child with import locks no thread of it holds: the fork waits (at most 2 s) for the build.
    def _before_fork(self) -> None:
        self._held_for_fork = self._inner is None and self._lock.acquire(timeout=2.0)

    def _after_fork_in_parent(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self._lock.release()

    def _after_fork_in_child(self) -> None:
        self._held_for_fork = False
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


def unwrap(exporter: Optional[SpanExporter]) -> Optional[SpanExporter]:
    """The real exporter behind a deferred one (building it), or the exporter itself."""
    return exporter.get() if isinstance(exporter, DeferredExporter) else exporter


def build_exporter(config: Config) -> SpanExporter:
    """The exporter for ``config.exporter`` (tracing must be enabled)."""
    name = config.exporter
    if isinstance(name, SpanExporter):
        return name
    if name == "file":
        check_store(config)  # a damaged or unwritable store fails at init, not in the export thread
    if name in ("file", "otlp", "otlp-grpc"):
        if _uses_grpc(config) and importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is None:
            raise _grpc_missing(name)
        return DeferredExporter(lambda: build_now(config), str(name))
    return build_now(config)


def store_writer(config: Config) -> StoreWriter:
    """A writer of the local store ``config`` names, with its retention limits."""
    from .._store.writer import StoreWriter

    max_mb, max_days = config.store_max_mb, config.store_max_age_days
    return StoreWriter(
        config.file_dir,
        max_bytes=None if max_mb is None else int(max_mb * 1024 * 1024),
        max_age=None if max_days is None else max_days * 86400.0,
    )


def check_store(config: Config) -> None:
    from .._store.schema import StoreError, check_usable

    try:
        check_usable(config.file_dir)
    except StoreError as exc:
        raise ConfigError(
            f"sessionkit: {exc}. Move the file away (sessionkit starts a new store), or set file_dir "
            "(SESSIONKIT_FILE_DIR) to another folder",
            field="file_dir",
            value=str(config.file_dir),
        ) from None


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
        from .._store.writer import StoreSpanExporter

        return StoreSpanExporter(store_writer(config))
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


def probe_collector(config: Config, timeout: float) -> tuple[Optional[int], str]:
    """Is the collector ``config`` exports to there? An empty OTLP/HTTP request (a valid no-op
    that carries no span), or for gRPC and https a TCP connection. Returns the HTTP status (0: a
    port took the connection; None: nobody answered within ``timeout``) and what happened.

    Written on a plain socket, with everything it needs imported at this module's import: the
    probe runs in a background thread, and a module half-imported by a thread when the program
    forks stays broken in the child."""
    url = config.traces_url()
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    grpc = _uses_grpc(config)
    port = parts.port or (4317 if grpc else 443 if parts.scheme == "https" else 80)
    where = f"gRPC collector at {url}" if grpc else f"collector at {url}"
    try:
        # The host as bytes: a str host makes getaddrinfo import the idna codec, in this thread.
        address = host.encode("ascii")
    except UnicodeEncodeError:
        return 0, f"{where}: not probed (a non-ASCII host name)"
    try:
        with socket.create_connection(cast(Any, (address, port)), timeout=timeout) as conn:
            if grpc or parts.scheme == "https":
                return 0, f"{where} accepts connections"
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            headers = "".join(f"{k}: {v}\r\n" for k, v in config.headers.items())
            conn.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/x-protobuf\r\n"
                f"Content-Length: 0\r\n{headers}Connection: close\r\n\r\n".encode("latin-1")
            )
            answer = b""
            while b"\r\n\r\n" not in answer and len(answer) < 65536:  # the status line and headers
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
            status_line = answer.split(b"\r\n", 1)[0].split()
    except (OSError, UnicodeEncodeError) as exc:
        return None, f"{where} is not reachable: {type(exc).__name__}: {exc}"
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") or not status_line[1].isdigit():
        return None, f"{where} did not answer as an HTTP server"
    status = int(status_line[1])
    if status < 300:
        return status, f"{where} accepted an empty OTLP request (HTTP {status})"
    return status, f"{where} answered HTTP {status}"


# Seconds the background probe of a new pipeline waits for the collector: a collector on this
# machine answers an empty request in milliseconds; one across a network gets longer.
PROBE_TIMEOUT_LOOPBACK = 0.5
PROBE_TIMEOUT = 2.0


def pipeline_probe(config: Config) -> Optional[Callable[[], bool]]:
    """For a new export pipeline: a check, run in the background, that someone answers at the
    collector (None for local exporters, and for exporter instances, which nothing can probe)."""
    if config.exporter not in ("otlp", "otlp-grpc"):
        return None
    host = urlsplit(config.traces_url()).hostname or ""
    loopback = host == "localhost" or host.startswith("127.") or host == "::1"
    timeout = min(config.export_timeout, PROBE_TIMEOUT_LOOPBACK if loopback else PROBE_TIMEOUT)
    return lambda: probe_collector(config, timeout)[0] is not None


def is_local(config: Config) -> bool:
    """Whether the exporter writes on this machine (the file store, memory, the console): it is
    never "a dead collector", so a full queue always waits for it."""
    return config.exporter in ("file", "memory", "console")

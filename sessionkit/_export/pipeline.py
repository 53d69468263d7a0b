"""The export side: a bounded queue in front of an exporter, with every wait bounded.

The OpenTelemetry ``BatchSpanProcessor`` does the batching. Around it sessionkit keeps the
queue bound itself, so that every dropped span is counted (the SDK drops silently unless its
internal metrics are switched on), and runs flush and shutdown in helper threads so that a
hanging collector can never hold the caller longer than the timeout it asked for.

When the queue is full, a program producing spans faster than they can be encoded and sent (a
tight loop, a burst right after ``init``, a machine whose cores are busy with other work)
waits for the exporter to drain it instead of losing spans: backpressure, in waits of at most
``BACKPRESSURE_WAIT``, for as long as the destination makes progress. Slow is not failing: an
export that takes long on a loaded machine is waited for, and so is the first export of a new
process (which builds the exporter) while the probe has not answered. The wait ends, and spans
are dropped and counted at once until an export succeeds again, only when the destination is
failing: an export failed, the probe (``probe``: an empty OTLP request, in the background) found
nobody, or no export began or finished for longer than a healthy destination takes
(``_stall_after``: a few times the slowest recent export, at least ``_STALLED_EXPORT``; the local
store reports a lock or a full disk as a failed export itself). Every wait is counted
(``backpressure_waits`` and ``backpressure_seconds`` in ``Client.stats()``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from .._context import at_fork_in_child
from .._errors import internal_errors

logger = logging.getLogger("sessionkit")

BACKPRESSURE_WAIT = 1.0  # seconds one wait of a producer at a full queue lasts (it waits again while exports progress)
_STALLED_EXPORT = 2.0  # the shortest time without an export beginning or finishing that counts as a stall
_MAX_STALL = 15.0  # the longest (a few times the slowest recent export, when exports are slow)
_LOCAL_STALL = 10.0  # the same for a local exporter (the store's own lock wait fails an export after 5 s)

# What the pipeline knows of its collector.
_UNKNOWN = 0  # no export has finished yet (a probe may be under way)
_KEEPING_UP = 1  # the last export succeeded (or the exporter is local: a file, memory)
_FAILING = 2  # the last export failed or stalled, or the probe found nobody: drop, don't wait


PLACED = "sessionkit_span_placed"
"""Set on a KeyboardInterrupt that ``ExportPipeline.on_end`` let through after placing its span:
the caller knows the span was not lost (an interrupt at the call's first instruction has no mark)."""


def _mark_placed(exc: BaseException) -> None:
    try:
        setattr(exc, PLACED, True)
    except Exception:  # an exception type that takes no attributes
        pass


def run_bounded(fn: Callable[[], object], timeout: float, name: str) -> bool:
    """Run ``fn`` in a daemon thread and wait at most ``timeout`` seconds. True if it finished
    and did not return False."""
    result: list[object] = []

    def target() -> None:
        try:
            result.append(fn())
        except Exception:
            logger.exception("sessionkit: %s failed", name)
            result.append(False)

    thread = threading.Thread(target=target, name=f"sessionkit-{name}", daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    if thread.is_alive():
        logger.warning("sessionkit: %s did not finish within %.1fs; continuing without waiting", name, timeout)
        return False
    return bool(result and result[0] is not False)


class _CountingExporter(SpanExporter):
    """Counts what reaches the exporter and how it went; never lets an exporter error escape."""

    def __init__(self, inner: SpanExporter, pipeline: ExportPipeline) -> None:
        self.inner = inner
        self._pipeline = pipeline

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._pipeline._observe(spans)
        self._pipeline._taken(len(spans))
        try:
            result = self.inner.export(spans)
        except Exception:
            logger.exception("sessionkit: exporter %s raised", type(self.inner).__name__)
            result = SpanExportResult.FAILURE
        self._pipeline._exported(len(spans), result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        with internal_errors("shutting the exporter down"):
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return bool(self.inner.force_flush(timeout_millis))
        except Exception:
            logger.exception("sessionkit: exporter %s failed to flush", type(self.inner).__name__)
            return False


class ExportPipeline:
    """Ended spans -> bounded queue -> batch -> exporter, with counters for ``Client.stats()``."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 4096,
        max_export_batch_size: int = 512,
        export_interval: float = 1.0,
        synchronous: bool = False,
        observe: Callable[[Sequence[ReadableSpan]], None] | None = None,
        local: bool = False,
        probe: Callable[[], bool] | None = None,
    ) -> None:
        self.exporter = exporter
        self._observer = observe  # sees every ended span once, exported or dropped, off the hot path
        self.max_queue_size = max_queue_size
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._queued = 0  # handed to the batch processor, not yet taken by the exporter
        self.in_flight = 0  # taken by the exporter, result not known yet
        self._export_began = 0.0  # when the export in flight began (0: none)
        self._last_progress = time.monotonic()  # when an export last began or finished
        self._slowest = 0.0  # the slowest recent export, in seconds (decays)
        self._local = local
        self.backpressure_waits = 0  # spans that waited for room
        self.backpressure_seconds = 0.0  # how long they waited, in all
        self._state = _KEEPING_UP if local else _UNKNOWN
        self._probe_answered = probe is None  # no probe: trust a first export that is not stalled
        self.spans_exported = 0
        self.spans_failed = 0
        self.export_errors = 0
        self.dropped_spans = 0
        self._warned_drop = False
        self._warn_drop = False  # a drop warning is due
        counting = _CountingExporter(exporter, self)
        if synchronous:
            self._processor: SimpleSpanProcessor | BatchSpanProcessor = SimpleSpanProcessor(counting)
        else:
            # The SDK queue is made larger than our bound, so it never drops on its own.
            self._processor = BatchSpanProcessor(
                counting,
                max_queue_size=max_queue_size + max(max_export_batch_size, 1024),
                max_export_batch_size=min(max_export_batch_size, max_queue_size),
                schedule_delay_millis=export_interval * 1000.0,
            )
        self._closed = False
        at_fork_in_child(self._after_fork)  # the SDK empties its queue in a forked child; our count follows
        if probe is not None:
            threading.Thread(target=self._probe, args=(probe,), name="sessionkit-probe", daemon=True).start()

    def _probe(self, probe: Callable[[], bool]) -> None:
        try:
            answered = bool(probe())
        except Exception:
            answered = False
        with self._room:
            self._probe_answered = answered
            if not answered and self._state == _UNKNOWN:
                self._state = _FAILING  # nobody there: drop (counted) rather than hold the program
                self._room.notify_all()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._queued = 0
        self.in_flight = 0
        self._export_began = 0.0

    def _observe(self, spans: Sequence[ReadableSpan]) -> None:
        if self._observer is not None:
            with internal_errors("deriving metrics from spans"):
                self._observer(spans)

    # -- counters, fed by the counting exporter --------------------------------------------------
    def _taken(self, count: int) -> None:
        with self._room:
            self._queued = max(self._queued - count, 0)
            self.in_flight += count
            self._export_began = self._last_progress = time.monotonic()
            self._room.notify_all()

    def _exported(self, count: int, ok: bool) -> None:
        with self._lock:
            self.in_flight = max(self.in_flight - count, 0)
            now = time.monotonic()
            if self._export_began:
                self._slowest = max(self._slowest * 0.9, now - self._export_began)
            self._export_began = 0.0
            self._last_progress = now
            self._state = _KEEPING_UP if ok else _FAILING
            if ok:
                self.spans_exported += count
            else:
                self.spans_failed += count
                self.export_errors += 1

    def _half_empty(self) -> bool:
        """What a waiting producer waits for: room (half the queue), or a reason to stop waiting."""
        return self._queued <= self.max_queue_size // 2 or self._closed or self._state == _FAILING

    def _stall_after(self) -> float:
        """How long a healthy destination may go without an export beginning or finishing."""
        if self._local:
            return _LOCAL_STALL
        return min(max(_STALLED_EXPORT, 4.0 * self._slowest), _MAX_STALL)

    def _stalled(self, waiting_since: float) -> bool:
        """Whether the destination is not keeping up: nothing began or finished for longer than
        ``_stall_after`` (counted from when this producer began to wait, at the earliest). A
        first export waits for the probe's answer (the probe has its own bound)."""
        if self._state == _UNKNOWN and not self._probe_answered:
            return False
        quiet_since = max(self._last_progress, waiting_since)
        return time.monotonic() - quiet_since > self._stall_after()

    @property
    def queue_size(self) -> int:
        return self._queued

    # -- span path --------------------------------------------------------------------------------
    def on_end(self, span: ReadableSpan) -> None:
        # Where the span is (for a Ctrl-C landing in the middle): 0 not placed yet, 1 counted in
        # the queue, 2 handed to the SDK's queue, 3 dropped (counted).
        state = 0
        try:
            if not span.context.trace_flags.sampled:
                state = 3
                return  # the SDK processors skip unsampled spans; so do the counters
            with self._lock:  # the condition's lock
                if self._queued < self.max_queue_size and not self._closed:
                    self._queued += 1  # the common case: room in the queue
                    state = 1
                else:
                    state = 1 if self._full() else 3
            if state == 1:
                self._processor.on_end(span)
                state = 2
                return
            self._dropped(span)
        except BaseException as exc:
            # A KeyboardInterrupt while the span waited for room or was being handed over: the
            # span still goes (the session already counted it), then the interrupt goes on.
            if state == 0 and span.context.trace_flags.sampled:
                with self._lock:
                    self._queued += 1
                state = 1
            if state == 1 and not self._in_sdk_queue(span):
                self._processor.on_end(span)
            _mark_placed(exc)
            raise

    def _dropped(self, span: ReadableSpan) -> None:
        """A span the full queue dropped (counted): shown to ``observe``, and the warning, once."""
        self._observe((span,))
        if self._warn_drop:
            with self._lock:
                warn, self._warn_drop = self._warn_drop, False
            if warn:  # logged outside the lock: a handler may itself make spans
                logger.warning(
                    "sessionkit: export queue full (max_queue_size=%d), dropping spans; "
                    "the collector is slow or unreachable. client.stats().dropped_spans counts them.",
                    self.max_queue_size,
                )

    def _in_sdk_queue(self, span: ReadableSpan) -> bool:
        """Whether ``span`` reached the batch processor's queue (asked only after an interrupt
        inside the hand-off; a synchronous processor has exported it or not: never twice)."""
        queue = getattr(getattr(self._processor, "_batch_processor", None), "_queue", None)
        if queue is None:
            return isinstance(self._processor, SimpleSpanProcessor)
        try:
            return any(queued is span for queued in list(queue))
        except Exception:
            return False

    def _full(self) -> bool:
        """The queue is full (or closed): wait for room while the destination makes progress,
        else drop and count. Called with the lock held; True if the span may be queued."""
        began = time.monotonic()
        waited = False
        while not self._closed and self._state != _FAILING:
            # Wait until the queue is half empty, not just for one free slot: the exporter
            # then encodes and sends whole batches while producers sleep, instead of racing
            # every waiting thread for each slot it frees.
            waited = True
            self._room.wait_for(self._half_empty, BACKPRESSURE_WAIT)
            if self._queued < self.max_queue_size:
                break
            if self._stalled(began):
                self._state = _FAILING  # nothing moved for too long: drop until an export succeeds
        if waited:
            self.backpressure_waits += 1
            self.backpressure_seconds += time.monotonic() - began
        if self._closed or self._queued >= self.max_queue_size:
            self.dropped_spans += 1
            if not self._warned_drop and not self._closed:
                self._warned_drop = self._warn_drop = True  # once per pipeline
            return False
        self._queued += 1
        return True

    # -- bounded waits -----------------------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Export what is queued within ``timeout`` seconds. True only if it all went out: an
        export that failed meanwhile (collector down, an exporter that raised) makes it False."""
        if self._closed:
            return False
        errors_before = self.export_errors
        done = run_bounded(lambda: self._processor.force_flush(int(timeout * 1000)), timeout, "flush")
        return done and self.export_errors == errors_before

    def shutdown(self, timeout: float) -> bool:
        with self._room:
            if self._closed:
                return True
            self._closed = True
            self._room.notify_all()
        return run_bounded(lambda: self._processor.shutdown(), timeout + 0.2, "shutdown")

"""What keeping spans for a notebook's waterfall costs, per span, and what drawing one costs.

1. A span inside a session and a turn, started and ended, timed three ways in the same process,
   taking turns: raw OpenTelemetry (an SDK provider, a batch processor into a discarding
   exporter), sessionkit with ``display_spans=False`` (the default outside a notebook kernel),
   and with ``display_spans=True`` (the default inside one). Printed: time per span, the ratio to
   raw OpenTelemetry, and what keeping adds per span.
2. Drawing a session's display (``session.html()``) with 100 and 2,000 kept spans.

    python benchmarks/display.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from distributed import Discard, per_call  # (benchmarks/ is the script's folder: on sys.path)


def keeping(n: int, rounds: int) -> None:
    import sessionkit

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 20))
    raw_tracer = provider.get_tracer("raw")
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 10}

    def raw() -> None:
        with raw_tracer.start_as_current_span("chat m", attributes=attributes):
            pass

    clients = {
        "off": sessionkit.Client(exporter=Discard(), set_global=False, display_spans=False, handle_sigterm=False),
        "on": sessionkit.Client(exporter=Discard(), set_global=False, display_spans=True, handle_sigterm=False),
    }
    times: dict[str, list[float]] = {"raw": [], "off": [], "on": []}
    for _ in range(rounds):
        with raw_tracer.start_as_current_span("turn"):
            times["raw"].append(per_call(raw, n))
        for name, client in clients.items():
            tracer = client.tracer

            def one(tracer: Any = tracer) -> None:
                with tracer.start_as_current_span("chat m", attributes=attributes):
                    pass

            with client.session("bench") as session, session.turn("t"):
                times[name].append(per_call(one, n))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    raw_us = medians["raw"] * 1e6
    print(f"1. a span in a session's turn, {n:,} spans x {rounds} interleaved rounds (median per span)")
    print(f"   raw OpenTelemetry          {raw_us:7.2f} us")
    for name, label in (("off", "display_spans=False"), ("on", "display_spans=True")):
        us = medians[name] * 1e6
        print(f"   sessionkit, {label:<20} {us:7.2f} us   {us / raw_us:.2f}x raw")
    added = (medians["on"] - medians["off"]) * 1e6
    print(f"   keeping adds {added:.2f} us per span ({medians['on'] / medians['off']:.2f}x the span without it)")
    # The keeping alone (the share of the difference above that noise hides): a SpanKeep.add
    # of an ended span, timed without the span around it.
    from sessionkit._keep import SpanKeep

    with raw_tracer.start_as_current_span("chat m", attributes=attributes) as span:
        pass
    keep = SpanKeep(2000)
    alone = statistics.median(per_call(lambda: keep.add(span, attributes), n) for _ in range(rounds)) * 1e6
    print(f"   SpanKeep.add alone: {alone:.2f} us per span ({alone / raw_us * 100:.1f}% of a raw span)")
    stats = clients["on"].stats()
    print(f"   kept now: {stats.display_spans_kept:,} spans; let go: {stats.display_spans_dropped:,} (the bounds)")
    for client in clients.values():
        client.shutdown(timeout=5)


def drawing(repeats: int) -> None:
    import sessionkit

    print("2. drawing a session's display (session.html()), median of", repeats)
    for count in (100, 2000):
        client = sessionkit.Client(exporter=Discard(), set_global=False, display_spans=True, handle_sigterm=False)
        tracer = client.tracer
        with client.session("draw") as session:
            for turn in range(max(count // 50, 1)):
                with session.turn(f"t{turn}"):
                    for _ in range(49):
                        with tracer.start_as_current_span("step"):
                            pass
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            page = session.html()
            samples.append(time.perf_counter() - start)
        print(f"   {count:>5} spans: {statistics.median(samples) * 1000:7.2f} ms, {len(page) / 1024:,.0f} KB of HTML")
        client.shutdown(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    keeping(2000 if args.quick else 20000, 3 if args.quick else 9)
    drawing(3 if args.quick else 9)


if __name__ == "__main__":
    main()

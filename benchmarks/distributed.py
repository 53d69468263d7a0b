"""What carrying sessions across services costs: per outgoing request, and per dropped session.

1. Propagation per outgoing request. An httpx request inside a session to a local server (in a
   process of its own, on 127.0.0.1), timed three ways, interleaved in the same run: raw
   OpenTelemetry (its global propagator injects ``traceparent`` and ``baggage`` with the
   session id, by hand, as a user would), sessionkit with the target not allowed (the default:
   one tuple check), and sessionkit with the target allowed. The header making alone is timed
   too, without the network: OpenTelemetry's ``propagate.inject`` against sessionkit's.
2. A dropped session (``sample_rate`` 0) of one turn and ten spans, against raw OpenTelemetry
   recording the same spans (``ALWAYS_ON``, a batch processor into a discarding exporter) and
   raw OpenTelemetry not recording them (``ALWAYS_OFF``).

    python benchmarks/distributed.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):  # one write: no small-packet delay between headers and body
        self.wfile.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


class Discard(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def per_call(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def interleaved(variants: dict[str, Callable[[], Any]], n: int, rounds: int) -> dict[str, float]:
    """The median over ``rounds`` of each variant's time per call, the variants taking turns."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(per_call(fn, n))
    return {name: statistics.median(ts) for name, ts in times.items()}


def propagation(n: int, rounds: int) -> None:
    import sessionkit

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    url = f"http://127.0.0.1:{int(server.stdout.readline())}/"
    try:
        raw_provider = TracerProvider(sampler=ALWAYS_ON)
        raw_provider.add_span_processor(BatchSpanProcessor(Discard()))
        raw_tracer = raw_provider.get_tracer("raw")
        http = httpx.Client()

        def raw_request() -> None:  # OTel's propagator by hand
            headers: dict[str, str] = {}
            propagate.inject(headers)
            http.get(url, headers=headers)

        def raw_headers() -> None:
            propagate.inject({})

        session_id = "0d4b1c7e-7a2f-4f0e-9a51-6c2d8e3b9f10"

        def raw_round() -> tuple[float, float]:
            with raw_tracer.start_as_current_span("turn"):
                token = otel_context.attach(baggage.set_baggage("session.id", session_id))
                try:
                    return per_call(raw_request, n), per_call(raw_headers, n * 20)
                finally:
                    otel_context.detach(token)

        off = sessionkit.Client(exporter=Discard(), set_global=False)
        allowed = sessionkit.Client(exporter=Discard(), set_global=False, propagate_to=["127.0.0.1"])
        samples: dict[str, list[float]] = {"raw": [], "inject": [], "off": [], "on": [], "headers": []}
        scopes = {}
        for name, client in (("off", off), ("on", allowed)):
            session = client.start_session("bench")
            scopes[name] = (client, session)
        for _ in range(rounds):  # the three take turns (sessionkit's each inside its session and span)
            raw_time, inject_time = raw_round()  # (httpx is patched by now: outside a session, a no-op)
            samples["raw"].append(raw_time)
            samples["inject"].append(inject_time)
            for name, (client, session) in scopes.items():
                with session.turn("t"), client.tracer.start_as_current_span("step"):
                    samples[name].append(per_call(lambda: http.get(url), n))
                    if name == "on":
                        samples["headers"].append(per_call(client.propagation_headers, n * 20))
        results = {name: statistics.median(values) for name, values in samples.items()}
        raw, raw_inject = results["raw"], results["inject"]
        for client, session in scopes.values():
            session.end()
            client.shutdown(timeout=2)
        print("1. Propagation per outgoing request (httpx GET to a local server in another process)")
        print(f"   raw OpenTelemetry, propagate.inject by hand   {raw * 1e6:8.1f} us")
        print(
            f"   sessionkit, target not allowed (default)      {results['off'] * 1e6:8.1f} us  {results['off'] / raw:5.2f}x"
        )
        print(
            f"   sessionkit, target allowed                    {results['on'] * 1e6:8.1f} us  {results['on'] / raw:5.2f}x"
        )
        print(f"   added by propagation (allowed - not allowed)  {(results['on'] - results['off']) * 1e6:8.1f} us")
        print(f"   header making alone: OTel propagate.inject    {raw_inject * 1e6:8.2f} us")
        print(
            f"   header making alone: sessionkit               {results['headers'] * 1e6:8.2f} us  "
            f"{results['headers'] / raw_inject:5.2f}x"
        )
        http.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def dropped_session(n: int, rounds: int) -> None:
    import sessionkit

    def provider(sampler: Any) -> trace.Tracer:
        p = TracerProvider(sampler=sampler)
        p.add_span_processor(BatchSpanProcessor(Discard()))
        return p.get_tracer("raw")

    on, off = provider(ALWAYS_ON), provider(ALWAYS_OFF)

    def raw(tracer: trace.Tracer) -> Callable[[], None]:
        def run() -> None:
            with tracer.start_as_current_span("turn"):
                for _ in range(10):
                    with tracer.start_as_current_span("step"):
                        pass

        return run

    dropped = sessionkit.Client(exporter=Discard(), set_global=False, sample_rate=0.0)
    kept = sessionkit.Client(exporter=Discard(), set_global=False)

    def session_of(client: Any) -> Callable[[], None]:
        tracer = client.tracer

        def run() -> None:
            with client.session("bench") as session, session.turn("t"):
                for _ in range(10):
                    with tracer.start_as_current_span("step"):
                        pass

        return run

    t = interleaved(
        {
            "raw on": raw(on),
            "raw off": raw(off),
            "dropped": session_of(dropped),
            "kept": session_of(kept),
        },
        n,
        rounds,
    )
    dropped.shutdown(timeout=2)
    kept.shutdown(timeout=2)
    print("2. A session of one turn and ten spans")
    print(f"   raw OpenTelemetry, ALWAYS_ON (11 spans)        {t['raw on'] * 1e6:8.1f} us")
    print(
        f"   raw OpenTelemetry, ALWAYS_OFF                   {t['raw off'] * 1e6:8.1f} us  {t['raw off'] / t['raw on']:5.2f}x"
    )
    print(
        f"   sessionkit, session kept                        {t['kept'] * 1e6:8.1f} us  {t['kept'] / t['raw on']:5.2f}x"
    )
    print(
        f"   sessionkit, session dropped (sample_rate=0)     {t['dropped'] * 1e6:8.1f} us  "
        f"{t['dropped'] / t['raw on']:5.2f}x  ({t['dropped'] / t['raw off']:.2f}x ALWAYS_OFF)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    args = parser.parse_args()
    n, rounds = (50, 3) if args.quick else (500, 7)
    propagation(n, rounds)
    dropped_session(n * 2, rounds)


if __name__ == "__main__":
    main()

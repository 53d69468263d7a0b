"""Reliability figures: memory with a dead collector, exit with a hanging one, spans lost under load.

    python benchmarks/reliability.py            # 1,000,000 spans for the memory figure (a few minutes)
    python benchmarks/reliability.py --quick    # 100,000

Everything runs against servers on 127.0.0.1 that this script starts and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sessionkit

from run import LoopbackServer, OtlpSink, dead_endpoint, python


class Hanging(LoopbackServer):
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        from sessionkit.fake_llm import LoopbackHandler

        stop = self.stop_event = threading.Event()

        class Handler(LoopbackHandler):
            def do_POST(self) -> None:
                stop.wait(120)

        super().__init__(Handler)

    def stop(self) -> None:
        self.stop_event.set()
        super().stop()


def memory(total: int) -> None:
    code = textwrap.dedent(f"""
        import gc, os, time, sessionkit
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        c = sessionkit.init(endpoint={dead_endpoint()!r}, export_timeout=2, instrument_llm_calls=False)
        c.exporter  # builds the deferred exporter now: its imports are not span memory
        s = c.start_session("dead-collector")
        op = c.tool(lambda: None)
        for _ in range(10_000):
            op()
        gc.collect()
        before, peak = rss(), 0
        started = time.perf_counter()
        for i in range({total}):
            op()
            if i % 100_000 == 0:
                peak = max(peak, rss())
        elapsed = time.perf_counter() - started
        gc.collect()
        after = rss()
        st = c.stats()
        print((after - before) / 1e6, (max(peak, after) - before) / 1e6, elapsed, st.dropped_spans, st.spans_failed_export,
              st.queue_size + st.spans_in_flight)
        os._exit(0)
    """)
    growth, peak, elapsed, dropped, failed, pending = python(code, timeout=3600)[0].split()
    print(f"\nMemory with the collector unreachable, {total:,} decorated calls in one session")
    print(
        f"  RSS growth {float(growth):.1f} MB (peak {float(peak):.1f} MB) over {float(elapsed):.0f}s; "
        f"{int(dropped):,} dropped and {int(failed):,} failed, all counted; {int(pending):,} still pending"
    )


def exit_time() -> None:
    hanging = Hanging()
    try:
        for timeout in (1, 2, 5):
            code = textwrap.dedent(f"""
                import time, sessionkit
                c = sessionkit.init(endpoint={hanging.url!r}, export_timeout=30, shutdown_timeout={timeout},
                                    export_interval=0.05, auto_start_session=True, instrument_llm_calls=False)
                op = c.tool(lambda: None)
                for _ in range(5000):
                    op()
                time.sleep(0.3)
                print(time.time(), flush=True)
            """)
            out, _ = python(code)
            print(
                f"  shutdown_timeout={timeout}s: the process exited {time.time() - float(out.strip()):.2f}s after "
                f"its last line, collector hanging"
            )
    finally:
        hanging.stop()


def load(per_worker: int) -> None:
    sink = OtlpSink()
    client = sessionkit.Client(endpoint=sink.url, instrument_llm_calls=False)  # default queue: 4096
    op = client.tool(lambda: None)

    def thread_worker(n: int) -> None:
        with client.session(f"t{n}"):
            for _ in range(per_worker):
                op()

    async def task_worker(n: int) -> None:
        async with client.session(f"a{n}"):
            for i in range(per_worker):
                op()
                if i % 100 == 0:
                    await asyncio.sleep(0)

    started = time.perf_counter()
    threads = [threading.Thread(target=thread_worker, args=(n,)) for n in range(64)]
    for t in threads:
        t.start()

    async def tasks() -> None:
        await asyncio.gather(*(task_worker(n) for n in range(64)))

    asyncio.run(tasks())
    for t in threads:
        t.join()
    produced = time.perf_counter() - started
    client.flush(timeout=60)
    stats = client.stats()
    client.shutdown(timeout=5)
    sink.stop()
    print(f"\nLoad: 64 threads + 64 asyncio tasks x {per_worker:,} spans, default settings, OTLP/HTTP to 127.0.0.1")
    print(
        f"  {stats.spans_ended:,} spans in {produced:.1f}s: {stats.spans_exported:,} exported, {stats.dropped_spans:,} dropped, "
        f"{stats.spans_failed_export:,} failed"
    )


def slowdown(calls: int) -> None:
    """The agent's own calls under each collector fault, next to a healthy collector."""
    sink, hanging = OtlpSink(), Hanging()
    endpoints = {"healthy": sink.url, "refused": dead_endpoint(), "hanging": hanging.url}
    print(f"\nThe agent's calls while the collector fails ({calls:,} decorated calls, default settings)")
    try:
        for name, endpoint in endpoints.items():
            client = sessionkit.Client(endpoint=endpoint, export_timeout=2, instrument_llm_calls=False)
            op = client.tool(lambda: None)
            session = client.start_session(name)
            worst = 0.0
            started = time.perf_counter()
            for _ in range(calls):
                t0 = time.perf_counter()
                op()
                worst = max(worst, time.perf_counter() - t0)
            total = time.perf_counter() - started
            session.end()
            stats = client.stats()
            client.shutdown(timeout=0.5)
            print(
                f"  {name:<8} {total / calls * 1e6:7.1f} us per call, slowest single call {worst * 1000:7.1f} ms; "
                f"{stats.dropped_spans:,} dropped"
            )
    finally:
        sink.stop()
        hanging.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"sessionkit {sessionkit.__version__}; {os.cpu_count()} cores")
    print("\nExit with the collector hanging (accepts, never answers)")
    exit_time()
    slowdown(20_000 if args.quick else 50_000)
    load(200 if args.quick else 1000)
    memory(100_000 if args.quick else 1_000_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What findings and budgets cost (docs/insights.md), each figure next to its baseline in one run.

    python benchmarks/insights.py            # about a minute
    python benchmarks/insights.py --quick

1. A decorated tool call in a turn, and an LLM call through the real openai SDK to a local fake
   server: findings on (the default) against ``findings="none"``, and against raw OpenTelemetry
   (the tool call) or the uninstrumented call (the LLM call).
2. The detectors' memory in one long session: 100,000 spans (tool calls with new arguments each
   time, the worst case for the loop detector, LLM calls with new requests, turns), measured with
   tracemalloc as the memory allocated by sessionkit/_findings.py, after 1,000, 10,000 and
   100,000 spans: it stays flat.

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import sessionkit  # noqa: E402

from run import Discard, interleaved, loop, noop, paired_ratio, raw_provider, raw_wrapper, row  # noqa: E402


def bench_costs(calls: int, repeats: int) -> None:
    on = sessionkit.Client(exporter=Discard(), service_name="bench-on", max_queue_size=100_000)
    off = sessionkit.Client(exporter=Discard(), service_name="bench-off", max_queue_size=100_000, findings="none")
    raw_tracer = raw_provider(max_queue_size=100_000).get_tracer("bench")
    raw_noop = raw_wrapper(raw_tracer)(noop)
    tool_on, tool_off = on.tool(noop), off.tool(noop)
    session_on, session_off = on.start_session("on"), off.start_session("off")

    def in_turn(session: sessionkit.Session, run: Callable[[int], None]) -> Callable[[int], None]:
        def wrapped(n: int) -> None:
            with session.turn("bench"):
                run(n)

        return wrapped

    def in_raw_root(run: Callable[[int], None]) -> Callable[[int], None]:
        def wrapped(n: int) -> None:
            with raw_tracer.start_as_current_span("root"):
                run(n)

        return wrapped

    s = interleaved(
        {
            "raw": in_raw_root(loop(raw_noop)),
            "on": in_turn(session_on, loop(tool_on)),
            "off": in_turn(session_off, loop(tool_off)),
        },
        calls,
        repeats,
    )
    session_on.end()
    session_off.end()
    print("\n1. @tool in a turn (BatchSpanProcessor, discarding exporter)")
    print(row("raw OTel start_as_current_span wrapper (in a root)", s["raw"], None))
    print(row("@sessionkit.tool in a turn, findings off", s["off"], s["raw"]))
    print(row("@sessionkit.tool in a turn, findings on", s["on"], s["raw"]))
    print(f"  {'  findings on / off':<50} {paired_ratio(s['on'], s['off']):9.3f}x")
    on.shutdown(timeout=2)
    off.shutdown(timeout=2)
    bench_llm(calls, repeats)


def bench_llm(calls: int, repeats: int) -> None:
    import openai
    from sessionkit.fake_llm import FakeLLMServer

    with FakeLLMServer(chunks=8) as server:
        messages = [{"role": "user", "content": "where is my order"}]
        clients = {
            "on": sessionkit.Client(exporter=Discard(), service_name="llm-on"),
            "off": sessionkit.Client(exporter=Discard(), service_name="llm-off", findings="none"),
        }
        sessions = {name: c.start_session(name) for name, c in clients.items()}
        sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)

        def variant(name: str) -> Callable[[int], None]:
            def run(n: int) -> None:
                for c in clients.values():
                    c.uninstrument()
                if name != "plain":
                    clients[name].instrument()
                with sessionkit.Session.__enter__(sessions[name]) if name != "plain" else _nothing():
                    for _ in range(n):
                        sdk.chat.completions.create(model="gpt-4o-mini", messages=messages)

            return run

        variants = {name: variant(name) for name in ("plain", "off", "on")}
        n = max(calls // 200, 20)
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for fn in variants.values():
            fn(3)
        for _ in range(repeats * 3):
            for name, fn in variants.items():
                c = time.thread_time()
                fn(n)
                cpu[name].append((time.thread_time() - c) / n * 1e6)
        for session in sessions.values():
            session.end()
        for c in clients.values():
            c.shutdown(timeout=2)
        sdk.close()
    print("\n2. chat.completions.create through the real openai SDK, calling thread's CPU time")
    print(row("uninstrumented", cpu["plain"], None))
    print(row("instrumented, findings off", cpu["off"], cpu["plain"]))
    print(row("instrumented, findings on", cpu["on"], cpu["plain"]))
    print(f"  {'  findings on / off':<50} {paired_ratio(cpu['on'], cpu['off']):9.3f}x")


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def bench_memory(total: int) -> None:
    """The detectors' memory in one session of ``total`` spans."""
    client = sessionkit.Client(exporter=Discard(), service_name="bench-memory", max_queue_size=100_000)

    @client.tool
    def lookup(order: int) -> int:
        return order

    marks = sorted({1_000, 10_000, total})
    tracemalloc.start()
    findings_file = os.path.join(os.path.dirname(sessionkit.__file__), "_findings.py")
    filters = [tracemalloc.Filter(True, findings_file)]
    print(f"\n3. Detector memory in one session of {total:,} spans (tracemalloc, allocated in _findings.py)")
    print(f"  {'spans':>10} {'bytes held by the detectors':>30}")
    done = 0
    with client.session("long") as session:
        turn_index = 0
        while done < total:
            turn_index += 1
            with session.turn(f"turn {turn_index}"):
                for _ in range(99):
                    lookup(done)  # new arguments every call: the loop detector's worst case
                    done += 1
            done += 1  # (the turn's root)
            if any(done >= m > done - 100 for m in marks):
                client.flush(10)
                size = sum(s.size for s in tracemalloc.take_snapshot().filter_traces(filters).statistics("filename"))
                print(f"  {done:>10,} {size:>30,}")
    tracemalloc.stop()
    client.shutdown(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    calls, repeats = (2_000, 5) if args.quick else (10_000, 9)
    print(f"sessionkit {sessionkit.__version__}, Python {sys.version.split()[0]}")
    bench_costs(calls, repeats)
    bench_memory(100_000)


if __name__ == "__main__":
    main()

"""sessionkit benchmarks: per-call costs as ratios against raw OpenTelemetry, in one run.

    python benchmarks/run.py            # all figures
    python benchmarks/run.py --quick    # fewer repeats

Every figure is the median of interleaved repeats (variants take turns, so drift in machine
speed hits all of them alike), with min and max. Baselines run in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import sessionkit


class Discard(SpanExporter):
    """Takes every batch and throws it away: the pipeline runs, nothing is sent."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[object]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def interleaved(variants: dict[str, Callable[[int], None]], calls: int, repeats: int) -> dict[str, list[float]]:
    """Microseconds per call for each variant, ``repeats`` samples each, taken in turns."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        fn(min(calls, 2000))  # warm up
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter_ns()
            fn(calls)
            samples[name].append((time.perf_counter_ns() - start) / calls / 1000)
    return samples


def row(label: str, samples: list[float], baseline: list[float] | None) -> str:
    med = statistics.median(samples)
    ratio = f"{med / statistics.median(baseline):6.2f}x" if baseline else "   base"
    return f"  {label:<52} {med:8.2f} us  (min {min(samples):7.2f}, max {max(samples):7.2f})  {ratio}"


def raw_provider() -> tuple[TracerProvider, Discard]:
    exporter = Discard()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


def bench_decorators(calls: int, repeats: int) -> None:
    """@sessionkit.tool on a no-op inside a session, against hand-written raw OTel wrappers."""
    client = sessionkit.Client(exporter=Discard(), service_name="bench")
    provider, _ = raw_provider()
    raw_tracer = provider.get_tracer("bench")
    same_tracer = client.tracer_provider.get_tracer("bench-raw")  # type: ignore[union-attr]

    def raw_wrapper(tracer):  # the hand-written baseline: what a user would write
        def deco(fn):
            def wrapper(*args, **kwargs):
                with tracer.start_as_current_span(fn.__name__):
                    return fn(*args, **kwargs)

            return wrapper

        return deco

    def noop():
        return None

    raw_noop = raw_wrapper(raw_tracer)(noop)
    same_noop = raw_wrapper(same_tracer)(noop)
    sk_noop = client.tool(noop)

    raw_nested = raw_wrapper(raw_tracer)(lambda: raw_wrapper(raw_tracer)(lambda: raw_noop())())
    sk_llm = client.llm(model="m")(noop)
    sk_tool = client.tool(lambda: sk_llm())
    sk_nested = client.agent(lambda: sk_tool())

    async def anoop():
        return None

    raw_anoop_inner = anoop

    async def raw_async():
        with raw_tracer.start_as_current_span("anoop"):
            return await raw_anoop_inner()

    sk_anoop = client.tool(anoop)

    def loop(fn):
        def run(n):
            for _ in range(n):
                fn()

        return run

    def aloop(fn):
        async def many(n):
            for _ in range(n):
                await fn()

        def run(n):
            asyncio.run(many(n))

        return run

    def in_raw_root(run):
        def wrapped(n):
            with raw_tracer.start_as_current_span("root"):
                run(n)

        return wrapped

    session = client.start_session("bench")

    disabled = sessionkit.Client(enabled=False)
    sk_disabled = disabled.tool(noop)

    variants = {
        "raw": in_raw_root(loop(raw_noop)),
        "raw-same-provider": loop(same_noop),
        "sk": loop(sk_noop),
        "raw-nested": in_raw_root(loop(raw_nested)),
        "sk-nested": loop(sk_nested),
        "raw-async": in_raw_root(aloop(raw_async)),
        "sk-async": aloop(sk_anoop),
        "bare": loop(noop),
        "sk-disabled": loop(sk_disabled),
    }
    s = interleaved(variants, calls, repeats)
    print("\nDecorated no-op call, inside a session (BatchSpanProcessor, discarding exporter)")
    print(row("raw OTel start_as_current_span wrapper", s["raw"], None))
    print(row("raw OTel wrapper on sessionkit's provider", s["raw-same-provider"], s["raw"]))
    print(row("@sessionkit.tool", s["sk"], s["raw"]))
    print(row("  ... vs raw wrapper on the same provider", s["sk"], s["raw-same-provider"]))
    print(row("raw OTel, 3 nested", s["raw-nested"], None))
    print(row("@agent > @tool > @llm", s["sk-nested"], s["raw-nested"]))
    print(row("raw OTel async wrapper", s["raw-async"], None))
    print(row("@sessionkit.tool on an async no-op", s["sk-async"], s["raw-async"]))
    bare = statistics.median(s["bare"])
    added = [x - bare for x in s["sk-disabled"]]
    print(f"  {'sessionkit disabled (enabled=False), added per call':<52} {statistics.median(added):8.2f} us")
    session.end()
    client.shutdown(timeout=2)
    disabled.shutdown(timeout=1)


def bench_llm(calls: int, repeats: int) -> None:
    """LLM calls through the real openai SDK to the local fake server, with and without sessionkit."""
    try:
        import openai
    except ImportError:
        print("\nLLM calls: skipped (pip install openai)")
        return
    from sessionkit.fake_llm import FakeLLMServer

    chunks = 200
    with FakeLLMServer(chunks=chunks) as server:
        client = sessionkit.Client(exporter=Discard(), llm_base_urls=[server.url])
        sdk = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        messages = [{"role": "user", "content": "where is my order"}]

        def call(n):
            for _ in range(n):
                sdk.chat.completions.create(model="m", messages=messages)

        def stream(n):
            for _ in range(n):
                for _ in sdk.chat.completions.create(model="m", messages=messages, stream=True,
                                                     stream_options={"include_usage": True}):  # fmt: skip
                    pass

        def toggled(fn, on):
            def run(n):
                (client.instrument if on else client.uninstrument)()
                fn(n)

            return run

        session = client.start_session("bench-llm")
        n = max(calls // 25, 40)
        s = interleaved({"plain": toggled(call, False), "sk": toggled(call, True),
                         "plain-stream": toggled(stream, False), "sk-stream": toggled(stream, True)},
                        n, repeats)  # fmt: skip
        session.end()
        client.shutdown(timeout=2)
    print(f"\nLLM calls through the real openai SDK to a local fake server ({n} calls per sample)")
    print(row("chat.completions.create, uninstrumented", s["plain"], None))
    print(row("chat.completions.create, instrumented", s["sk"], s["plain"]))
    print(row(f"streamed ({chunks} chunks), uninstrumented", s["plain-stream"], None))
    print(row(f"streamed ({chunks} chunks), instrumented", s["sk-stream"], s["plain-stream"]))
    per_call = statistics.median(s["sk"]) - statistics.median(s["plain"])
    per_stream = statistics.median(s["sk-stream"]) - statistics.median(s["plain-stream"])
    print(f"  {'added per call (median)':<52} {per_call:8.2f} us")
    print(f"  {'added per streamed chunk (median)':<52} {max(per_stream - per_call, 0) / chunks:8.2f} us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    args = parser.parse_args()
    calls, repeats = (2000, 5) if args.quick else (5000, 9)
    print(f"sessionkit {sessionkit.__version__} on Python {platform.python_version()} "
          f"({platform.machine()}, {platform.system()}); {calls} calls x {repeats} interleaved repeats")  # fmt: skip
    bench_decorators(calls, repeats)
    bench_llm(calls, repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())

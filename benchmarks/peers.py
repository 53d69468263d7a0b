"""The same decorated-call workload on other agent observability SDKs, side by side.

    python benchmarks/peers.py [--keep DIR]

Each SDK is installed into a throwaway virtualenv of its own (never into this project's), and
exports over OTLP/HTTP to a sink on 127.0.0.1 that this script runs. In each process the raw
OpenTelemetry wrapper is measured too, so every figure is a ratio within one process. An SDK
that cannot be installed or cannot run offline is reported as such, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import OtlpSink

# What each SDK needs installed, and how it sets up and decorates. ``SINK`` is the sink's URL.
PEERS: dict[str, dict[str, Any]] = {
    "traceloop-sdk": {
        # traceloop-sdk requires ~30 unpinned instrumentation packages, each with many releases
        # tied to different semantic-conventions-ai ranges: pip backtracks through them for more
        # than ten minutes, and on some mirrors no combination resolves at all. The decorators
        # need none of them (the SDK skips instrumentations that are not installed), so it is
        # installed without dependencies, then with its runtime dependencies named explicitly.
        "install": [
            "--no-deps traceloop-sdk==0.62.4",
            "aiohttp>=3.11.11,<4 colorama>=0.4.6,<0.5 cuid>=0.4,<0.5 deprecated>=1.2.14,<2 jinja2>=3.1.5,<4 "
            "tenacity>=8.2.3,<10 pydantic>=2 httpx opentelemetry-semantic-conventions-ai>=0.5.1,<0.6 "
            "opentelemetry-exporter-otlp-proto-http>=1.38,<2 opentelemetry-exporter-otlp-proto-grpc>=1.38,<2 "
            "opentelemetry-instrumentation-threading==0.66b1 opentelemetry-instrumentation-logging==0.66b1",
        ],
        "setup": """
            os.environ["TRACELOOP_TELEMETRY"] = "false"
            from traceloop.sdk import Traceloop
            from traceloop.sdk.decorators import agent, task, tool
            Traceloop.init(app_name="bench", api_endpoint=SINK, api_key="bench", telemetry_enabled=False)
            TOOL = tool(name="noop")
            NESTED = (agent(name="agent"), tool(name="tool"), task(name="llm"))
        """,
    },
    "logfire": {
        "install": "logfire opentelemetry-exporter-otlp-proto-http",
        "setup": """
            import logfire
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            logfire.configure(send_to_logfire=False, console=False,
                              additional_span_processors=[BatchSpanProcessor(OTLPSpanExporter(endpoint=SINK + "/v1/traces"))])
            TOOL = logfire.instrument("noop")
            NESTED = (logfire.instrument("agent"), logfire.instrument("tool"), logfire.instrument("llm"))
        """,
    },
    "langfuse": {
        "install": "langfuse",
        "setup": """
            from langfuse import Langfuse, observe
            Langfuse(public_key="pk-lf-bench", secret_key="sk-lf-bench", host=SINK)
            TOOL = observe(name="noop", as_type="tool")
            NESTED = (observe(name="agent", as_type="agent"), observe(name="tool", as_type="tool"),
                      observe(name="llm", as_type="generation"))
        """,
    },
    "arize-phoenix-otel": {
        "install": "arize-phoenix-otel",
        "setup": """
            from phoenix.otel import register
            provider = register(endpoint=SINK + "/v1/traces", protocol="http/protobuf", batch=True,
                                set_global_tracer_provider=False, project_name="bench", verbose=False)
            tracer = provider.get_tracer("bench")
            TOOL = tracer.tool
            NESTED = (tracer.agent, tracer.tool, tracer.llm)
        """,
    },
    "agentops": {
        "install": "agentops",
        "setup": """
            import agentops
            from agentops.sdk.decorators import agent, operation, tool
            agentops.init(api_key="00000000-0000-0000-0000-000000000000", exporter_endpoint=SINK + "/v1/traces",
                          auto_start_session=False, instrument_llm_calls=False)
            TOOL = tool(name="noop")
            NESTED = (agent, tool(name="tool"), operation(name="llm"))
        """,
    },
}

WORKLOAD = """
import json, os, statistics, sys, time
SINK = sys.argv[1]
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
raw_provider = TracerProvider(shutdown_on_exit=False)
raw_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=SINK + "/v1/traces")))
raw_tracer = raw_provider.get_tracer("raw")
def raw(fn):
    def wrapper(*a, **k):
        with raw_tracer.start_as_current_span(fn.__name__):
            return fn(*a, **k)
    return wrapper
SETUP
def noop():
    return None
sdk_tool = TOOL(noop)
outer, middle, inner = NESTED
sdk_inner = inner(noop)
sdk_middle = middle(lambda: sdk_inner())
sdk_nested = outer(lambda: sdk_middle())
raw_tool = raw(noop)
raw_inner = raw(noop)
raw_middle = raw(lambda: raw_inner())
raw_nested = raw(lambda: raw_middle())
def run(fn, n):
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - start) / n / 1000
samples = {k: [] for k in ("raw", "sdk", "raw3", "sdk3")}
for fn in (raw_tool, sdk_tool, raw_nested, sdk_nested):
    run(fn, 500)
for _ in range(REPEATS):
    samples["raw"].append(run(raw_tool, CALLS)); samples["sdk"].append(run(sdk_tool, CALLS))
    samples["raw3"].append(run(raw_nested, CALLS)); samples["sdk3"].append(run(sdk_nested, CALLS))
result = {k: statistics.median(v) for k, v in samples.items()}
# ratios: the median of each repeat's SDK sample over the raw sample taken next to it
result["ratio"] = statistics.median(a / b for a, b in zip(samples["sdk"], samples["raw"]))
result["ratio3"] = statistics.median(a / b for a, b in zip(samples["sdk3"], samples["raw3"]))
print(json.dumps(result))
sys.stdout.flush()
os._exit(0)
"""


def measure_sessionkit(sink: str, calls: int, repeats: int) -> dict[str, float]:
    setup = """
        import sessionkit
        client = sessionkit.init(endpoint=SINK, instrument_llm_calls=False)
        client.start_session("bench")
        TOOL = client.tool
        NESTED = (client.agent, client.tool, client.llm(model="m"))
    """
    return run_workload(sys.executable, setup, sink, calls, repeats)


def run_workload(python: str, setup: str, sink: str, calls: int, repeats: int) -> dict[str, float]:
    code = (
        WORKLOAD.replace("SETUP", textwrap.dedent(setup)).replace("REPEATS", str(repeats)).replace("CALLS", str(calls))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SESSIONKIT_"))}
    env.update({"OTEL_SDK_DISABLED": "false", "DO_NOT_TRACK": "1", "LANGFUSE_TRACING_ENVIRONMENT": "bench"})
    with tempfile.TemporaryDirectory(prefix="peer-run-") as cwd:  # some SDKs write log files where they run
        proc = subprocess.run([python, "-c", code, sink], capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1][:160])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", help="keep the virtualenvs in this folder (reused on the next run)")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--only", nargs="*", help="measure only these peers")
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="sessionkit-peers-")
    sink = OtlpSink()
    rows: list[tuple[str, str]] = []
    try:
        results = {"sessionkit": measure_sessionkit(sink.url, args.calls, args.repeats)}
        for name, peer in PEERS.items():
            if args.only and name not in args.only:
                continue
            venv = os.path.join(root, name)
            python = os.path.join(venv, "bin", "python")
            started = time.perf_counter()
            try:
                if not os.path.exists(python):
                    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
                    steps = peer["install"] if isinstance(peer["install"], list) else [peer["install"]]
                    for step in steps:  # each step one pip call; a step may be "--no-deps pkg==x"
                        install = subprocess.run(
                            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *step.split()],
                            capture_output=True,
                            text=True,
                            timeout=900,
                        )
                        if install.returncode != 0:
                            shutil.rmtree(venv, ignore_errors=True)  # a half-made venv is not reused
                            raise RuntimeError("install failed: " + install.stderr.strip().splitlines()[-1][:160])
                version = subprocess.run([python, "-m", "pip", "show", name], capture_output=True, text=True).stdout
                version = next(
                    (line.split(": ")[1] for line in version.splitlines() if line.startswith("Version")), "?"
                )
                results[f"{name} {version}"] = run_workload(python, peer["setup"], sink.url, args.calls, args.repeats)
            except Exception as exc:
                rows.append((name, f"not measured: {exc} ({time.perf_counter() - started:.0f}s)"))
    finally:
        sink.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"Per decorated no-op call, each SDK exporting OTLP/HTTP to a sink on 127.0.0.1; "
        f"medians of {args.repeats} x {args.calls} calls; ratios: median of paired samples against raw OpenTelemetry in the same process\n"
    )
    print(f"  {'SDK':<28} {'sync':>9} {'ratio':>7}   {'3 nested':>9} {'ratio':>7}")
    for name, r in results.items():
        print(
            f"  {name:<28} {r['sdk']:7.1f}us {r['ratio']:6.2f}x   {r['sdk3']:7.1f}us {r['ratio3']:6.2f}x"
            f"   (raw here: {r['raw']:.1f}us / {r['raw3']:.1f}us)"
        )
    for name, reason in rows:
        print(f"  {name:<28} {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What sessionkit adds to each native provider's call, through the real SDKs.

Each SDK talks to the fake provider server (sessionkit.fake_llm.FakeProviderServer) running in a process of
its own, as a model server is. Each call is timed uninstrumented and instrumented, interleaved
in the same run; the figures are the wall time and the calling thread's CPU time per call, with
the ratio to the uninstrumented call. No configuration: the calls are recognised on 127.0.0.1
by what they are.

    python benchmarks/providers.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import sessionkit
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class Discard(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class ServerProcess:
    """The fake provider server in a process of its own."""

    def __enter__(self) -> ServerProcess:
        code = (
            "import sys\nfrom sessionkit.fake_llm import FakeProviderServer\n"
            "s = FakeProviderServer().__enter__()\nprint(s.port, flush=True)\nsys.stdin.read()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def calls(url: str, loop: asyncio.AbstractEventLoop) -> dict[str, Callable[[], Any]]:
    """One call per provider, each a function of no arguments (its SDK client made once)."""
    import aiohttp
    import cohere
    import ollama
    from google import genai
    from google.genai import types
    from mistralai.client import Mistral

    gemini = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
    olla = ollama.Client(host=url)
    co = cohere.ClientV2(api_key="k", base_url=url)
    mistral = Mistral(api_key="k", server_url=url)
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    session = loop.run_until_complete(_session(aiohttp))

    async def post(path: str, body: dict[str, Any]) -> bytes:
        async with session.post(url + path, json=body) as response:
            return await response.read()

    def stream_gemini() -> None:
        for _ in gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="Weather?"):
            pass

    def stream_ollama() -> None:
        for _ in olla.chat(model="llama3.2", messages=asked, stream=True):
            pass

    return {
        "gemini generate_content": lambda: gemini.models.generate_content(
            model="gemini-2.5-flash", contents="Weather?"
        ),
        "gemini generate_content_stream": stream_gemini,
        "ollama chat": lambda: olla.chat(model="llama3.2", messages=asked, stream=False),
        "ollama chat, streamed (NDJSON)": stream_ollama,
        "cohere v2 chat": lambda: co.chat(model="command-a-03-2025", messages=asked),
        "mistral chat.complete": lambda: mistral.chat.complete(model="mistral-small-latest", messages=asked),
        "aiohttp POST /api/chat": lambda: loop.run_until_complete(
            post("/api/chat", {"model": "llama3.2", "messages": asked, "stream": False})
        ),
        "aiohttp POST that is no LLM call": lambda: loop.run_until_complete(post("/v1/files", {"purpose": "x"})),
    }


async def _session(aiohttp: Any) -> Any:
    return aiohttp.ClientSession()


def bedrock_call(url: str) -> Callable[[], Any]:
    """A Converse call; botocore hooks a client when it is made, so each variant makes its own."""
    import boto3

    client = boto3.client(
        "bedrock-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    messages = [{"role": "user", "content": [{"text": "Weather?"}]}]
    return lambda: client.converse(modelId="anthropic.claude-3-5-haiku-20241022-v1:0", messages=messages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    args = parser.parse_args()
    per_round, rounds = (10, 5) if args.quick else (30, 15)
    with ServerProcess() as server:
        client = sessionkit.Client(exporter=Discard())
        loop = asyncio.new_event_loop()
        made = {name: (fn, fn) for name, fn in calls(server.url, loop).items()}
        client.uninstrument()
        bedrock_plain = bedrock_call(server.url)  # made while uninstrumented: no handlers
        client.instrument()
        made["bedrock converse"] = (bedrock_plain, bedrock_call(server.url))
        session = client.start_session("bench-providers")
        rows = []
        for name, (plain_fn, sk_fn) in made.items():
            samples: dict[str, dict[str, list[float]]] = {v: {"wall": [], "cpu": []} for v in ("plain", "sk")}
            for fn in (plain_fn, sk_fn):
                fn()
            for _ in range(rounds):
                for variant, fn in (("plain", plain_fn), ("sk", sk_fn)):
                    (client.instrument if variant == "sk" else client.uninstrument)()
                    wall, cpu = time.perf_counter(), time.thread_time()
                    for _ in range(per_round):
                        fn()
                    samples[variant]["cpu"].append((time.thread_time() - cpu) / per_round * 1e6)
                    samples[variant]["wall"].append((time.perf_counter() - wall) / per_round * 1e6)
            rows.append((name, samples))
        session.end()
        client.shutdown(timeout=2)
        loop.close()
    print("Native provider calls through their real SDKs, fake server in its own process")
    print(f"{per_round} calls x {rounds} rounds per variant, interleaved; medians per call")
    print(f"{'call':<36} {'wall plain':>11} {'wall sk':>9} {'ratio':>7} {'cpu plain':>10} {'cpu sk':>8} {'added':>8}")
    figures = {}
    for name, samples in rows:
        ratios = [a / b for a, b in zip(samples["sk"]["wall"], samples["plain"]["wall"])]
        added = [a - b for a, b in zip(samples["sk"]["cpu"], samples["plain"]["cpu"])]
        wall_plain, wall_sk = statistics.median(samples["plain"]["wall"]), statistics.median(samples["sk"]["wall"])
        cpu_plain, cpu_sk = statistics.median(samples["plain"]["cpu"]), statistics.median(samples["sk"]["cpu"])
        figures[name] = {"wall_ratio": statistics.median(ratios), "cpu_added_us": statistics.median(added)}
        print(
            f"{name:<36} {wall_plain:9.0f}us {wall_sk:7.0f}us {statistics.median(ratios):6.2f}x"
            f" {cpu_plain:8.0f}us {cpu_sk:6.0f}us {statistics.median(added):6.0f}us"
        )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

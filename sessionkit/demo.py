"""``sessionkit demo``: a small multi-user support agent, run offline.

Several users talk to one agent at once, each conversation in its own session with its own
``thread_id``. The agent plans, calls tools and a (simulated, local) model; one user's order
lookup fails, so one session shows an error. At the end: a summary per session, and where the
spans went.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import sessionkit
from sessionkit.cli import format_table
from sessionkit.session import SessionSummary

ORDERS = {"o-100": "shipped", "o-200": "processing", "o-300": "delivered"}


class OrderNotFound(LookupError):
    pass


@sessionkit.tool(name="lookup_order")
def lookup_order(order_id: str) -> str:
    time.sleep(0.005)
    if order_id not in ORDERS:
        raise OrderNotFound(order_id)
    return ORDERS[order_id]


@sessionkit.tool(name="search_help_center")
def search_help_center(query: str) -> list[str]:
    time.sleep(0.003)
    return [f"article about {query.split()[0]}"]


@sessionkit.llm(model="local-llama", provider="local")
def local_model(prompt: str, rng: random.Random) -> str:
    time.sleep(0.01)
    sessionkit.record_llm_usage(input_tokens=len(prompt.split()) * 4 + 20, output_tokens=rng.randint(12, 40))
    return f"Here is what I found: {prompt[:40]}"


@sessionkit.agent(name="support_agent")
def support_agent(message: str, order_id: str, rng: random.Random) -> str:
    articles = search_help_center(message)
    try:
        status = lookup_order(order_id)
    except OrderNotFound:
        status = "unknown"
    return local_model(f"{message} order={order_id} status={status} docs={articles}", rng)


def converse(client: sessionkit.Client, user: int, turns: int, progress: list[str]) -> SessionSummary:
    rng = random.Random(user)
    order_id = "o-999" if user == 1 else f"o-{(user % 3 + 1) * 100}"
    with client.session("support-conversation", thread_id=f"conv-{user}", user_id=f"user-{user}") as session:
        for turn in range(1, turns + 1):
            support_agent(f"where is my order, turn {turn}", order_id, rng)
            progress.append(f"  user-{user} turn {turn}/{turns} done")
            print(progress[-1], flush=True)
    return session.summary()


def _table(summaries: list[SessionSummary]) -> str:
    header = ["session", "user", "thread", "state", "duration", "spans", "llm", "tokens in/out", "errors"]
    rows = [
        [s.session_id[:8], s.user_id or "-", s.thread_id or "-", s.end_state.value if s.end_state else "-",
         f"{s.duration_seconds:.2f}s", str(s.span_count), str(s.llm_calls), f"{s.input_tokens}/{s.output_tokens}",
         str(s.errors)]
        for s in summaries
    ]  # fmt: skip
    return format_table(rows, header)


def run_demo(endpoint: Optional[str] = None, users: int = 4, turns: int = 3, file_dir: Optional[str] = None) -> int:
    options: dict[str, object] = {"service_name": "sessionkit-demo"}
    if endpoint:
        options["endpoint"] = endpoint
    if file_dir:
        options["file_dir"] = file_dir
    client = sessionkit.init(**options)  # type: ignore[arg-type]
    print(f"sessionkit demo: {users} users x {turns} turns, each conversation in its own session\n")
    started = time.monotonic()
    progress: list[str] = []
    with ThreadPoolExecutor(max_workers=users) as pool:
        futures = [pool.submit(converse, client, user, turns, progress) for user in range(1, users + 1)]
        summaries = [f.result() for f in futures]
    client.flush(timeout=10)
    print(f"\n{len(summaries)} sessions in {time.monotonic() - started:.2f}s\n")
    print(_table(summaries))
    stats = client.stats()
    print(f"\nspans: {stats.spans_started} started, {stats.spans_exported} exported, "
          f"{stats.dropped_spans} dropped, {stats.spans_without_session} outside any session")  # fmt: skip
    config = client.config
    if config.exporter == "file":
        exporter = client.exporter
        path = getattr(exporter, "path", None) or Path(config.file_dir)
        print(f"spans went to {path} (OTLP JSON lines)")
        print("see them with: sessionkit sessions   |   sessionkit show <session id>")
    else:
        print(f"spans went to {config.traces_url()} over OTLP ({config.protocol})")
    client.shutdown(timeout=5)
    return 0

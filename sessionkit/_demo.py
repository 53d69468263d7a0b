"""``sessionkit demo``: a small multi-user support agent behind a chat proxy, run offline.

Several users talk to one agent at once, each conversation in its own session with its own
``thread_id``, each user message and the agent's answer a turn of it (content capture is on: the
demo's data is made up). For each turn the proxy opens a chat channel (the network drops some creation
attempts, so it retries; one user's reply never finishes, so that channel leaks), the agent
loads the conversation history (half the users' agent reloads it all from the database each
turn, the others keep a cache), plans, calls tools and a model. At the end: a summary per
session, what sessionkit found in each (findings: the leaked channel, the reloaded history,
...), and where the spans went.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import httpx

from . import api
from ._channels import Channel
from ._client import Client
from ._models import SessionSummary
from ._render import summary_table
from ._session import Session
from .fake_llm import FakeLLMServer, Reported

ORDERS = {"o-100": "shipped", "o-200": "processing", "o-300": "delivered"}
QUESTIONS = (
    "Hi, where is my order {order}?",
    "It said shipped two days ago. When will {order} arrive?",
    "Can I change the delivery address for {order}?",
    "Thanks. Can you also check the return policy?",
    "One more thing: is express shipping available?",
)


class OrderNotFound(LookupError):
    pass


class FlakyNetwork(ConnectionError):
    pass


# -- the agent --------------------------------------------------------------------------------------
@api.tool(name="lookup_order")
def lookup_order(order_id: str) -> str:
    time.sleep(0.005)
    if order_id not in ORDERS:
        raise OrderNotFound(order_id)
    return ORDERS[order_id]


@api.tool(name="search_help_center")
def search_help_center(query: str) -> list[str]:
    time.sleep(0.003)
    return [f"article about {query.split()[0]}"]


class Model:
    """The agent's model: the fake OpenAI-compatible server on 127.0.0.1, reached through the
    real ``openai`` SDK when it is installed, else through plain httpx. sessionkit sees the
    calls on the wire either way."""

    name = "gpt-4o-mini"  # a model genai-prices knows, so the demo's turns have a cost

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        try:
            import openai

            self._sdk: Any = openai.OpenAI(base_url=base_url, api_key="demo-key-not-real", max_retries=2)
            self.via = f"openai {openai.__version__}"
        except ImportError:
            self._sdk = None
            self._http = httpx.Client(timeout=30)
            self.via = f"httpx {httpx.__version__}"

    def complete(self, prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        if self._sdk is not None:
            stream = self._sdk.chat.completions.create(
                model=self.name, messages=messages, stream=True, stream_options={"include_usage": True}
            )
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        body = {"model": self.name, "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
        parts: list[str] = []
        with self._http.stream("POST", self.base_url + "/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    for choice in json.loads(line[6:]).get("choices") or []:
                        parts.append(choice.get("delta", {}).get("content") or "")
        return "".join(parts)


@api.agent(name="support_agent")
def support_agent(model: Model, message: str, order_id: str, history: list[str]) -> str:
    articles = search_help_center(message)
    try:
        status = lookup_order(order_id)
    except OrderNotFound:
        status = "unknown"
    return model.complete(f"{message} order={order_id} status={status} docs={articles} turns={len(history)}")


# -- the database and the two ways to read history ---------------------------------------------------
class Database:
    """A conversation store whose reads cost time per message, like a real one."""

    def __init__(self) -> None:
        self._rows: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def append(self, conversation_id: str, message: str) -> None:
        with self._lock:
            self._rows.setdefault(conversation_id, []).append(message)

    def load(self, conversation_id: str) -> list[str]:
        with self._lock:
            rows = list(self._rows.get(conversation_id, []))
        time.sleep(0.002 + 0.0015 * len(rows))  # two queries, then every earlier message
        return rows


def load_history(
    session: Session, db: Database, conversation_id: str, turn: int, cache: Optional[dict[str, list[str]]]
) -> list[str]:
    with session.history_load("postgres", conversation_id=conversation_id, turn=turn) as load:
        if cache is not None and conversation_id in cache:
            messages = cache[conversation_id]
            load.record(messages=len(messages), cache_hit=True)
        else:
            messages = db.load(conversation_id)
            load.record(messages=len(messages), bytes=sum(len(m) for m in messages), cache_hit=False)
            if cache is not None:
                cache[conversation_id] = messages
    return messages


# -- the proxy: a channel per reply, over a flaky network ---------------------------------------------
def open_reply_channel(session: Session, rng: random.Random, user: int, turn: int) -> Channel:
    for attempt in range(1, 5):
        try:
            with session.channel_attempt("discord", purpose="reply") as creation:
                if attempt < 3 and rng.random() < 0.4:  # the network drops up to two tries
                    raise FlakyNetwork("connection reset while creating the channel")
                return creation.opened(f"ch-{user}-{turn}-{attempt}")
        except FlakyNetwork:
            time.sleep(0.002 * attempt)  # back off
    raise FlakyNetwork("gave up creating a channel")


def converse(
    client: Client, model: Model, db: Database, user: int, turns: int, progress: bool = True
) -> SessionSummary:
    rng = random.Random(user)
    order_id = "o-999" if user == 1 else f"o-{(user % 3 + 1) * 100}"
    conversation = f"conv-{user}"
    cache: Optional[dict[str, list[str]]] = {} if user % 2 == 0 else None  # even users' agent caches
    with client.session("support-conversation", thread_id=conversation, user_id=f"user-{user}") as session:
        for turn in range(1, turns + 1):
            message = QUESTIONS[(user + turn) % len(QUESTIONS)].format(order=order_id)
            with session.turn(message) as this_turn:
                db.append(conversation, message)
                if cache is not None and conversation in cache:
                    cache[conversation] = cache[conversation] + [message]
                channel = open_reply_channel(session, rng, user, turn)
                history = load_history(session, db, conversation, turn, cache)
                reply = support_agent(model, message, order_id, history)
                this_turn.set_output(reply)
                channel.record("message.sent", chars=len(reply))
                db.append(conversation, reply)
                if cache is not None:
                    cache[conversation] = cache[conversation] + [reply]
                if user == 3 and turn == turns:
                    pass  # the stream's end is never detected: this channel stays open and leaks
                else:
                    channel.close(reason="reply complete")
            _say(
                progress,
                f"  user-{user} turn {turn}/{turns}: {'cached' if cache is not None else 'reloaded'} "
                f"history, {len(history)} messages",
            )
    return session.summary()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not hasattr(record, "sessionkit_finding"):  # (findings are printed from the sessions)
            self.messages.append(record.getMessage())


@dataclass
class DemoResult:
    summaries: list[SessionSummary]
    reported: list[Reported]
    """What the fake LLM server reported for each call (tokens), to check the spans against."""
    warnings: list[str]
    model_via: str
    seconds: float


def run(
    users: int = 4,
    turns: int = 3,
    *,
    endpoint: Optional[str] = None,
    exporter: Optional[str] = None,
    file_dir: Optional[str] = None,
    project_name: Optional[str] = None,
    progress: bool = True,
) -> DemoResult:
    """Run the demo on the default client (created or reconfigured here) and return its figures."""
    collect = _Collect()
    logger = logging.getLogger("sessionkit")
    logger.addHandler(collect)
    server = FakeLLMServer(chunks=12).start()
    try:
        options: dict[str, Any] = {
            "service_name": "sessionkit-demo",
            "channel_limits": {"discord": 500},
            "capture_content": True,  # the demo's conversations are made up: show them
        }
        for key, value in (
            ("endpoint", endpoint),
            ("exporter", exporter),
            ("file_dir", file_dir),
            ("project_name", project_name),
        ):
            if value:
                options[key] = value
        client = api.init(**options)
        model = Model(server.openai_base_url)
        started = time.monotonic()
        db = Database()
        _say(
            progress,
            f"sessionkit demo: {users} users x {turns} turns, each conversation in its own session; "
            f"model calls through {model.via} to a local fake server\n",
        )
        with ThreadPoolExecutor(max_workers=users) as pool:
            futures = [pool.submit(converse, client, model, db, user, turns, progress) for user in range(1, users + 1)]
            summaries = [f.result() for f in futures]
        client.flush(timeout=10)
        return DemoResult(
            summaries, list(server.reported), list(collect.messages), model.via, time.monotonic() - started
        )
    finally:
        server.stop()
        logger.removeHandler(collect)


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, flush=True)


def run_demo(endpoint: Optional[str] = None, users: int = 4, turns: int = 5, file_dir: Optional[str] = None) -> int:
    """``sessionkit demo``: run, then print the summary table, warnings, and where the spans went."""
    result = run(users, turns, endpoint=endpoint, file_dir=file_dir)
    client = api.get_client()
    assert client is not None
    summaries = result.summaries
    print(f"\n{len(summaries)} sessions in {result.seconds:.2f}s\n")
    print(summary_table(summaries))
    findings = [(s.user_id, f) for s in summaries for f in s.findings]
    if findings:
        print("\nFindings (docs/insights.md):")
        for user_id, finding in findings:
            where = f" turn {finding.turn}" if finding.turn is not None else ""
            print(f"  {user_id}{where}  {finding.severity.value} {finding.kind}: {finding.message}")
    if result.warnings:
        print("\nOther warnings sessionkit raised:")
        for message in result.warnings:
            print(f"  - {message.removeprefix('sessionkit: ')}")
    stats = client.stats()
    print(
        f"\nspans: {stats.spans_started} started, {stats.spans_exported} exported, "
        f"{stats.dropped_spans} dropped, {stats.spans_without_session} outside any session"
    )
    config = client.config
    if config.exporter == "file":
        path = getattr(client.exporter, "path", None) or Path(config.file_dir)
        print(f"spans went to the local store {path}")
        print("see them with: sessionkit sessions   |   sessionkit show <session id>")
    else:
        print(f"spans went to {config.traces_url()} over OTLP ({config.protocol})")
    client.shutdown(timeout=5)
    return 0

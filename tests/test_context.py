"""Sessions never mix: threads, thread pools and asyncio tasks each keep their own."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sessionkit

from helpers import run_python, spans_of

WORKERS = 16
SPANS_EACH = 200


def _work(client: sessionkit.Client, label: str, ids: dict[str, str]) -> None:
    with client.session(label, thread_id=label) as s:
        ids[label] = s.id
        tracer = client.tracer
        for i in range(SPANS_EACH):
            with tracer.start_as_current_span(f"{label}-op", attributes={"worker": label, "i": i}):
                pass


async def _awork(client: sessionkit.Client, label: str, ids: dict[str, str]) -> None:
    async with client.session(label, thread_id=label) as s:
        ids[label] = s.id
        tracer = client.tracer
        for i in range(SPANS_EACH):
            with tracer.start_as_current_span(f"{label}-op", attributes={"worker": label, "i": i}):
                if i % 10 == 0:
                    await asyncio.sleep(0)  # interleave the tasks


def run_mixed_load(client: sessionkit.Client) -> dict[str, str]:
    ids: dict[str, str] = {}
    threads = [threading.Thread(target=_work, args=(client, f"thread-{n}", ids)) for n in range(WORKERS)]
    for t in threads:
        t.start()

    async def tasks() -> None:
        await asyncio.gather(*(_awork(client, f"task-{n}", ids) for n in range(WORKERS)))

    asyncio.run(tasks())
    for t in threads:
        t.join()
    return ids


def assert_no_mixing(spans, ids: dict[str, str]) -> None:
    ops = [s for s in spans if s.name.endswith("-op")]
    assert len(ops) == 2 * WORKERS * SPANS_EACH
    per_session = Counter()
    for span in ops:
        worker = span.attributes["worker"]
        assert span.attributes["session.id"] == ids[worker], f"{span.name} carries another session's id"
        assert span.attributes["gen_ai.conversation.id"] == worker
        per_session[span.attributes["session.id"]] += 1
    assert set(per_session.values()) == {SPANS_EACH}


def test_sixteen_threads_and_sixteen_tasks_never_mix(client):
    ids = run_mixed_load(client)
    assert_no_mixing(spans_of(client), ids)
    # Each top-level op is a turn of its worker's session: numbered 1..n there, never elsewhere.
    turns: dict[str, list[int]] = {}
    for span in spans_of(client):
        if span.name.endswith("-op"):
            turns.setdefault(span.attributes["session.id"], []).append(span.attributes["sessionkit.turn.index"])
    assert len(turns) == 2 * WORKERS
    assert all(sorted(indices) == list(range(1, SPANS_EACH + 1)) for indices in turns.values())


def test_thread_pool_and_plain_threads_started_in_a_session_carry_it(client):
    seen: dict[str, object] = {}

    def record(key: str) -> None:
        seen[key] = client.current_session()
        with client.tracer.start_as_current_span(key):
            pass

    with client.session("parent") as s:
        with ThreadPoolExecutor(max_workers=2) as pool:
            pool.submit(record, "pool").result()
        t = threading.Thread(target=record, args=("thread",))
        t.start()
        t.join()

        async def in_executor() -> None:
            await asyncio.get_running_loop().run_in_executor(None, record, "executor")

        asyncio.run(in_executor())
    assert seen == {"pool": s, "thread": s, "executor": s}
    spans = {x.name: x for x in spans_of(client)}
    for key in seen:
        assert spans[key].attributes["session.id"] == s.id
    assert sorted(spans[key].attributes["sessionkit.turn.index"] for key in seen) == [1, 2, 3]  # a turn each


def test_a_pool_thread_does_not_lend_its_first_session_to_later_work(client):
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        with client.session("first"):
            pool.submit(lambda: None).result()  # the worker thread is born inside "first"
        assert pool.submit(client.current_session).result() is None
    finally:
        pool.shutdown()


def test_a_thread_started_outside_any_session_has_none(client):
    with client.session("busy"):
        pass
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(client.current_session()))
    t.start()
    t.join()
    assert out == [None]


def test_sessions_never_mix_over_real_otlp_export(receiver):
    # Default settings, in a fresh process, against the receiver in this one.
    out = run_python(
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import sessionkit\n"
        "from test_context import run_mixed_load\n"
        f"c = sessionkit.init(endpoint={receiver.endpoint!r}, service_name='load')\n"
        "ids = run_mixed_load(c)\n"
        "assert c.flush(timeout=30)\n"
        "s = c.stats()\n"
        "print(json.dumps({'ids': ids, 'dropped': s.dropped_spans, 'errors': s.export_errors}))\n",
        timeout=120,
    )
    assert out[0] == 0, out[2][-2000:]
    result = json.loads(out[1])
    assert result["dropped"] == 0 and result["errors"] == 0
    expected = 2 * WORKERS * SPANS_EACH
    assert receiver.wait_for(lambda spans: sum(s.name.endswith("-op") for s in spans) >= expected, 30)
    assert_no_mixing(receiver.spans, result["ids"])

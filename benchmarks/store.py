"""The local store: write throughput, disk per session, spans lost in a tight loop, and how fast
the CLI lists and shows sessions in stores of 1k, 100k and 1M sessions.

1. Write throughput. 2,000 sessions of 5 spans are made by sessionkit into memory; their 10,000
   spans are then written in batches of 512 (the pipeline's batch) by the store's writer, and,
   in the same run, by a reference writer of the former JSON-lines store (OTLP JSON, one
   request a line: what the local store did before). Spans per second of each, their ratio,
   and bytes on disk per session.
2. A tight loop of sessions in a fresh process with DEFAULT settings (``sessionkit.init()`` and
   the local store): spans ended, exported, dropped, failed.
3. Stores of 1k, 100k and 1M sessions of 5 spans: the 1k store is written by sessionkit; the
   bigger ones repeat its rows with new ids in SQL (the same rows, indexes and sizes as written
   ones, made in a minute instead of an hour). For each: ``sessionkit sessions --limit 50`` and
   ``sessionkit show ID`` (a fresh process each, the median of 5 runs) in wall time and peak
   RSS, against ``python -c "import sessionkit"`` in the same run.

    python benchmarks/store.py [--quick] [--sizes 1000,100000,1000000] [--loop 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SESSION = """
import sessionkit
client = sessionkit.init(file_dir={store!r}, **{options!r})
tracer = client.tracer
for i in range({n}):
    with client.session("bench", user_id=f"user-{{i % 50}}", thread_id=f"thread-{{i}}"):
        with tracer.start_as_current_span("agent", attributes={{"gen_ai.operation.name": "invoke_agent"}}):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes={{
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30}}):
                pass
            with tracer.start_as_current_span("execute_tool search", attributes={{
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}}):
                pass
            with tracer.start_as_current_span("history.load"):
                pass
client.shutdown(timeout=120)
s = client.stats()
print("STATS", s.spans_ended, s.spans_exported, s.dropped_spans, s.spans_failed_export, flush=True)
"""


def run(code: str, timeout: float = 3600) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return proc.stdout


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


# -- 1. write throughput ------------------------------------------------------------------------------
def jsonl_writer(path: Path) -> Any:
    """The former local store's write, for reference: a batch as one OTLP JSON line."""
    from sessionkit._store.codec import spans_to_otlp_json  # the encoding it used, moved here

    handle = open(path, "a", encoding="utf-8")

    def write(spans: Any) -> None:
        handle.write(json.dumps(spans_to_otlp_json(spans), separators=(",", ":")) + "\n")
        handle.flush()

    return write, handle


def throughput(sessions: int, rounds: int) -> None:
    import sessionkit
    from sessionkit._store.writer import StoreWriter

    client = sessionkit.Client(exporter="memory", handle_sigterm=False)
    tracer = client.tracer
    for i in range(sessions):
        with client.session("bench", user_id=f"user-{i % 50}", thread_id=f"thread-{i}"):
            with tracer.start_as_current_span("agent", attributes={"gen_ai.operation.name": "invoke_agent"}):
                with tracer.start_as_current_span(
                    "chat gpt-4o-mini",
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 120,
                        "gen_ai.usage.output_tokens": 30,
                    },
                ):
                    pass
                with tracer.start_as_current_span(
                    "execute_tool search",
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
                ):
                    pass
                with tracer.start_as_current_span("history.load"):
                    pass
    client.flush(30)
    spans = list(client.exporter.get_finished_spans())  # type: ignore[union-attr]
    client.shutdown(timeout=5)
    batches = [spans[k : k + 512] for k in range(0, len(spans), 512)]
    store_rates, jsonl_rates = [], []
    store_bytes = jsonl_bytes = 0
    for _ in range(rounds):  # interleaved: the two writers take turns on the same spans
        with tempfile.TemporaryDirectory() as tmp:
            writer = StoreWriter(tmp, max_bytes=None, max_age=None)
            start = time.perf_counter()
            for batch in batches:
                writer.write_spans(batch)
            store_rates.append(len(spans) / (time.perf_counter() - start))
            writer.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            writer.close()
            store_bytes = folder_bytes(Path(tmp))
        with tempfile.TemporaryDirectory() as tmp:
            write, handle = jsonl_writer(Path(tmp) / "spans.jsonl")
            start = time.perf_counter()
            for batch in batches:
                write(batch)
            jsonl_rates.append(len(spans) / (time.perf_counter() - start))
            handle.close()
            jsonl_bytes = folder_bytes(Path(tmp))
    s, j = statistics.median(store_rates), statistics.median(jsonl_rates)
    print(f"1. write throughput, {len(spans):,} spans of {sessions:,} sessions, median of {rounds} interleaved rounds")
    print(f"   SQLite store        {s:>9,.0f} spans/s   {store_bytes / sessions:>6,.0f} bytes/session")
    print(f"   JSON-lines (before) {j:>9,.0f} spans/s   {jsonl_bytes / sessions:>6,.0f} bytes/session")
    print(f"   ratio store/JSON-lines: {s / j:.2f}x throughput, {store_bytes / jsonl_bytes:.2f}x disk")


# -- 2. tight loop ------------------------------------------------------------------------------------
def _spin() -> None:
    while True:
        pass


def tight_loop(n: int, busy: int = 0) -> None:
    """``busy``: that many busy-loop processes hold the cores meanwhile (other work on the machine)."""
    import multiprocessing

    loaders = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
    for p in loaders:
        p.start()
    with tempfile.TemporaryDirectory() as store:
        start = time.perf_counter()
        try:
            out = run(SESSION.format(store=store, options={}, n=n))
        finally:
            for p in loaders:
                p.terminate()
        seconds = time.perf_counter() - start
        ended, exported, dropped, failed = (int(x) for x in out.split("STATS")[1].split())
        size = folder_bytes(Path(store))
        with sqlite3.connect(Path(store) / "sessionkit.db") as db:
            stored = db.execute("SELECT count(*) FROM spans").fetchone()[0]
            sessions = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    load = f", {busy} busy-loop processes on the cores" if busy else ""
    print(f"2. tight loop of {n:,} sessions (5 spans each), default settings, a fresh process{load}: {seconds:.1f} s")
    print(f"   spans ended {ended:,}  exported {exported:,}  dropped {dropped:,}  failed {failed:,}")
    print(f"   in the store: {stored:,} spans, {sessions:,} sessions; {size / n:,.0f} bytes/session on disk")


# -- 3. CLI at size -----------------------------------------------------------------------------------
def grow(db_path: Path, seed_sessions: int, have: int, target: int) -> None:
    """Copy the seed's sessions, turns and spans with new ids until the store holds ``target``."""
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    for k in range(have // seed_sessions, target // seed_sessions):
        suffix = f"{k:08x}"
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO spans(trace_id, span_id, parent_span_id, session_id, turn_index, name, kind, start_ns, end_ns, "
            "status_code, status_message, attributes, events, links, trace_state, flags, dropped, resource_id, scope_id) "
            "SELECT substr(trace_id, 1, 24) || ?1, span_id, parent_span_id, session_id || '-' || ?1, turn_index, name, "
            "kind, start_ns - ?2, end_ns - ?2, status_code, status_message, "
            "replace(attributes, session_id, session_id || '-' || ?1), events, links, trace_state, flags, dropped, "
            "resource_id, scope_id FROM spans WHERE id <= ?3",
            (suffix, k * 1_000_000_000, SEED_SPANS),
        )
        db.execute(
            "INSERT INTO sessions SELECT session_id || '-' || ?1, name, thread_id, user_id, tags, service, state, "
            "end_reason, previous_session_id, substr(trace_id, 1, 24) || ?1, start_ns - ?2, last_ns - ?2, "
            "ended_ns - ?2, span_count, llm_calls, input_tokens, output_tokens, errors, cost_usd, cost_incomplete, "
            "llm_calls_without_usage FROM sessions WHERE session_id NOT LIKE '%-%-%-%-%-%'",
            (suffix, k * 1_000_000_000),
        )
        db.execute(
            "INSERT INTO turns SELECT session_id || '-' || ?1, substr(trace_id, 1, 24) || ?1, turn_index, "
            "start_ns - ?2, end_ns - ?2, implicit, span_count, llm_calls, input_tokens, output_tokens, errors, "
            "cost_usd, cost_incomplete, llm_calls_without_usage, first_chunk_ns FROM turns "
            "WHERE session_id NOT LIKE '%-%-%-%-%-%'",
            (suffix, k * 1_000_000_000),
        )
        db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


SEED_SPANS = 0


# The child reports its own peak RSS (VmHWM, which starts anew at exec; a wait4 figure would
# include this big benchmark process, copied by the fork before the exec).
PEAK = (
    "import atexit, sys\n"
    "def _peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'): sys.stderr.write('PEAK ' + line.split()[1] + '\\n')\n"
    "atexit.register(_peak)\n"
)


def timed(code: str, repeats: int) -> tuple[float, float]:
    """Median wall seconds and peak RSS (MB) of a fresh ``python -c code``."""
    walls, peaks = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PEAK + code], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        if proc.returncode != 0 or "PEAK" not in proc.stderr:
            raise SystemExit(f"{code} failed: {proc.stderr[-2000:]}")
        peaks.append(int(proc.stderr.rsplit("PEAK", 1)[1].split()[0]) / 1024)
    return statistics.median(walls), max(peaks)


def cli(*argv: str) -> str:
    return f"import sys\nfrom sessionkit._cli import main\nsys.exit(main({list(argv)!r}))\n"


def at_size(sizes: list[int], repeats: int) -> None:
    global SEED_SPANS
    seed = min(1000, min(sizes))
    print(f"3. the CLI at size (a fresh process each, median wall of {repeats}, peak RSS)")
    base = "import sessionkit\n"
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        run(SESSION.format(store=str(store), options={}, n=seed))
        db_path = store / "sessionkit.db"
        with sqlite3.connect(db_path) as db:
            SEED_SPANS = db.execute("SELECT max(id) FROM spans").fetchone()[0]
        have = seed
        for size in sorted(sizes):
            if size > have:
                start = time.perf_counter()
                grow(db_path, seed, have, size)
                have = size
                made = time.perf_counter() - start
            else:
                made = 0.0
            with sqlite3.connect(db_path) as db:
                count = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
                some = db.execute(  # one in the middle of the store
                    "SELECT session_id FROM sessions ORDER BY start_ns LIMIT 1 OFFSET ?", (count // 2,)
                ).fetchone()[0]
                spans = db.execute("SELECT count(*) FROM spans").fetchone()[0]
            disk = folder_bytes(store)
            imp = timed(base, repeats)
            listing = timed(cli("sessions", "--limit", "50", "--dir", str(store)), repeats)
            shown = timed(cli("show", some, "--dir", str(store)), repeats)
            filtered = timed(cli("sessions", "--user", "user-7", "--limit", "50", "--dir", str(store)), repeats)
            print(
                f"   {count:>9,} sessions ({spans:,} spans, {disk / count:,.0f} bytes/session, grown in {made:.0f} s)"
            )
            print(f"      import sessionkit        {imp[0] * 1000:6.0f} ms  {imp[1]:6.1f} MB")
            for label, (wall, rss) in (
                ("sessions --limit 50", listing),
                ("sessions --user X", filtered),
                ("show ID", shown),
            ):
                print(
                    f"      {label:<24} {wall * 1000:6.0f} ms  {rss:6.1f} MB   "
                    f"({wall / imp[0]:.2f}x the import's time, {rss / imp[1]:.2f}x its RSS)"
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--loop", type=int, default=100_000)
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes during the tight loop")
    parser.add_argument("--only", choices=["throughput", "loop", "cli"], help="run one section")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    if args.quick:
        sizes, args.loop = [1000, 10_000], 5_000
    if args.only in (None, "throughput"):
        throughput(400 if args.quick else 2000, 3 if args.quick else 7)
    if args.only in (None, "loop"):
        tight_loop(args.loop, args.busy)
    if args.only in (None, "cli"):
        at_size(sizes, 3 if args.quick else 5)
    shutil.rmtree(Path(tempfile.gettempdir()) / "sessionkit-bench", ignore_errors=True)


if __name__ == "__main__":
    main()

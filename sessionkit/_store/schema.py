"""The store's database: one SQLite file in WAL mode, its tables and indexes, and opening it.

WAL lets any number of processes read while one writes, and writers (a web server's workers)
take turns on a short write lock; ``busy_timeout`` makes a writer wait for its turn instead of
failing at once. Every write is one short transaction per exported batch.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Union

from .._errors import SessionkitError

DB_NAME = "sessionkit.db"
SCHEMA_VERSION = 2  # 2: the findings table (a store of schema 1 gains it when next opened)
BUSY_TIMEOUT_MS = 5000  # how long a writer waits for another process's write lock

_TABLES = """
CREATE TABLE IF NOT EXISTS resources(
    id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, attributes TEXT, schema_url TEXT);
CREATE TABLE IF NOT EXISTS scopes(
    id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, name TEXT, version TEXT, schema_url TEXT,
    attributes TEXT);
CREATE TABLE IF NOT EXISTS spans(
    id INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT,
    session_id TEXT, turn_index INTEGER,
    name TEXT NOT NULL, kind INTEGER NOT NULL DEFAULT 0,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0, status_message TEXT,
    attributes TEXT, events TEXT, links TEXT,
    trace_state TEXT, flags INTEGER NOT NULL DEFAULT 0, dropped TEXT,
    resource_id INTEGER NOT NULL, scope_id INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS spans_ids ON spans(trace_id, span_id);
CREATE INDEX IF NOT EXISTS spans_session ON spans(session_id) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS spans_loose ON spans(start_ns) WHERE session_id IS NULL;
CREATE TABLE IF NOT EXISTS sessions(
    session_id TEXT PRIMARY KEY,
    name TEXT, thread_id TEXT, user_id TEXT, tags TEXT, service TEXT,
    state TEXT NOT NULL DEFAULT 'unfinished', end_reason TEXT, previous_session_id TEXT,
    trace_id TEXT,
    start_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL, ended_ns INTEGER,
    span_count INTEGER NOT NULL DEFAULT 0, llm_calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0, cost_usd REAL, cost_incomplete INTEGER NOT NULL DEFAULT 0,
    llm_calls_without_usage INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS sessions_start ON sessions(start_ns);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id, start_ns) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_thread ON sessions(thread_id, start_ns) WHERE thread_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_state ON sessions(state, start_ns);
CREATE TABLE IF NOT EXISTS turns(
    session_id TEXT NOT NULL, trace_id TEXT NOT NULL, turn_index INTEGER NOT NULL,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, implicit INTEGER NOT NULL DEFAULT 1,
    span_count INTEGER NOT NULL DEFAULT 0, llm_calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0, cost_usd REAL, cost_incomplete INTEGER NOT NULL DEFAULT 0,
    llm_calls_without_usage INTEGER NOT NULL DEFAULT 0, first_chunk_ns INTEGER,
    PRIMARY KEY(session_id, trace_id, turn_index)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logged_events(
    id INTEGER PRIMARY KEY, session_id TEXT, name TEXT NOT NULL, time_ns INTEGER NOT NULL,
    severity INTEGER, attributes TEXT, trace_id TEXT, span_id TEXT, resource_id INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS logged_events_session ON logged_events(session_id, name, time_ns);
CREATE VIEW IF NOT EXISTS events(session_id, name, time_ns, attributes) AS
    SELECT session_id, 'session.start', start_ns, json_object(
        'session.id', session_id, 'sessionkit.session.name', name, 'user.id', user_id,
        'gen_ai.conversation.id', thread_id, 'session.previous_id', previous_session_id)
    FROM sessions
    UNION ALL
    SELECT session_id, 'session.end', ended_ns, json_object(
        'session.id', session_id, 'sessionkit.session.name', name, 'user.id', user_id,
        'gen_ai.conversation.id', thread_id, 'sessionkit.session.end_state', state,
        'sessionkit.session.end_reason', end_reason)
    FROM sessions WHERE ended_ns IS NOT NULL
    UNION ALL
    SELECT session_id, name, time_ns, attributes FROM logged_events;
CREATE TABLE IF NOT EXISTS counts(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS findings(
    session_id TEXT NOT NULL, turn_index INTEGER, kind TEXT NOT NULL, severity TEXT NOT NULL,
    message TEXT NOT NULL, figures TEXT, evidence TEXT, time_ns INTEGER NOT NULL,
    PRIMARY KEY(session_id, kind, message)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS findings_kind ON findings(kind, session_id);
INSERT OR IGNORE INTO counts VALUES ('sessions', 0);
CREATE TRIGGER IF NOT EXISTS sessions_added AFTER INSERT ON sessions
    BEGIN UPDATE counts SET value = value + 1 WHERE name = 'sessions'; END;
CREATE TRIGGER IF NOT EXISTS sessions_removed AFTER DELETE ON sessions
    BEGIN UPDATE counts SET value = value - 1 WHERE name = 'sessions'; END;
CREATE TABLE IF NOT EXISTS imported_files(name TEXT PRIMARY KEY, spans INTEGER, imported_ns INTEGER);
"""


class StoreError(SessionkitError):
    """The local store's database cannot be used: not a database, damaged, not writable, or
    written by a newer sessionkit."""


class ExportRefused(StoreError):
    """``Store.export``: the collector did not take the spans (the store itself is fine)."""


WAL_LIMIT_BYTES = 16 * 1024 * 1024
"""The size the write-ahead log is cut back to after a checkpoint."""
QUICK_CHECK_BYTES = 32 * 1024 * 1024
"""A store up to this size has every page checked at ``init`` (SQLite's ``quick_check``: about
a tenth of a second per 32 MB here); a larger one has both ends of every table read."""
_TABLE_KEYS = (
    ("spans", "id"),
    ("sessions", "session_id"),
    ("turns", "session_id, trace_id, turn_index"),
    ("logged_events", "id"),
)
"""Each table with its key: a large store has both ends of each read at ``init``."""


def db_path(folder: Union[str, os.PathLike[str]]) -> Path:
    """The database file of the store in ``folder`` (made absolute: a relative folder means the
    one under the working directory of the moment it is named)."""
    return Path(folder).expanduser().absolute() / DB_NAME


def connect(path: Path, *, readonly: bool = False, timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection to the store at ``path`` (made, with its tables, unless ``readonly``). A
    reader of a store that its first writer is still making waits for the tables (at most the
    busy timeout); a store of a newer schema is a ``StoreError`` for readers and writers alike."""
    path = path.absolute()
    if readonly:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout_ms / 1000, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=timeout_ms / 1000, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout={int(timeout_ms)}")
        if not readonly:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, never corrupt
            # The WAL grows past its checkpoint size only while a reader holds an old snapshot;
            # once the reader is done, the next checkpoint truncates it back to this.
            conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                conn.executescript(f"BEGIN IMMEDIATE;{_TABLES}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path} was written by a newer sessionkit (schema {version}, this one reads {SCHEMA_VERSION}); "
                    "upgrade sessionkit, or point file_dir at another folder"
                )
        else:
            deadline = time.monotonic() + timeout_ms / 1000
            while (version := conn.execute("PRAGMA user_version").fetchone()[0]) == 0 and time.monotonic() < deadline:
                time.sleep(0.02)  # the first writer is making the tables (one transaction)
            if version == 0:
                raise StoreError(f"{path} is not a sessionkit store (it has no tables)")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path} was written by a newer sessionkit (schema {version}, this one reads {SCHEMA_VERSION}); "
                    "upgrade sessionkit to read it"
                )
            if version < SCHEMA_VERSION:
                _older_for_reading(conn, path, timeout_ms)
    except BaseException:
        conn.close()
        raise
    return conn


_FINDINGS_TABLE = _TABLES[_TABLES.index("CREATE TABLE IF NOT EXISTS findings") :].split(";")[0]


def _older_for_reading(conn: sqlite3.Connection, path: Path, timeout_ms: int) -> None:
    """A store of an older schema, opened to read: brought up to date by a writer's connection
    when the file is writable; else the tables it lacks are empty ones of this connection's own
    (``TEMP``), so that reading it works."""
    try:
        connect(path, timeout_ms=timeout_ms).close()
    except (sqlite3.Error, OSError, StoreError):
        conn.execute(_FINDINGS_TABLE.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE IF NOT EXISTS"))


def check_usable(folder: Union[str, os.PathLike[str]]) -> None:
    """Raise ``StoreError`` naming the problem and the fix when the store cannot be written."""
    path = db_path(folder)
    try:
        conn = connect(path, timeout_ms=1000)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return  # another process is writing right now: usable, just busy
        raise StoreError(f"the local store {path} cannot be opened: {exc}") from exc
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StoreError(f"the local store {path} is not usable: {exc}") from exc
    try:
        if path.stat().st_size <= QUICK_CHECK_BYTES:
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(problem)
        else:  # a large store: both ends of every table by its key, not every page
            for table, key in _TABLE_KEYS:
                for order in ("", " DESC"):
                    conn.execute(f"SELECT * FROM {table} ORDER BY {key}{order} LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"the local store {path} is damaged: {exc}; move the file away (sessionkit starts a new one) "
            "or point file_dir at another folder"
        ) from exc
    finally:
        conn.close()

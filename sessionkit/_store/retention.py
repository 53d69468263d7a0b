"""Keeping the store within its size and age limits, a whole session at a time.

The writer calls ``written`` after each batch. The size is checked when about a twentieth of
the limit has been written since the last check (and at least once a minute); the age about
every ten minutes. The oldest sessions (by when they started) go with all their spans, turns
and events in one transaction each pass (never a live one: unfinished, with a span in the last
hour), until the store holds at most 90% of its limit; spans
that belong to no session go by age, and before any session when the store is too large. SQLite
reuses the freed pages, so the file stops growing at the limit instead of shrinking.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from typing import Optional

logger = logging.getLogger("sessionkit")

_BYTES_PER_SPAN = 700  # a rough guess of what a span adds, to decide when to measure
_SIZE_EVERY = 60.0
_AGE_EVERY = 600.0
_CHUNK = 500  # sessions removed per transaction
LIVE_WINDOW = 3600.0
"""A session with no end whose last span is younger than this (seconds) is live: the size limit
never removes it (a long live session is the oldest in the store, not the least wanted), unless
live sessions alone hold ``LIVE_GRACE`` times the limit."""
LIVE_GRACE = 2.0


def used_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def delete_sessions(conn: sqlite3.Connection, ids: list[str]) -> None:
    """Remove sessions whole: their spans, turns, events, findings and rows (in the caller's transaction)."""
    marks = ",".join("?" * len(ids))
    for table in ("spans", "turns", "logged_events", "findings", "sessions"):
        conn.execute(f"DELETE FROM {table} WHERE session_id IN ({marks})", ids)


class Retention:
    def __init__(self, max_bytes: Optional[int], max_age: Optional[float]) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age  # seconds
        self._spans_since = 0
        self._size_checked = 0.0
        self._age_checked = 0.0
        self.sessions_removed = 0
        self._warned_live = False

    def written(self, conn: sqlite3.Connection, spans: int) -> None:
        self._spans_since += spans
        now = time.monotonic()
        try:
            if self.max_age is not None and now - self._age_checked >= _AGE_EVERY:
                self._age_checked = now
                self._by_age(conn)
            if self.max_bytes is not None and (
                self._spans_since * _BYTES_PER_SPAN >= self.max_bytes / 20 or now - self._size_checked >= _SIZE_EVERY
            ):
                self._spans_since = 0
                self._size_checked = now
                # Move what the WAL holds into the database (never waits for a reader), so the
                # WAL is cut back to its limit as soon as no reader holds an old snapshot.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self._by_size(conn)
        except sqlite3.Error as exc:  # a busy store: the next check tries again
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            logger.debug("sessionkit: store retention deferred: %s", exc)

    def _by_age(self, conn: sqlite3.Connection) -> None:
        assert self.max_age is not None
        cutoff = time.time_ns() - int(self.max_age * 1e9)
        while True:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT session_id FROM sessions WHERE start_ns < ? AND last_ns < ? ORDER BY start_ns LIMIT ?",
                    (cutoff, cutoff, _CHUNK),
                )
            ]
            conn.execute("BEGIN IMMEDIATE")
            if ids:
                delete_sessions(conn, ids)
            conn.execute("DELETE FROM spans WHERE session_id IS NULL AND start_ns < ?", (cutoff,))
            conn.execute("DELETE FROM logged_events WHERE session_id IS NULL AND time_ns < ?", (cutoff,))
            conn.execute("COMMIT")
            self._removed(len(ids), "older than the store's age limit")
            if len(ids) < _CHUNK:
                return

    def _by_size(self, conn: sqlite3.Connection) -> None:
        assert self.max_bytes is not None
        if used_bytes(conn) <= self.max_bytes:
            return
        target = int(self.max_bytes * 0.9)
        while (used := used_bytes(conn)) > target:
            oldest = conn.execute("SELECT min(start_ns) FROM sessions").fetchone()[0]
            conn.execute("BEGIN IMMEDIATE")
            loose = conn.execute(
                "DELETE FROM spans WHERE id IN (SELECT id FROM spans WHERE session_id IS NULL AND start_ns < ? "
                "ORDER BY start_ns LIMIT 5000)",
                (oldest if oldest is not None else time.time_ns(),),
            ).rowcount
            ids: list[str] = []
            if not loose:
                count = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
                chunk = min(_CHUNK, max(1, math.ceil(count * (used - target) / used)))
                # Live sessions are kept, unless they alone hold twice the limit (a runaway
                # session must not fill the disk): then the oldest go too.
                live_after = (
                    time.time_ns() if used > LIVE_GRACE * self.max_bytes else time.time_ns() - int(LIVE_WINDOW * 1e9)
                )
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT session_id FROM sessions WHERE state != 'unfinished' OR last_ns < ? "
                        "ORDER BY start_ns LIMIT ?",
                        (live_after, chunk),
                    )
                ]
                if ids:
                    delete_sessions(conn, ids)
            conn.execute("COMMIT")
            self._removed(len(ids), "to keep the store within its size limit")
            if not loose and not ids:
                if not self._warned_live:
                    self._warned_live = True
                    logger.warning(
                        "sessionkit: the local store is over its size limit (store_max_mb) and holds only live "
                        "sessions; they are kept up to twice the limit. Raise store_max_mb or end the sessions."
                    )
                return

    def _removed(self, count: int, why: str) -> None:
        if count:
            self.sessions_removed += count
            logger.info("sessionkit: removed the %d oldest sessions from the local store %s", count, why)

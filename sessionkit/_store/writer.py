"""Writing the store: spans, the sessions and turns they add up to, and the session events.

One transaction per exported batch: the spans go in, and each session and turn the batch
touches is brought up to date in the same transaction (an upsert that adds the batch's counts),
so a reader never sees a session whose figures disagree with its spans. Each process has its
own connection (a forked child opens a new one); SQLite's write lock, waited for at most
``busy_timeout``, lets several processes write one store.

A write that fails (the disk is full, another process holds the lock too long, the file was
damaged) is a fault of the exporter: the batch is reported failed (the pipeline counts its
spans), the reason is logged once per kind, and the agent is never held beyond the pipeline's
bounded wait.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import semconv
from .._context import at_fork_in_child
from .._payloads.llm import counts_as_llm_call
from .codec import SPAN_COLUMNS, dump_attributes, resource_row, scope_row, session_of, span_row
from .retention import Retention
from .schema import connect, db_path

logger = logging.getLogger("sessionkit")

STATUS_ERROR = 2
_INSERT_FINDING = (
    "INSERT OR IGNORE INTO findings(session_id,turn_index,kind,severity,message,figures,evidence,time_ns) "
    "VALUES (?,?,?,?,?,?,?,?)"
)
_INSERT_SPAN = f"INSERT OR IGNORE INTO spans({','.join(SPAN_COLUMNS)}) VALUES ({','.join('?' * len(SPAN_COLUMNS))})"
_NUMBERS = ("span_count", "llm_calls", "input_tokens", "output_tokens", "errors", "llm_calls_without_usage")


def _later(column: str) -> str:
    """Take the incoming value when it comes from a newer session record."""
    return (
        f"{column}=CASE WHEN excluded.ended_ns IS NOT NULL AND excluded.ended_ns >= coalesce(sessions.ended_ns, 0) "
        f"THEN excluded.{column} ELSE sessions.{column} END"
    )


def _summed(table: str) -> str:
    added = ",".join(f"{n}={table}.{n}+excluded.{n}" for n in _NUMBERS)
    return (
        f"{added},cost_usd=CASE WHEN {table}.cost_usd IS NULL THEN excluded.cost_usd "
        f"WHEN excluded.cost_usd IS NULL THEN {table}.cost_usd ELSE {table}.cost_usd+excluded.cost_usd END,"
        f"cost_incomplete=max({table}.cost_incomplete, excluded.cost_incomplete)"
    )


_SESSION_COLUMNS = (
    "session_id",
    "name",
    "thread_id",
    "user_id",
    "tags",
    "service",
    "state",
    "end_reason",
    "previous_session_id",
    "trace_id",
    "start_ns",
    "last_ns",
    "ended_ns",
    *_NUMBERS,
    "cost_usd",
    "cost_incomplete",
)
_UPSERT_SESSION = (
    f"INSERT INTO sessions({','.join(_SESSION_COLUMNS)}) VALUES ({','.join('?' * len(_SESSION_COLUMNS))}) "
    "ON CONFLICT(session_id) DO UPDATE SET "
    + ",".join(f"{c}=coalesce(sessions.{c}, excluded.{c})" for c in ("name", "thread_id", "user_id", "tags", "service"))
    + ",previous_session_id=coalesce(excluded.previous_session_id, sessions.previous_session_id),"
    + ",".join(_later(c) for c in ("state", "end_reason", "trace_id"))
    + ",start_ns=min(sessions.start_ns, excluded.start_ns),last_ns=max(sessions.last_ns, excluded.last_ns),"
    "ended_ns=CASE WHEN excluded.ended_ns IS NULL THEN sessions.ended_ns "
    "ELSE max(coalesce(sessions.ended_ns, 0), excluded.ended_ns) END," + _summed("sessions")
)
_TURN_COLUMNS = (
    "session_id",
    "trace_id",
    "turn_index",
    "start_ns",
    "end_ns",
    "implicit",
    *_NUMBERS,
    "cost_usd",
    "cost_incomplete",
    "first_chunk_ns",
)
_UPSERT_TURN = (
    f"INSERT INTO turns({','.join(_TURN_COLUMNS)}) VALUES ({','.join('?' * len(_TURN_COLUMNS))}) "
    "ON CONFLICT(session_id, trace_id, turn_index) DO UPDATE SET "
    "start_ns=min(turns.start_ns, excluded.start_ns),end_ns=max(turns.end_ns, excluded.end_ns),"
    "implicit=min(turns.implicit, excluded.implicit),"
    "first_chunk_ns=CASE WHEN turns.first_chunk_ns IS NULL THEN excluded.first_chunk_ns "
    "WHEN excluded.first_chunk_ns IS NULL THEN turns.first_chunk_ns "
    "ELSE min(turns.first_chunk_ns, excluded.first_chunk_ns) END," + _summed("turns")
)


class _Tally:
    """A batch's counts for one session or one turn."""

    __slots__ = ("start", "end", "numbers", "cost", "incomplete", "first_chunk")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.numbers = [0] * len(_NUMBERS)  # in _NUMBERS' order
        self.cost: Optional[float] = None
        self.incomplete = 0
        self.first_chunk: Optional[int] = None

    def add(self, span: ReadableSpan, attributes: Any) -> None:
        self.start = min(self.start, span.start_time or 0)
        self.end = max(self.end, span.end_time or 0)
        if semconv.SPAN_TYPE in attributes:
            return  # the session's record or marker, a turn block's root: not the agent's work
        numbers = self.numbers
        numbers[0] += 1
        if span.status.status_code.value == STATUS_ERROR:
            numbers[4] += 1
        if not counts_as_llm_call(attributes):
            return
        numbers[1] += 1
        tokens_in = attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)
        tokens_out = attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
        if tokens_in is None and tokens_out is None:
            numbers[5] += 1
        numbers[2] += tokens_in if isinstance(tokens_in, int) else 0
        numbers[3] += tokens_out if isinstance(tokens_out, int) else 0
        cost = attributes.get(semconv.LLM_COST_TOTAL)
        if isinstance(cost, (int, float)):
            self.cost = (self.cost or 0.0) + float(cost)
        elif tokens_in is not None:
            self.incomplete = 1
        else:
            self.cost = self.cost or 0.0
        ttft = attributes.get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if isinstance(ttft, (int, float)) and span.start_time:
            first = span.start_time + int(ttft * 1e9)
            self.first_chunk = first if self.first_chunk is None else min(self.first_chunk, first)


class _SessionTally(_Tally):
    __slots__ = ("fields", "record")

    def __init__(self, start: int, end: int) -> None:
        super().__init__(start, end)
        self.fields: dict[str, Any] = {}
        self.record: Optional[ReadableSpan] = None


def _tag_json(value: Any) -> Optional[str]:
    if isinstance(value, (list, tuple)) and value:
        return json.dumps([str(v) for v in value])
    return None


class StoreWriter:
    """One process's connection to a store, and the batch writes (used by both exporters)."""

    def __init__(self, folder: Union[str, os.PathLike[str]], *, max_bytes: Optional[int], max_age: Optional[float]):
        self.path = db_path(folder)
        self.lock = threading.Lock()
        self._conn: Optional[sqlite3.Connection] = None
        self._pid = -1
        self._resources: dict[str, int] = {}
        self._scopes: dict[str, int] = {}
        self.retention = Retention(max_bytes, max_age)
        self.errors = 0
        self._logged: set[str] = set()
        at_fork_in_child(self._after_fork)

    def _after_fork(self) -> None:
        self.lock = threading.Lock()
        self._conn = None  # the parent's connection stays the parent's: a child opens its own
        self._pid = -1

    def connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn = connect(self.path)
            self._pid = os.getpid()
            self._resources.clear()
            self._scopes.clear()
        return self._conn

    def fault(self, what: str, exc: BaseException) -> None:
        """A failed write: counted, and logged once per kind of failure and process."""
        self.errors += 1
        kind = f"{type(exc).__name__}:{str(exc).split(':')[0]}"
        if kind not in self._logged:
            self._logged.add(kind)
            logger.error(
                "sessionkit: could not write %s to the local store %s: %s (counted in "
                "client.stats(); further failures of this kind are not logged)",
                what,
                self.path,
                exc,
            )
        else:
            logger.debug("sessionkit: store write failed again: %s", exc)
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            self.close()  # a damaged file: reopen (and fail clearly) on the next batch

    def _id(self, conn: sqlite3.Connection, table: str, cache: dict[str, int], row: tuple[Any, ...]) -> int:
        key = row[0]
        found = cache.get(key)
        if found is None:
            columns = (
                "digest,attributes,schema_url" if table == "resources" else "digest,name,version,schema_url,attributes"
            )
            conn.execute(f"INSERT OR IGNORE INTO {table}({columns}) VALUES ({','.join('?' * len(row))})", row)
            found = int(conn.execute(f"SELECT id FROM {table} WHERE digest=?", (key,)).fetchone()[0])
            cache[key] = found
        return found

    def resource_id(self, conn: sqlite3.Connection, resource: Any) -> int:
        return self._id(conn, "resources", self._resources, resource_row(resource))

    def _claimed(self, conn: sqlite3.Connection, claim: Optional[str], count: int) -> bool:
        """Inside a write: take ``claim`` (an imported file's name) unless another process had it."""
        if claim is None:
            return True
        cursor = conn.execute(
            "INSERT OR IGNORE INTO imported_files(name, spans, imported_ns) VALUES (?,?,?)",
            (claim, count, time.time_ns()),
        )
        return cursor.rowcount == 1

    def write_spans(self, spans: Sequence[ReadableSpan], claim: Optional[str] = None) -> bool:
        """Write a batch in one transaction. False only when ``claim`` was taken already.

        The rows and counts are made before the write lock is taken, so the lock is held only
        for the inserts: other processes writing the same store wait less."""
        with self.lock:
            conn = self.connection()
            rows = []
            sessions: dict[str, _SessionTally] = {}
            turns: dict[tuple[str, str, int], _Tally] = {}
            explicit: set[tuple[str, str, int]] = set()
            findings: list[tuple[Any, ...]] = []
            resource_ids: dict[int, int] = {}
            scope_ids: dict[int, Optional[int]] = {}
            for span in spans:
                resource = span.resource
                rid = resource_ids.get(id(resource))
                if rid is None:
                    rid = resource_ids[id(resource)] = self.resource_id(conn, resource)
                scope = span.instrumentation_scope
                if id(scope) in scope_ids:
                    sid = scope_ids[id(scope)]
                else:
                    srow = scope_row(scope)
                    sid = scope_ids[id(scope)] = None if srow is None else self._id(conn, "scopes", self._scopes, srow)
                raw = span.attributes
                attributes = dict(raw) if raw else {}
                row = span_row(span, attributes, rid, sid)
                rows.append(row)
                session_id = row[3]
                if session_id is None:
                    continue
                start, end = span.start_time or 0, span.end_time or 0
                tally = sessions.get(session_id)
                if tally is None:
                    tally = sessions[session_id] = _SessionTally(start, end)
                tally.add(span, attributes)
                kind = attributes.get(semconv.SPAN_TYPE)
                _note_fields(tally, span, attributes, kind)
                if kind is not None and span.events:  # a record's or a turn's findings (the same once)
                    findings += _finding_rows(session_id, span.events)
                if row[4] is not None:
                    key = (session_id, row[0], row[4])
                    turn = turns.get(key)
                    if turn is None:
                        turn = turns[key] = _Tally(start, end)
                    turn.add(span, attributes)
                    if kind == semconv.SPAN_TYPE_TURN:
                        explicit.add(key)  # a session.turn() block's root
            session_rows = [_session_values(k, t) for k, t in sessions.items()]
            turn_rows = [
                (*key, t.start, t.end, 0 if key in explicit else 1, *t.numbers, t.cost, t.incomplete, t.first_chunk)
                for key, t in turns.items()
            ]
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._claimed(conn, claim, len(spans)):
                    conn.execute("ROLLBACK")
                    return False
                conn.executemany(_INSERT_SPAN, rows)
                conn.executemany(_UPSERT_SESSION, session_rows)
                conn.executemany(_UPSERT_TURN, turn_rows)
                if findings:
                    conn.executemany(_INSERT_FINDING, findings)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            self.retention.written(conn, len(rows))
            return True

    def write_events(self, batch: Sequence[Any], claim: Optional[str] = None) -> bool:
        with self.lock:
            conn = self.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._claimed(conn, claim, len(batch)):
                    conn.execute("ROLLBACK")
                    return False
                rows = []
                for item in batch:
                    record = getattr(item, "log_record", item)
                    resource = getattr(item, "resource", None) or getattr(record, "resource", None)
                    attributes = dict(record.attributes or {})
                    severity = record.severity_number.value if record.severity_number is not None else None
                    rows.append(
                        (
                            session_of(attributes),
                            getattr(record, "event_name", None) or str(attributes.get("event.name", "")),
                            record.timestamp or record.observed_timestamp or time.time_ns(),
                            severity,
                            dump_attributes(attributes),
                            f"{record.trace_id:032x}" if record.trace_id else None,
                            f"{record.span_id:016x}" if record.span_id else None,
                            None if resource is None else self.resource_id(conn, resource),
                        )
                    )
                conn.executemany(_INSERT_EVENT, rows)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return True

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            try:
                conn.close()
            except sqlite3.Error:
                pass


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


_INSERT_EVENT = (
    "INSERT OR IGNORE INTO logged_events(session_id,name,time_ns,severity,attributes,trace_id,span_id,resource_id) "
    "VALUES (?,?,?,?,?,?,?,?)"
)


def _finding_rows(session_id: str, events: Sequence[Any]) -> list[tuple[Any, ...]]:
    rows = []
    for event in events:
        if event.name != semconv.EVENT_FINDING:
            continue
        attrs = event.attributes or {}
        kind, message = attrs.get(semconv.FINDING_KIND), attrs.get(semconv.FINDING_MESSAGE)
        if not isinstance(kind, str) or not isinstance(message, str):
            continue
        turn = attrs.get(semconv.FINDING_TURN)
        evidence = attrs.get(semconv.FINDING_EVIDENCE)
        rows.append(
            (
                session_id,
                turn if isinstance(turn, int) else None,
                kind,
                str(attrs.get(semconv.FINDING_SEVERITY) or "info"),
                message,
                attrs.get(semconv.FINDING_FIGURES),
                json.dumps(list(evidence)) if evidence else None,
                event.timestamp or 0,
            )
        )
    return rows


def _note_fields(tally: _SessionTally, span: ReadableSpan, attributes: Any, kind: Any) -> None:
    fields = tally.fields
    if "name" not in fields and semconv.SESSION_NAME in attributes:
        fields["name"] = str(attributes[semconv.SESSION_NAME])
    if "thread_id" not in fields:
        thread = attributes.get(semconv.GEN_AI_CONVERSATION_ID) or attributes.get(semconv.RECORD_THREAD_ID)
        if thread is not None:
            fields["thread_id"] = str(thread)
    if "user_id" not in fields and semconv.USER_ID in attributes:
        fields["user_id"] = str(attributes[semconv.USER_ID])
    if "tags" not in fields:
        tags = _tag_json(attributes.get(semconv.TAGS))
        if tags is not None:
            fields["tags"] = tags
    if "service" not in fields:
        service = span.resource.attributes.get(semconv.SERVICE_NAME)
        if service is not None:
            fields["service"] = str(service)
    if kind == semconv.SPAN_TYPE_SESSION:
        record = tally.record
        if record is None or (span.end_time or 0) >= (record.end_time or 0):
            tally.record = span


def _session_values(session_id: str, tally: _SessionTally) -> tuple[Any, ...]:
    fields = tally.fields
    record = tally.record
    state = end_reason = trace_id = previous = None
    ended = None
    start = tally.start
    if record is not None:
        attrs = record.attributes or {}
        state = str(attrs.get(semconv.SESSION_END_STATE) or "?")
        reason = attrs.get(semconv.SESSION_END_REASON)
        end_reason = None if reason is None else str(reason)
        context = record.get_span_context()
        trace_id = None if context is None else f"{context.trace_id:032x}"
        previous_value = attrs.get(semconv.SESSION_PREVIOUS_ID)
        previous = None if previous_value is None else str(previous_value)
        ended = record.end_time
    return (
        session_id,
        fields.get("name"),
        fields.get("thread_id"),
        fields.get("user_id"),
        fields.get("tags"),
        fields.get("service"),
        state or "unfinished",
        end_reason,
        previous,
        trace_id,
        start,
        tally.end,
        ended,
        *tally.numbers,
        tally.cost,
        tally.incomplete,
    )


class StoreSpanExporter(SpanExporter):
    """The ``file`` exporter: spans into the store's SQLite database."""

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer

    @property
    def path(self) -> Path:
        return self.writer.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.writer.write_spans(spans)
            return SpanExportResult.SUCCESS
        except Exception as exc:
            self.writer.fault(f"{len(spans)} spans", exc)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class StoreLogExporter:
    """The session events (``session.start`` / ``session.end``) into the store's events table."""

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer

    def export(self, batch: Sequence[Any]) -> Any:
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        try:
            self.writer.write_events(batch)
            return LogRecordExportResult.SUCCESS
        except Exception as exc:
            self.writer.fault(f"{len(batch)} session events", exc)
            return LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        pass

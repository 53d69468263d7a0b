"""Reading the store: sessions, turns and spans by the same filters the CLI takes.

Every query is answered from an index: the session list from the sessions table (one row a
session, kept current by the writer), a session's spans by their session index, so the time
to list or show does not grow with the size of the store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from typing_extensions import Unpack

from .. import semconv
from .._errors import ConfigError
from .._findings import Finding, Severity
from .._types import EndState
from .codec import load_attributes, make_resource, make_scope, make_span
from .filters import SessionFilters, Since, check_page, since_ns, where_clause
from .records import StoredSession, StoredSpan
from .schema import StoreError, connect, db_path
from .sending import send_otlp, write_jsonl

if TYPE_CHECKING:
    from .._models import SessionSummary, SpanRecord, TurnSummary

logger = logging.getLogger("sessionkit")

_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS = ("UNSET", "OK", "ERROR")


def _time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc)


def _maybe_time(ns: Optional[int]) -> Optional[datetime]:
    return None if ns is None else _time(ns)


@dataclass
class SessionRow:
    """A listed session's figures, read straight from its row (what the CLI's table shows; no
    pydantic, so that listing stays as fast as the import)."""

    session_id: str
    name: str
    thread_id: Optional[str]
    user_id: Optional[str]
    state: str
    start_ns: int
    duration_seconds: float
    turn_count: int
    span_count: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    errors: int
    cost_usd: Optional[float]
    cost_incomplete: bool
    finding_count: int = 0
    finding_kinds: str = ""
    """The kinds of its findings, comma-separated (``loop,budget``)."""


_LISTED = (
    "SELECT *, (SELECT count(*) FROM turns t WHERE t.session_id = s.session_id) AS turn_count, "
    "(SELECT count(*) FROM findings f WHERE f.session_id = s.session_id) AS finding_count, "
    "(SELECT group_concat(DISTINCT f.kind) FROM findings f WHERE f.session_id = s.session_id) AS finding_kinds "
    "FROM sessions s"
)


def _figures(row: sqlite3.Row) -> dict[str, Any]:
    """What a sessions row says, in the names both SessionRow and SessionSummary use."""
    end = row["ended_ns"] if row["ended_ns"] is not None else row["last_ns"]
    return {
        "session_id": row["session_id"],
        "name": row["name"] or "?",
        "thread_id": row["thread_id"],
        "user_id": row["user_id"],
        "duration_seconds": max(end - row["start_ns"], 0) / 1e9,
        "turn_count": row["turn_count"],
        "span_count": row["span_count"],
        "llm_calls": row["llm_calls"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "errors": row["errors"],
        "cost_usd": None if row["cost_incomplete"] else row["cost_usd"],
        "cost_incomplete": bool(row["cost_incomplete"]),
    }


def _session_row(row: sqlite3.Row) -> SessionRow:
    return SessionRow(
        **_figures(row),
        state=row["state"],
        start_ns=row["start_ns"],
        finding_count=row["finding_count"],
        finding_kinds=row["finding_kinds"] or "",
    )


def _finding(row: sqlite3.Row) -> Finding:
    try:
        figures = json.loads(row["figures"]) if row["figures"] else {}
    except ValueError:
        figures = {}
    try:
        severity = Severity(row["severity"])
    except ValueError:
        severity = Severity.INFO
    return Finding(
        kind=row["kind"],
        severity=severity,
        message=row["message"],
        figures=figures if isinstance(figures, dict) else {},
        evidence=tuple(json.loads(row["evidence"])) if row["evidence"] else (),
        turn=row["turn_index"],
        time_ns=row["time_ns"],
        session_id=row["session_id"],
    )


class Store:
    """A local store, for reading: ``sessionkit.open_store()`` (the configured folder) or
    ``open_store(folder)``. Old JSON-lines files in the folder are moved into the database
    the first time it is opened."""

    def __init__(self, folder: Union[str, Path, None] = None, *, say: Optional[Callable[[str], None]] = None) -> None:
        if folder is None:
            from .._config import Config

            folder = Config.resolve().file_dir
        if not isinstance(folder, (str, Path)):
            raise ConfigError(
                f"sessionkit: open_store(folder) takes a folder path, not {type(folder).__name__}",
                field="folder",
                value=folder,
            )
        self.folder = Path(folder).expanduser()
        self.path = db_path(self.folder)
        self._conn: Optional[sqlite3.Connection] = None
        self._resources: dict[int, Any] = {}
        self._scopes: dict[int, Any] = {}
        self._migrate(say or (lambda text: logger.warning("%s", text)))

    def _migrate(self, say: Callable[[str], None]) -> None:
        from .legacy import legacy_files

        if not legacy_files(self.folder):
            return
        from .legacy import migrate
        from .writer import StoreWriter

        writer = StoreWriter(self.folder, max_bytes=None, max_age=None)
        try:
            migrate(self.folder, writer, say)
        finally:
            writer.close()

    # -- the connection ---------------------------------------------------------------------------
    def _db(self) -> Optional[sqlite3.Connection]:
        if self._conn is None:
            if not self.path.exists():
                return None
            try:
                self._conn = connect(self.path, readonly=True)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"sessionkit: the local store {self.path} cannot be read: {exc}") from exc
        return self._conn

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._db()
        if conn is None:
            return []
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"sessionkit: the local store {self.path} cannot be read: {exc}") from exc

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Read several queries from one moment of the store: inside the block, every query sees
        the store as it was at the first one, whatever writers commit meanwhile."""
        conn = self._db()
        if conn is None or conn.in_transaction:
            yield self
            return
        conn.execute("BEGIN")
        try:
            yield self
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sessionkit Store {self.path}>"

    # -- sessions ---------------------------------------------------------------------------------
    def sessions(
        self, *, limit: Optional[int] = 50, offset: int = 0, **filters: Unpack[SessionFilters]
    ) -> list[SessionSummary]:
        """Sessions, newest first, as ``SessionSummary`` records (without their turns; ``session()``
        has them). ``name`` may be a glob (``support-*``); ``since`` as :func:`since_ns` takes it."""
        summaries = [self._summary(row) for row in self._listed(limit, offset, filters)]
        if summaries:
            found: dict[str, list[Finding]] = {}
            for finding in self._findings([s.session_id for s in summaries]):
                found.setdefault(finding.session_id or "", []).append(finding)
            for summary in summaries:
                summary.findings = found.get(summary.session_id, [])
        return summaries

    def _listed(self, limit: Optional[int], offset: int, filters: SessionFilters) -> list[sqlite3.Row]:
        check_page(limit, offset)
        where, args = where_clause(filters)
        return self._rows(
            f"{_LISTED}{where} ORDER BY start_ns DESC LIMIT ? OFFSET ?", [*args, -1 if limit is None else limit, offset]
        )

    def findings(
        self, session_id: Optional[str] = None, *, kind: Optional[str] = None, limit: Optional[int] = 100
    ) -> list[Finding]:
        """Findings (docs/insights.md), oldest first: a session's (by id or its first characters),
        or the newest of every session; ``kind`` keeps one kind."""
        check_page(limit, 0)
        if session_id is not None:
            found = self.resolve(session_id)
            if found is None:
                return []
            return [f for f in self._findings([found]) if kind is None or f.kind == kind][: limit or None]
        where, args = ("WHERE kind = ?", [kind]) if kind is not None else ("", [])
        rows = self._rows(
            f"SELECT * FROM (SELECT * FROM findings {where} ORDER BY time_ns DESC LIMIT ?) ORDER BY time_ns",
            [*args, -1 if limit is None else limit],
        )
        return [_finding(row) for row in rows]

    def _findings(self, session_ids: list[str]) -> list[Finding]:
        found: list[Finding] = []
        for start in range(0, len(session_ids), 500):
            chunk = session_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += [
                _finding(row)
                for row in self._rows(
                    f"SELECT * FROM findings WHERE session_id IN ({marks}) ORDER BY time_ns, kind", chunk
                )
            ]
        return found

    def count(self, **filters: Unpack[SessionFilters]) -> int:
        """How many sessions match the filters."""
        where, args = where_clause(filters)
        if not where:  # kept by triggers: counting a million rows would take longer than the listing
            rows = self._rows("SELECT value FROM counts WHERE name = 'sessions'")
            return int(rows[0][0]) if rows else 0
        rows = self._rows(f"SELECT count(*) FROM sessions{where}", args)
        return int(rows[0][0]) if rows else 0

    def session_ids(self, prefix: str) -> list[str]:
        """The ids starting with ``prefix`` (at most two: enough to tell one from several)."""
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError(
                "sessionkit: a session id (or its first characters) is needed", field="session_id", value=prefix
            )
        return [
            r[0]
            for r in self._rows(
                "SELECT session_id FROM sessions WHERE session_id >= ? AND session_id < ? ORDER BY session_id LIMIT 2",
                (prefix, prefix + "\U0010ffff"),
            )
        ]

    def resolve(self, session_id: str) -> Optional[str]:
        """The one session id that is ``session_id`` or starts with it (None: none, or several)."""
        ids = self.session_ids(session_id)
        if session_id in ids:
            return session_id
        return ids[0] if len(ids) == 1 else None

    def session(self, session_id: str) -> Optional[SessionSummary]:
        """One session with its turns, by id or the id's first characters (None when no session,
        or several, match)."""
        found = self.resolve(session_id)
        if found is None:
            return None
        rows = self._rows("SELECT *, 0 AS turn_count FROM sessions WHERE session_id = ?", (found,))
        if not rows:
            return None
        summary = self._summary(rows[0])
        summary.turns = self.turns(found)
        summary.turn_count = len(summary.turns)
        summary.findings = self._findings([found])
        return summary

    def turns(self, session_id: str) -> list[TurnSummary]:
        """A session's turns in the order they started."""
        from .._models import TurnSummary

        found = self.resolve(session_id) or session_id
        return [
            TurnSummary(
                index=row["turn_index"],
                trace_id=row["trace_id"],
                implicit=bool(row["implicit"]),
                active=False,
                duration_seconds=max(row["end_ns"] - row["start_ns"], 0) / 1e9,
                llm_calls=row["llm_calls"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                errors=row["errors"],
                time_to_first_token_seconds=(
                    None if row["first_chunk_ns"] is None else max(row["first_chunk_ns"] - row["start_ns"], 0) / 1e9
                ),
                cost_usd=None if row["cost_incomplete"] else row["cost_usd"],
                cost_incomplete=bool(row["cost_incomplete"]),
                llm_calls_without_usage=row["llm_calls_without_usage"],
                session_id=found,
                started_at=_time(row["start_ns"]),
            )
            for row in self._rows("SELECT * FROM turns WHERE session_id = ? ORDER BY start_ns", (found,))
        ]

    def _summary(self, row: sqlite3.Row) -> SessionSummary:
        from .._models import SessionSummary

        state = row["state"]
        return SessionSummary(
            **_figures(row),
            previous_session_id=row["previous_session_id"],
            tags=json.loads(row["tags"]) if row["tags"] else [],
            trace_id=row["trace_id"] or "",
            end_state=EndState(state) if state in ("success", "fail", "indeterminate") else None,
            end_reason=row["end_reason"],
            started_at=_time(row["start_ns"]),
            ended_at=_maybe_time(row["ended_ns"]),
            llm_calls_without_usage=row["llm_calls_without_usage"],
        )

    # -- spans ------------------------------------------------------------------------------------
    def _stored_spans(self, session_id: str) -> list[StoredSpan]:
        """A session's spans as the store reads them (the one reader of span rows), in start order."""
        found = self.resolve(session_id) or session_id
        rows = self._rows(
            "SELECT s.*, r.attributes AS resource_attributes FROM spans s JOIN resources r ON r.id = s.resource_id "
            "WHERE s.session_id = ? ORDER BY s.start_ns",
            (found,),
        )
        return [_stored_span(row) for row in rows]

    def spans(self, session_id: str) -> list[SpanRecord]:
        """A session's spans (every process's, every turn's), in start order."""
        from .._models import SpanRecord

        return [
            SpanRecord(
                trace_id=span.trace_id,
                span_id=span.span_id,
                parent_span_id=span.parent_span_id or None,
                session_id=span.session_id,
                turn_index=span.turn_index,
                name=span.name,
                kind=_KINDS[span.kind] if 0 <= span.kind < len(_KINDS) else str(span.kind),
                started_at=_time(span.start_ns),
                ended_at=_time(span.end_ns),
                duration_seconds=span.duration_seconds,
                status=_STATUS[span.status_code] if 0 <= span.status_code < 3 else str(span.status_code),
                status_message=span.status_message or None,
                attributes=span.attributes,
                events=span.events,
                service_name=span.service_name or None,
            )
            for span in self._stored_spans(session_id)
        ]

    # -- data frames ------------------------------------------------------------------------------
    def sessions_frame(self, *, limit: Optional[int] = None, offset: int = 0, **filters: Unpack[SessionFilters]) -> Any:
        """``sessions(...)`` as a pandas DataFrame, every match unless ``limit`` (needs pandas)."""
        pandas = _pandas()
        rows = [s.model_dump(exclude={"turns"}) for s in self.sessions(limit=limit, offset=offset, **filters)]
        return pandas.DataFrame(rows, columns=None if rows else _summary_columns())

    def spans_frame(self, session_id: str) -> Any:
        """A session's spans as a pandas DataFrame."""
        pandas = _pandas()
        return pandas.DataFrame([s.model_dump() for s in self.spans(session_id)])

    def turns_frame(self, session_id: str) -> Any:
        """A session's turns as a pandas DataFrame."""
        pandas = _pandas()
        return pandas.DataFrame([t.model_dump() for t in self.turns(session_id)])

    # -- export -----------------------------------------------------------------------------------
    def _export_rows(self, since: Since) -> Iterator[sqlite3.Row]:
        conn = self._db()
        if conn is None:
            return
        sql, args = _since_spans("s.*", since)
        cursor = conn.execute(f"SELECT * FROM ({sql}) ORDER BY id", args)
        while True:
            batch = cursor.fetchmany(512)
            if not batch:
                return
            yield from batch

    def count_spans(self, since: Since = None) -> int:
        """How many spans ``export`` (with the same ``since``) sends."""
        sql, args = _since_spans("s.id", since)
        rows = self._rows(f"SELECT count(*) FROM ({sql})", args)
        return int(rows[0][0]) if rows else 0

    def readable_spans(self, since: Since = None, batch: int = 512) -> Iterator[list[Any]]:
        """The stored spans as OpenTelemetry ``ReadableSpan`` batches, each encoding to the OTLP
        bytes it was written from."""
        chunk: list[Any] = []
        for row in self._export_rows(since):
            chunk.append(make_span(row, self._resource(row["resource_id"]), self._scope(row["scope_id"])))
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _resource(self, rid: int) -> Any:
        found = self._resources.get(rid)
        if found is None:
            row = self._rows("SELECT attributes, schema_url FROM resources WHERE id = ?", (rid,))
            found = self._resources[rid] = make_resource(*(tuple(row[0]) if row else (None, None)))
        return found

    def _scope(self, sid: Optional[int]) -> Any:
        if sid is None:
            return None
        found = self._scopes.get(sid)
        if found is None:
            row = self._rows("SELECT name, version, schema_url, attributes FROM scopes WHERE id = ?", (sid,))
            found = self._scopes[sid] = make_scope(*tuple(row[0])) if row else None
        return found

    def export(
        self,
        endpoint: str,
        *,
        since: Since = None,
        headers: Optional[dict[str, str]] = None,
        timeout: float = 10.0,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> int:
        """Send the stored spans (of sessions started ``since``) to an OTLP/HTTP collector.
        Returns the number sent; raises ``StoreError`` when the collector refuses a batch."""
        return send_otlp(self, endpoint, since=since, headers=headers, timeout=timeout, progress=progress)

    def export_jsonl(
        self, path: Union[str, Path], *, since: Since = None, progress: Optional[Callable[[int, int], None]] = None
    ) -> int:
        """Write the stored spans as OTLP JSON lines (the Collector's file format). Returns the count."""
        return write_jsonl(self, path, since=since, progress=progress)


def _since_spans(columns: str, since: Since) -> tuple[str, list[Any]]:
    """The spans of sessions started ``since`` and the spans of no session started since then
    (every span when ``since`` is None), as a query selecting ``columns`` of spans ``s``."""
    start = since_ns(since)
    if start is None:
        return f"SELECT {columns} FROM spans s", []
    return (
        f"SELECT {columns} FROM spans s JOIN sessions x ON x.session_id = s.session_id WHERE x.start_ns >= ? "
        f"UNION ALL SELECT {columns} FROM spans s WHERE s.session_id IS NULL AND s.start_ns >= ?",
        [start, start],
    )


def _events(text: Optional[str]) -> list[dict[str, Any]]:
    if not text:
        return []
    return [{"name": e[0], "time_ns": e[1], "attributes": e[2]} for e in json.loads(text)]


def _pandas() -> Any:
    try:
        import pandas  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError("sessionkit: the data-frame views need pandas: pip install pandas") from None
    return pandas


def _summary_columns() -> list[str]:
    from .._models import SessionSummary

    return [name for name in SessionSummary.model_fields if name != "turns"]


def open_store(folder: Union[str, Path, None] = None) -> Store:
    """The local store in ``folder`` (default: the configured ``file_dir``), for reading."""
    return Store(folder)


# -- the CLI's rows: plain dataclasses, no pydantic (listing stays as fast as the import) -------
def listed_rows(
    store: Store, *, limit: Optional[int] = 50, offset: int = 0, **filters: Unpack[SessionFilters]
) -> list[SessionRow]:
    """``store.sessions()`` as the CLI's plain rows."""
    return [_session_row(row) for row in store._listed(limit, offset, filters)]


def listed_row(store: Store, session_id: str) -> Optional[SessionRow]:
    """One session's plain row, by its exact id."""
    rows = store._rows(f"{_LISTED} WHERE session_id = ?", (session_id,))
    return _session_row(rows[0]) if rows else None


def _stored_span(row: sqlite3.Row) -> StoredSpan:
    resource = json.loads(row["resource_attributes"]) if row["resource_attributes"] else {}
    return StoredSpan(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"] or "",
        name=row["name"],
        start_ns=row["start_ns"],
        end_ns=row["end_ns"],
        attributes=load_attributes(row["attributes"]),
        status_code=row["status_code"],
        service_name=str(resource.get(semconv.SERVICE_NAME, "")),
        kind=row["kind"],
        status_message=row["status_message"] or "",
        events=_events(row["events"]),
        session_id=row["session_id"],
        turn_index=row["turn_index"],
    )


def stored_session(store: Store, session_id: str) -> Optional[StoredSession]:
    """A session's spans grouped by turn (what ``sessionkit show`` prints)."""
    found = store.resolve(session_id)
    if found is None:
        return None
    spans = store._stored_spans(found)
    return StoredSession(found, spans) if spans else None

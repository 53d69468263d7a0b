"""The store's filters: which sessions a listing, a count or an export takes (user, thread,
state, since, name, finding) as an SQL condition with its parameters, and the paging checks."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Optional, TypedDict, Union

from .._errors import ConfigError

if TYPE_CHECKING:
    pass


__all__ = ["STATES", "SessionFilters", "Since", "check_page", "since_ns", "where_clause"]

STATES = ("success", "fail", "indeterminate", "unfinished")

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Since = Union[datetime, timedelta, str, None]


def since_ns(since: Since, *, setting: str = "since") -> Optional[int]:
    """``since`` as nanoseconds since the epoch: a datetime (naive: local time), a timedelta
    before now, or text: ``30m``, ``2h``, ``7d``, ``1w``, or an ISO date or time."""
    if since is None:
        return None
    now = datetime.now(timezone.utc)
    if isinstance(since, timedelta):
        moment = now - since
    elif isinstance(since, datetime):
        moment = since if since.tzinfo is not None else since.astimezone()
    elif isinstance(since, str):
        match = _SINCE.match(since)
        if match:
            moment = now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        else:
            try:
                parsed = datetime.fromisoformat(since.strip())
            except ValueError:
                raise ConfigError(
                    f"sessionkit: {setting}={since!r} is neither a duration (30m, 2h, 7d, 1w) nor an ISO date or time "
                    "(2026-12-01, 2026-12-01T09:30)",
                    field=setting,
                    value=since,
                ) from None
            moment = parsed if parsed.tzinfo is not None else parsed.astimezone()
    else:
        raise ConfigError(
            f"sessionkit: {setting} must be a datetime, a timedelta or text like '2h', not {type(since).__name__}",
            field=setting,
            value=since,
        )
    return min(max(int(moment.timestamp() * 1e9), 0), 2**63 - 1)  # (SQLite's integers are 64-bit)


class SessionFilters(TypedDict, total=False):
    """What ``Store.sessions``, ``count`` and ``listing`` (and the CLI) filter sessions by."""

    user: Optional[str]
    thread: Optional[str]
    state: Optional[str]
    """``success``, ``fail``, ``indeterminate`` or ``unfinished``."""
    since: Since
    """Sessions started since: a datetime, a timedelta before now, or ``30m``, ``2h``, ``7d``, ``1w``, an ISO date."""
    name: Optional[str]
    """Exact, or a glob (``support-*``)."""
    finding: Optional[str]
    """Sessions with a finding of this kind (``loop``, ``budget``, ...; docs/insights.md)."""


def where_clause(filters: SessionFilters) -> tuple[str, list[Any]]:
    unknown = set(filters) - set(SessionFilters.__annotations__)
    if unknown:
        raise ConfigError(
            f"sessionkit: sessions cannot be filtered by {', '.join(sorted(unknown))}; the filters are "
            "user, thread, state, since, name and finding",
            field=sorted(unknown)[0],
            value=None,
        )
    user, thread, state = filters.get("user"), filters.get("thread"), filters.get("state")
    since, name = filters.get("since"), filters.get("name")
    clauses: list[str] = []
    args: list[Any] = []
    if user is not None:
        clauses.append("user_id = ?")
        args.append(user)
    if thread is not None:
        clauses.append("thread_id = ?")
        args.append(thread)
    if state is not None:
        if state not in STATES:
            raise ConfigError(
                f"sessionkit: state={state!r} is not a session state; use one of {', '.join(STATES)}",
                field="state",
                value=state,
            )
        clauses.append("state = ?")
        args.append(state)
    start = since_ns(since)
    if start is not None:
        clauses.append("start_ns >= ?")
        args.append(start)
    if name is not None:
        clauses.append("name GLOB ?" if any(c in name for c in "*?[") else "name = ?")
        args.append(name)
    finding = filters.get("finding")
    if finding is not None:
        clauses.append("session_id IN (SELECT session_id FROM findings WHERE kind = ?)")
        args.append(finding)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def check_page(limit: Optional[int], offset: int) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ConfigError(
            f"sessionkit: limit={limit!r} must be a whole number >= 0 (or None for all)", field="limit", value=limit
        )
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ConfigError(f"sessionkit: offset={offset!r} must be a whole number >= 0", field="offset", value=offset)

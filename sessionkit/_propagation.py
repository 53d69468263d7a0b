"""A session's identity across a process or service boundary: what goes out, what comes in.

Outgoing, a request inside a session carries the W3C ``traceparent`` (and ``tracestate``) of
the calling span and a ``baggage`` header with the session's ids, but only to the targets the
``propagate_to`` setting allows (``Targets``). Headers already set by the program or another
instrumentation are merged, never replaced (``merge_headers``).

Incoming, ``read_carrier`` reads the same headers (an HTTP request's, an MCP request's
``params._meta``, a pool task's) into an ``Incoming``: validated, bounded, and never raising.
A bad header is ignored as a whole, with one log line.

The baggage keys are the attribute names the ids have on spans: ``session.id``, ``user.id``,
``gen_ai.conversation.id`` (the thread), ``sessionkit.turn.index`` (the caller's turn), and
``openinference.project.name`` (the caller's dashboard project, so that a service continuing the
session reports its spans there).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote, unquote, urlsplit

from opentelemetry.trace import SpanContext, TraceFlags, TraceState

from . import semconv
from ._values import MAX_ID

__all__ = [
    "BAGGAGE_FIELDS",
    "MAX_BAGGAGE_ENTRIES",
    "MAX_HEADER",
    "Incoming",
    "Targets",
    "baggage_header",
    "merge_headers",
    "outgoing_headers",
    "read_carrier",
    "session_kept",
]

logger = logging.getLogger("sessionkit")

BAGGAGE_FIELDS = ("session", "thread", "user")
"""What ``propagate_baggage`` may name: the session id (with the caller's turn), the thread id,
the user id."""
MAX_HEADER = 8192
"""The longest ``baggage`` (or ``tracestate``) header read, in characters (W3C's limit)."""
MAX_BAGGAGE_ENTRIES = 64
"""The most baggage entries read; a header with more is ignored whole."""

_KEY_SESSION = semconv.SESSION_ID
_KEY_USER = semconv.USER_ID
_KEY_THREAD = semconv.GEN_AI_CONVERSATION_ID
_KEY_TURN = semconv.TURN_INDEX
_KEY_PROJECT = semconv.OPENINFERENCE_PROJECT_NAME
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_MCP = "mcp"


# -- which targets may receive the session ----------------------------------------------------------
class Targets:
    """The ``propagate_to`` setting, compiled: URL prefixes (``https://tools.internal/api``), host
    patterns (``tools.internal``, ``*.svc.cluster.local``, ``127.0.0.1:8081``), and ``"mcp"``
    (every MCP server the program's MCP client talks to).

    A known LLM provider's host (``is_llm_host``) or a request recognised as an LLM call is
    allowed only by an entry that names it without a wildcard: ``"*"`` never sends a session to
    an LLM API."""

    __slots__ = ("entries", "_prefixes", "_exact", "_patterns", "mcp", "_cache", "_is_llm_host")

    def __init__(self, entries: Iterable[str], is_llm_host: Callable[[str], bool] = lambda host: False) -> None:
        self.entries = tuple(entries)
        self.mcp = _MCP in self.entries
        prefixes, exact, patterns = [], set(), []
        for entry in self.entries:
            if entry == _MCP:
                continue
            if "://" in entry:
                prefix = _url_prefix(entry)
                if prefix is not None:
                    prefixes.append(prefix)
            elif any(c in entry for c in "*?["):
                patterns.append(re.compile(fnmatch.translate(entry.lower())))
            else:
                exact.add(entry.lower())
        self._prefixes = tuple(prefixes)
        self._exact = frozenset(exact)
        self._patterns = tuple(patterns)
        self._cache: dict[tuple[str, bool], bool] = {}
        self._is_llm_host = is_llm_host

    def allows(self, url: str, llm: bool = False) -> bool:
        """Whether a request to ``url`` may carry the session (``llm``: it is an LLM call)."""
        if not self.entries:
            return False
        key = (url, llm)
        found = self._cache.get(key)
        if found is None:
            found = self._decide(url, llm)
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _decide(self, url: str, llm: bool) -> bool:
        """Matched on the parsed URL, never on its text: an entry's origin (scheme, host and
        port, the scheme's default port when none is written) exactly, then its path as a
        prefix that ends on a segment boundary. A URL with user-info (``user@host``) matches
        nothing: the host a client connects to is the one after the ``@``, which a text match
        could take for another."""
        origin = _origin(url)
        if origin is None:
            return False
        scheme, host, port, path = origin
        if any(
            scheme == p_scheme and host == p_host and port == p_port and _under(path, p_path)
            for p_scheme, p_host, p_port, p_path in self._prefixes
        ):
            return True
        netloc = f"{host}:{port}"
        if host in self._exact or netloc in self._exact:
            return True
        if llm or self._is_llm_host(host):
            return False  # an LLM API: only an entry naming it exactly
        return any(p.match(host) or p.match(netloc) for p in self._patterns)


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _origin(url: str) -> Optional[tuple[str, str, int, str]]:
    """``url``'s scheme, host, port (the scheme's default when none is written) and path, in
    lower case but the path; None for a URL that names no host, has user-info, or does not parse."""
    try:
        parts = urlsplit(url.strip())
        if "@" in parts.netloc or not parts.hostname:
            return None
        scheme = parts.scheme.lower()
        port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme, -1)
        return scheme, parts.hostname.lower().rstrip("."), port, parts.path or "/"
    except ValueError:
        return None


def _url_prefix(entry: str) -> Optional[tuple[str, str, int, str]]:
    """A ``propagate_to`` URL entry as (scheme, host, port, path prefix without a trailing slash)."""
    origin = _origin(entry)
    if origin is None:
        logger.warning("sessionkit: propagate_to entry %r names no host; it allows nothing", entry)
        return None
    scheme, host, port, path = origin
    return scheme, host, port, path.rstrip("/")


def _under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or below it, on a segment boundary (``/api`` covers
    ``/api`` and ``/api/x``, not ``/apix``)."""
    if not prefix:
        return True
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in "/?#;")


# -- sampling ---------------------------------------------------------------------------------------
def session_kept(session_id: str, rate: float) -> bool:
    """Whether ``sample_rate`` keeps the session ``session_id``: the same answer in every process
    (a hash of the id, not Python's salted ``hash``), so a distributed session is whole or absent."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(session_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 18446744073709551616.0  # 2**64


# -- outgoing ---------------------------------------------------------------------------------------
def baggage_header(
    stamp: Mapping[str, Any], turn_index: Any, fields: tuple[str, ...], project: Optional[str] = None
) -> Optional[str]:
    """The ``baggage`` header a session's ``stamp`` (its span attributes) sends, with the turn
    and the caller's dashboard ``project``, as ``fields`` says; None when it carries nothing.
    The same ids make the same header: kept (bounded), so a request pays a lookup, not the quoting."""
    key = (stamp.get(_KEY_SESSION), stamp.get(_KEY_THREAD), stamp.get(_KEY_USER), turn_index, fields, project)
    found = _baggage_cache.get(key)
    if found is None:
        items: list[tuple[str, str]] = []
        session_id, thread, user = key[0], key[1], key[2]
        if "session" in fields and isinstance(session_id, str):
            items.append((_KEY_SESSION, session_id))
            if isinstance(turn_index, int) and not isinstance(turn_index, bool):
                items.append((_KEY_TURN, str(turn_index)))
            if project:  # the services that continue the session report under the caller's project
                items.append((_KEY_PROJECT, project[:MAX_ID]))
        if "thread" in fields and isinstance(thread, str):
            items.append((_KEY_THREAD, thread))
        if "user" in fields and isinstance(user, str):
            items.append((_KEY_USER, user))
        found = ",".join(f"{quote(k, safe='.')}={quote(v, safe='')}" for k, v in items)
        if len(_baggage_cache) >= 1024:
            _baggage_cache.clear()
        _baggage_cache[key] = found
    return found or None


_baggage_cache: dict[tuple[Any, ...], str] = {}


def outgoing_headers(span_context: Optional[SpanContext], baggage: Optional[str]) -> dict[str, str]:
    """``traceparent`` / ``tracestate`` / ``baggage`` for a span's context and a baggage header."""
    headers: dict[str, str] = {}
    if span_context is not None and span_context.is_valid:
        headers["traceparent"] = (
            f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"
        )
        if span_context.trace_state:
            headers["tracestate"] = span_context.trace_state.to_header()
    if baggage:
        headers["baggage"] = baggage
    return headers


def merge_headers(
    get: Callable[[str], Optional[str]], put: Callable[[str, str], None], ours: Mapping[str, str]
) -> None:
    """Add ``ours`` to a request's headers through ``get`` / ``put``: a ``traceparent`` already
    there (the program's, another instrumentation's) is kept with its ``tracestate``; baggage
    entries are added to the existing header, the ones already there kept."""
    parent = ours.get("traceparent")
    if parent is not None and not get("traceparent"):
        put("traceparent", parent)
        state = ours.get("tracestate")
        if state:
            put("tracestate", state)
    baggage = ours.get("baggage")
    if baggage:
        existing = get("baggage")
        if not existing:
            put("baggage", baggage)
        else:
            have = {item.split("=", 1)[0].strip() for item in existing.split(",")}
            if _KEY_SESSION in have:  # another session's: what belongs to ours (its turn, its project) stays out
                have.update((_KEY_TURN, _KEY_PROJECT))
            added = [item for item in baggage.split(",") if item.split("=", 1)[0] not in have]
            if added:
                put("baggage", ",".join([existing, *added]))


# -- incoming ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Incoming:
    """What a request carries of a caller's session (``read_carrier``)."""

    session_id: Optional[str] = None
    thread_id: Optional[str] = None
    user_id: Optional[str] = None
    turn_index: Optional[int] = None
    project: Optional[str] = None
    """The caller's dashboard project (``openinference.project.name``), when it sent one."""
    parent: Optional[SpanContext] = None
    """The caller's span (remote), when a valid ``traceparent`` came."""


NOTHING = Incoming()
_last_warning = [0.0]


def _bad(what: str, detail: str) -> None:
    """One log line for a bad incoming header (at most one warning a minute; debug otherwise)."""
    now = time.monotonic()
    level = logging.DEBUG
    if now - _last_warning[0] >= 60.0:
        _last_warning[0] = now
        level = logging.WARNING
    logger.log(level, "sessionkit: ignored an incoming %s header (%s); the request runs without it", what, detail)


def _headers_of(carrier: Any) -> dict[str, str]:
    """The propagation headers of a carrier, names in lower case: a mapping (HTTP headers of
    any framework, an MCP ``_meta``), or pairs (ASGI's ``[(b"name", b"value")]``)."""
    found: dict[str, str] = {}
    wanted = ("traceparent", "tracestate", "baggage")
    if isinstance(carrier, Mapping) or hasattr(carrier, "get"):
        for name in wanted:
            value = carrier.get(name)
            if value is None:
                value = carrier.get(name.title()) if isinstance(carrier, dict) else None
            if value is not None:
                found[name] = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value
        if found or not isinstance(carrier, Mapping):
            return found
        pairs: Iterable[Any] = carrier.items()
    else:
        pairs = carrier
    for pair in pairs:
        name, value = pair
        name = name.decode("latin-1") if isinstance(name, (bytes, bytearray)) else str(name)
        lowered = name.lower()
        if lowered in wanted:
            found[lowered] = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value
    return found


def _parent(header: Any, state: Any) -> Optional[SpanContext]:
    if not isinstance(header, str):
        if header is not None:
            _bad("traceparent", f"a {type(header).__name__}, not text")
        return None
    match = _TRACEPARENT.match(header.strip())
    if match is None or match.group(1) == "ff" or (match.group(1) == "00" and match.group(5)):
        _bad("traceparent", "not a W3C traceparent")
        return None
    trace_id, span_id = int(match.group(2), 16), int(match.group(3), 16)
    if not trace_id or not span_id:
        _bad("traceparent", "an all-zero id")
        return None
    trace_state = None
    if isinstance(state, str) and 0 < len(state) <= MAX_HEADER:
        try:
            trace_state = TraceState.from_header([state])
        except Exception:
            trace_state = None
    return SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(match.group(4), 16)), trace_state=trace_state
    )


def _baggage(header: Any) -> Optional[dict[str, str]]:
    """Our keys from a ``baggage`` header, or None when the header is bad (ignored whole)."""
    if not isinstance(header, str):
        return {}
    if len(header) > MAX_HEADER:
        _bad("baggage", f"{len(header)} characters, over {MAX_HEADER}")
        return None
    entries = header.split(",")
    if len(entries) > MAX_BAGGAGE_ENTRIES:
        _bad("baggage", f"{len(entries)} entries, over {MAX_BAGGAGE_ENTRIES}")
        return None
    ours: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        key = key.strip()
        if key not in (_KEY_SESSION, _KEY_USER, _KEY_THREAD, _KEY_TURN, _KEY_PROJECT):
            continue
        value = unquote(value.split(";", 1)[0].strip())
        if not sep or not value or len(value) > MAX_ID or not value.isprintable():
            _bad("baggage", f"{key} is empty, over {MAX_ID} characters, or has control characters")
            return None
        ours[key] = value
    return ours


def read_carrier(carrier: Any) -> Incoming:
    """The caller's session and span in ``carrier`` (see ``_headers_of``). Never raises: a bad
    header is ignored, with one log line."""
    try:
        if not carrier:
            return NOTHING
        headers = _headers_of(carrier)
        if not headers:
            return NOTHING
        parent = _parent(headers.get("traceparent"), headers.get("tracestate"))
        ours = _baggage(headers.get("baggage"))
        if not ours:
            return Incoming(parent=parent) if parent is not None else NOTHING
        turn: Optional[int] = None
        raw_turn = ours.get(_KEY_TURN)
        if raw_turn is not None:
            if raw_turn.isdigit() and len(raw_turn) <= 9:
                turn = int(raw_turn)
            else:
                _bad("baggage", f"{_KEY_TURN} is not a number")
        return Incoming(
            session_id=ours.get(_KEY_SESSION),
            thread_id=ours.get(_KEY_THREAD),
            user_id=ours.get(_KEY_USER),
            turn_index=turn if ours.get(_KEY_SESSION) else None,
            project=ours.get(_KEY_PROJECT) if ours.get(_KEY_SESSION) else None,
            parent=parent,
        )
    except Exception:
        logger.debug("sessionkit: could not read incoming session headers (ignored)", exc_info=True)
        return NOTHING

"""Reading a growing conversation without reading it all, and writing content that stays valid.

An agent resends its whole history on every turn, so a request body at turn N carries the N-1
turns of the request before it, byte for byte, followed by what is new. ``split_body`` takes a
body apart at its message array: the other top-level fields are parsed (they are small), and of
the array only what follows the bytes already seen (``known``) is parsed. Each message is thus
parsed, converted and serialised once per conversation, not once per call.

``fit_messages`` and ``fit_json`` keep captured content valid JSON within a size limit: by
structure (whole newest messages, shortened strings), never by cutting the text.

Pure functions over bytes and decoded JSON; nothing here raises on unexpected input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from .._values import jsonable, truncate

_SPACE = b" \t\r\n"
_CANDIDATES = 64  # closing brackets tried, from the end, before giving up on a split


@dataclass
class Split:
    """A request body taken apart at its message array."""

    fields: dict[str, Any]
    """Every top-level field but the array."""
    new: list[Any]
    """The array's elements after the ``known`` bytes (all of them when nothing was known)."""
    first: int
    """The index in the whole array of ``new[0]``."""
    prefix: bytes
    """The array's bytes up to the end of its last element: what the next request starts with."""

    @property
    def count(self) -> int:
        return self.first + len(self.new)


def split_body(raw: bytes, key: str, known: Optional[tuple[bytes, int]] = None) -> Optional[Split]:
    """``raw`` (a JSON object) taken apart at its top-level array ``key``. ``known``: the
    ``prefix`` and ``count`` of an earlier request of the same conversation. None when the body
    does not have that shape (the caller then decodes it whole)."""
    try:
        return _split(raw, key, known)
    except (ValueError, RecursionError, IndexError):
        return None


def _split(raw: bytes, key: str, known: Optional[tuple[bytes, int]]) -> Optional[Split]:
    marker = b'"' + key.encode("ascii") + b'"'
    at = raw.find(marker)
    if at < 0:
        return None
    before = raw[:at].rstrip(_SPACE)
    if before.endswith(b","):
        head_text = before[:-1] + b"}"
    elif before.lstrip(_SPACE) == b"{":
        head_text = b"{}"  # the array's field comes first
    else:
        return None  # the name is not a top-level field's (it sits inside something)
    i = _skip(raw, at + len(marker))
    if raw[i : i + 1] != b":":
        return None
    start = _skip(raw, i + 1)
    if raw[start : start + 1] != b"[":
        return None
    head = json.loads(head_text)
    if not isinstance(head, dict):
        return None
    first, resume = 0, start + 1
    if known is not None:
        prefix, count = known
        if len(prefix) > 1 and raw.startswith(prefix, start):
            after = _skip(raw, start + len(prefix))
            if raw[after : after + 1] in (b",", b"]"):
                first, resume = count, after
    if first and raw[resume : resume + 1] == b"]":
        candidates: Any = [resume]  # nothing new: the array closes right after the known part
    else:
        candidates = _closing_brackets(raw, resume)
    for end in candidates:
        tail = raw[end + 1 :].strip(_SPACE)
        if tail == b"}":
            rest: Any = {}
        elif tail.startswith(b",") and tail.endswith(b"}"):
            try:
                rest = json.loads(b"{" + tail[1:])
            except ValueError:
                continue
        else:
            continue
        # The new elements must parse as an array that ends exactly here: that is what makes
        # this bracket the array's own.
        if first:
            part = b"[" + raw[resume + 1 : end] + b"]" if raw[resume : resume + 1] == b"," else b"[]"
        else:
            part = raw[start : end + 1]
        try:
            new = json.loads(part)
        except ValueError:
            continue
        if not isinstance(new, list) or not isinstance(rest, dict):
            continue
        head.update(rest)
        return Split(fields=head, new=new, first=first, prefix=raw[start:end].rstrip(_SPACE))
    return None


def _closing_brackets(raw: bytes, after: int) -> Any:
    """Positions of ``]`` after ``after``, from the end backwards, at most ``_CANDIDATES``."""
    end = len(raw)
    for _ in range(_CANDIDATES):
        end = raw.rfind(b"]", after, end)
        if end < 0:
            return
        yield end


def _skip(raw: bytes, i: int) -> int:
    while i < len(raw) and raw[i] in _SPACE:
        i += 1
    return i


# -- content that stays valid JSON within a limit ---------------------------------------------------
def fit_messages(texts: list[str], limit: int) -> tuple[str, int]:
    """The newest of ``texts`` (each one message's JSON, oldest first) as a JSON array of at most
    ``limit`` characters, and how many older ones were left out. The newest message is always
    there: shortened by structure when it alone is over the limit."""
    kept: list[str] = []
    size = 2  # the brackets
    for text in reversed(texts):
        extra = len(text) + (2 if kept else 0)  # ", " between items
        if size + extra > limit:
            break
        kept.append(text)
        size += extra
    if not kept and texts:
        kept = [fit_json(json.loads(texts[-1]), limit - 2)]
    kept.reverse()
    return "[" + ", ".join(kept) + "]", len(texts) - len(kept)


def fit_json(value: Any, limit: int) -> str:
    """``value`` as JSON of at most ``limit`` characters that is always valid: when the whole is
    too long, its longest strings are shortened (each saying how long it was), then lists lose
    their last items; a mapping or list of several entries that still does not fit keeps its first entries whole
    (cut at an entry boundary, with ``"...": "N more"`` saying what was left out), and any other
    value becomes a JSON string of its cut text."""
    data = jsonable(value)
    text = json.dumps(data, ensure_ascii=False)
    for _ in range(24):
        if len(text) <= limit:
            return text
        if not _shorten(data, len(text) - limit):
            break
        text = json.dumps(data, ensure_ascii=False)
    if len(text) <= limit:
        return text
    if isinstance(data, (dict, list)) and len(data) > 1:
        return _fit_by_items(data, limit)  # many small entries (metadata): whole entries, cut at a boundary
    keep = max(limit - 2, 0)
    while True:
        cut = json.dumps(truncate(text, keep), ensure_ascii=False)
        if len(cut) <= limit or keep == 0:
            return cut
        keep = max(keep - (len(cut) - limit), 0)


def _fit_by_items(data: Any, limit: int) -> str:
    """A mapping or list as JSON within ``limit``: its first entries whole, then a marker of how
    many were left out (``{"...": "N more"}`` / ``[..., "N more"]``)."""
    items = list(data.items()) if isinstance(data, dict) else list(data)
    total = len(items)
    low, high = 0, total  # the most entries that fit, found by halving: each try is one dumps
    best = ""
    while low <= high:
        middle = (low + high) // 2
        kept = items[:middle]
        marker = f"{total - middle} more"
        if isinstance(data, dict):
            candidate = json.dumps({**dict(kept), "...": marker}, ensure_ascii=False)
        else:
            candidate = json.dumps([*kept, marker], ensure_ascii=False)
        if len(candidate) <= limit:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best or ("{}" if isinstance(data, dict) else "[]")


def _shorten(data: Any, excess: int) -> bool:
    """Cut the longest string in ``data`` (in place) by about ``excess``; False when nothing is
    left to cut."""
    best: Optional[tuple[int, Any, Any]] = None  # (length, container, key)
    stack = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            if isinstance(v, str):
                if len(v) > 32 and (best is None or len(v) > best[0]):
                    best = (len(v), node, k)
            elif isinstance(v, (dict, list)):
                stack.append(v)
    if best is not None:
        length, node, k = best
        node[k] = truncate(node[k], max(length - excess - 24, length // 2, 16))  # at most halve per step
        return True
    lists = [n for n in _walk(data) if isinstance(n, list) and len(n) > 1]
    if lists:
        longest = max(lists, key=len)
        del longest[len(longest) // 2 :]
        return True
    return False


def _walk(data: Any) -> list[Any]:
    out, stack = [], [data]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, dict):
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return out


def captured(value: Any, limit: int, redact: Callable[[str], str]) -> str:
    """``value`` as content to record: a string as text, anything else as JSON fitted by its
    structure; redacted (after cutting, so redaction reads at most ``limit`` characters), and
    within ``limit`` afterwards too (a replacement can be longer than what it replaced)."""
    if isinstance(value, str):
        text = redact(truncate(value, limit))
        return text if len(text) <= limit else truncate(text, limit)
    return redacted_json(redact, fit_json(value, limit), limit)


def redacted_json(redact: Callable[[str], str], text: str, limit: int) -> str:
    """``text`` (JSON) redacted, and still valid JSON within ``limit`` (a replacement can be
    longer than what it replaced, and a user's hook, or a pattern inside an escape, can break
    the JSON: then the redacted text is recorded as a JSON string)."""
    redacted = redact(text)
    if redacted == text:
        return text
    try:
        value = json.loads(redacted)
    except ValueError:
        return fit_json(redacted, limit)
    return redacted if len(redacted) <= limit else fit_json(value, limit)

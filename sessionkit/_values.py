"""Turn arbitrary user values into valid OpenTelemetry attribute values, never raising."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

logger = logging.getLogger("sessionkit")

AttributeValue = Union[str, bool, int, float, list[str], list[bool], list[int], list[float]]

MAX_STRING = 8192
MAX_ITEMS = 128


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    suffix = f"...[{len(text)} chars]"
    return (text[: max(limit - len(suffix), 0)] + suffix)[:limit]


def to_text(value: Any, limit: int = MAX_STRING) -> str:
    """A string for any value: ``str`` for strings, else JSON, else ``repr``. Never raises."""
    if isinstance(value, str):
        return truncate(value, limit)
    try:
        text = json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=True)
    except Exception:  # cyclic structures, hostile __repr__, ...
        text = _safe_repr(value)
    return truncate(text, limit)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump()
    return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def to_attribute(value: Any, limit: int = MAX_STRING) -> Optional[AttributeValue]:
    """A valid attribute value for ``value``, or None when there is nothing sensible to record."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return truncate(value, limit)
    if isinstance(value, (list, tuple)) and value and len(value) <= MAX_ITEMS:
        first = type(value[0])
        if first in (str, bool, int, float) and all(type(v) is first for v in value):
            if first is str:
                return [truncate(v, limit) for v in value]
            if first is float and not all(math.isfinite(v) for v in value):
                return to_text(value, limit)
            return list(value)
    return to_text(value, limit)


def to_attributes(values: Mapping[Any, Any], limit: int = MAX_STRING) -> dict[str, AttributeValue]:
    """Convert a mapping of user attributes; bad keys become strings, None values are dropped."""
    out: dict[str, AttributeValue] = {}
    for key, value in values.items():
        converted = to_attribute(value, limit)
        if converted is None:
            logger.debug("sessionkit: attribute %r dropped: value is None", key)
            continue
        out[key if isinstance(key, str) else to_text(key, 256)] = converted
    return out


def to_tags(tags: Union[None, str, Iterable[Any]]) -> list[str]:
    """A list of tag strings: a single string is one tag, not a sequence of characters."""
    if tags is None:
        return []
    if isinstance(tags, (str, bytes)):
        tags = [tags]
    try:
        items = list(tags)
    except TypeError:
        items = [tags]
    return [to_text(t, 256) for t in items[:MAX_ITEMS]]


def as_count(value: Any) -> Optional[int]:
    """``value`` if it is a non-negative int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def checked_timeout(value: Any, name: str = "timeout") -> float:
    """``value`` as seconds to wait: a finite number >= 0. A clear error, naming ``name``, else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"sessionkit: {name} must be a number of seconds, such as {name}=5.0; got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"sessionkit: {name} must be a finite number of seconds >= 0 (every wait is bounded); got {value!r}"
        )
    return float(value)


MAX_ID = 256


def to_session_id(value: Any) -> str:
    """A session id to continue (``session_id=``): a non-empty string of at most ``MAX_ID`` printable
    characters, taken exactly as given (it must match what the other process used)."""
    if not isinstance(value, str):
        raise TypeError(
            f"sessionkit: session_id must be a string, the id of the session to continue (session.id); got {value!r}"
        )
    if not value or len(value) > MAX_ID or not value.isprintable():
        raise ValueError(
            f"sessionkit: session_id must be 1 to {MAX_ID} printable characters (no newlines or control "
            f"characters), such as the session.id of the session to continue; got {value[:300]!r}"
        )
    return value


def to_id(value: Any, name: str) -> str:
    """An identifier (thread, user, conversation) as a string that keeps its identity: two
    different ids never become the same text. str, int, UUID and UTF-8 bytes are taken as they
    are; anything else, an empty id or one over ``MAX_ID`` characters is a clear error."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise TypeError(f"sessionkit: {name} given as bytes must be UTF-8 text; decode it or pass a str") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif type(value).__name__ == "UUID":
        text = str(value)
    else:
        raise TypeError(f"sessionkit: {name} must be a string (or an int, UUID or UTF-8 bytes); got {value!r}")
    if not text:
        raise ValueError(f"sessionkit: {name} must not be empty; pass None for no {name}")
    if len(text) > MAX_ID:
        raise ValueError(
            f"sessionkit: {name} is {len(text)} characters; at most {MAX_ID} keep ids distinct on every backend "
            f"(pass a hash of a longer key)"
        )
    return text


def jsonable(value: Any, depth: int = 0, seen: Optional[set[int]] = None) -> Any:
    """``value`` as plain JSON data: string keys, lists for tuples and sets, text for anything
    else (bytes as their size, objects as their repr), NaN and infinities as text, cycles and
    nesting beyond 32 levels cut. Never raises."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= 32:
        return "..."
    seen = set() if seen is None else seen
    if id(value) in seen:
        return "<cycle>"
    if isinstance(value, Mapping):
        seen.add(id(value))
        try:
            return {
                (k if isinstance(k, str) else to_text(k, 256)): jsonable(v, depth + 1, seen) for k, v in value.items()
            }
        except Exception:
            return _safe_repr(value)
        finally:
            seen.discard(id(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        seen.add(id(value))
        try:
            return [jsonable(v, depth + 1, seen) for v in value]
        finally:
            seen.discard(id(value))
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return jsonable(model_dump(), depth + 1, seen)
        except Exception:
            return _safe_repr(value)
    return _safe_repr(value)

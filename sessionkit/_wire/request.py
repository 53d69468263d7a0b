"""Reading an LLM request: its model and parameters and, with content capture, its messages;
a long conversation's body is read by its new messages only (the part read before is kept per
conversation, bounded)."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Optional

from .._payloads.body import split_body
from .._payloads.family import PayloadFamily
from .._payloads.llm import (
    LLMRequest,
)
from .recognise import request_body

__all__ = ["SPLIT_MIN", "read_request"]

SPLIT_MIN = 4 << 10  # bodies this large are read by their new messages only (smaller: decoded whole)


class _Histories:
    """What was read of each conversation's message array: its bytes so far, its message count
    and the newest messages' JSON. A conversation is the current session's thread (or the
    session), else the first bytes of the body. Bounded in entries and in bytes."""

    MAX_ENTRIES = 256
    MAX_BYTES = 32 << 20

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, tuple[bytes, int, list[str]]] = OrderedDict()
        self._bytes = 0

    def get(self, key: Any) -> Optional[tuple[bytes, int, list[str]]]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Any, prefix: bytes, count: int, texts: list[str]) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0])
            self._entries[key] = (prefix, count, texts)
            self._bytes += len(prefix)
            while self._entries and (len(self._entries) > self.MAX_ENTRIES or self._bytes > self.MAX_BYTES):
                _, (dropped, _, _) = self._entries.popitem(last=False)
                self._bytes -= len(dropped)


_histories = _Histories()

_KEPT_CHARS = 256 << 10  # the newest messages' JSON kept per conversation, for the next call's capture


def read_request(
    payloads: PayloadFamily, api: str, request: Any, capture: bool, mode: str, session: Any = None
) -> tuple[LLMRequest, Optional[tuple[list[str], int]]]:
    """The request's model and parameters and, when content is captured, its messages as JSON
    texts (oldest first) with the count of older ones not among them. A large body whose
    conversation was read before is read by its new messages only; ``mode="new"`` gives only
    those (the ones not captured before in the conversation)."""
    raw = request_body(request)
    if not raw:
        return LLMRequest(), None
    field = payloads.ARRAY_FIELDS.get(api)
    if field is not None and (len(raw) >= SPLIT_MIN or (capture and mode == "new")):
        # (``session``: the calling code's, from the client's resolver; its conversation keys the history)
        key = (api, session.thread_id or session.id) if session is not None else (api, bytes(raw[:256]))
        entry = _histories.get(key)
        split = split_body(raw, field, (entry[0], entry[1]) if entry is not None else None)
        if split is not None:
            parsed = payloads.parse_request(api, split.fields, messages=capture)
            texts: list[str] = []
            history: Optional[tuple[list[str], int]] = None
            if capture:
                new = [json.dumps(m, ensure_ascii=False) for m in payloads.convert_messages(api, split.new)]
                known = entry[2] if entry is not None and split.first else []
                texts = _newest(known + new, _KEPT_CHARS)
                captured = new if mode == "new" else texts
                history = (captured, split.count - len(captured))
            _histories.put(key, split.prefix, split.count, texts)
            return parsed, history
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return LLMRequest(), None
    parsed = payloads.parse_request(api, body, messages=capture)
    if not capture or parsed.input_messages is None:
        return parsed, None
    return parsed, ([json.dumps(m, ensure_ascii=False) for m in parsed.input_messages], 0)


def _newest(texts: list[str], budget: int) -> list[str]:
    """The newest of ``texts`` whose lengths add up to ``budget`` (at least one)."""
    size = 0
    for index in range(len(texts) - 1, -1, -1):
        size += len(texts[index])
        if size > budget:
            return texts[index + 1 :] or texts[-1:]
    return texts

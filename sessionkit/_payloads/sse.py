"""Incremental stream parsers that take bytes split anywhere: Server-Sent Events, and
newline-delimited JSON."""

from __future__ import annotations

from collections.abc import Iterator


class SSEParser:
    """Feed it raw bytes as they arrive; it yields ``(event, data)`` for each complete event.

    Lines may be split across chunks at any byte (even inside a UTF-8 character); an event
    ends at a blank line. ``\\n``, ``\\r\\n`` and ``\\r`` all end lines. Comments (``:``) and
    unknown fields are ignored, as the SSE spec says.
    """

    __slots__ = ("_buffer", "_event", "_data", "_max_buffer", "idle")

    def __init__(self, max_buffer: int = 1 << 20) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._max_buffer = max_buffer
        self.idle = True  # between events: nothing buffered, the next chunk starts a new event

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """The events that ``chunk`` completes, in order (most often none or one)."""
        if (
            self.idle
            and chunk.startswith(b"data: ")
            and chunk.endswith(b"\n\n")
            and chunk.count(b"\n") == 2
            and b"\r" not in chunk
        ):
            # By far the most common chunk: exactly one event of one data line.
            return [("message", chunk[6:-2].decode("utf-8", "replace"))]
        events = self._feed(chunk)
        self.idle = not self._buffer and not self._data and not self._event
        return events

    def _feed(self, chunk: bytes) -> list[tuple[str, str]]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            return list(self._feed_general(buffer))
        # \n line ends only: split in one call.
        events = []
        lines = buffer.split(b"\n")
        rest = lines.pop()
        self._buffer = rest if len(rest) <= self._max_buffer else b""
        for raw in lines:
            if raw.startswith(b"data: "):  # by far the most common line
                self._data.append(raw[6:].decode("utf-8", "replace"))
                continue
            event = self._line(raw.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def _feed_general(self, buffer: bytes) -> Iterator[tuple[str, str]]:
        start = 0
        length = len(buffer)
        while start < length:
            newline = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, newline if newline != -1 else length)
            if cr != -1:
                # a lone \r ends a line too, but a \r at the very end may be the first half of \r\n
                if cr == length - 1:
                    break
                end, next_start = cr, cr + (2 if buffer[cr + 1 : cr + 2] == b"\n" else 1)
            elif newline != -1:
                end, next_start = newline, newline + 1
            else:
                break
            line = buffer[start:end].decode("utf-8", "replace")
            start = next_start
            event = self._line(line)
            if event is not None:
                yield event
        rest = buffer[start:]
        self._buffer = rest if len(rest) <= self._max_buffer else b""  # a line without end: give up on it

    def _line(self, line: str) -> tuple[str, str] | None:
        if not line:
            if not self._data and not self._event:
                return None
            event = (self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None

    def flush(self) -> list[tuple[str, str]]:
        """At the end of the stream: an event not closed by a blank line still counts."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append((self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
        self.idle = True
        return events


class NDJSONParser:
    """The same interface for newline-delimited JSON streams (Ollama): each complete line is
    one ``("message", line)`` event; lines may be split across chunks anywhere."""

    __slots__ = ("_buffer", "_max_buffer", "idle")

    def __init__(self, max_buffer: int = 1 << 20) -> None:
        self._buffer = b""
        self._max_buffer = max_buffer
        self.idle = True

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.split(b"\n")
        rest = lines.pop()
        self._buffer = rest if len(rest) <= self._max_buffer else b""
        self.idle = not self._buffer
        return [("message", line.decode("utf-8", "replace")) for line in lines if line.strip()]

    def flush(self) -> list[tuple[str, str]]:
        rest, self._buffer = self._buffer, b""
        self.idle = True
        return [("message", rest.decode("utf-8", "replace"))] if rest.strip() else []

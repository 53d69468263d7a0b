"""A session's spans as a waterfall: its turns, and in each its spans as bars on the session's
time axis, nested by parent. One layout, drawn two ways: self-contained HTML (a notebook's
display; readable in a static render, light and dark) and text (``sessionkit show``; bars scaled
to the terminal's width, colours only on a terminal).

It draws ``KeptSpan`` tuples: the spans a live session kept for display, or a stored session's
spans turned into the same tuples (``from_stored``).
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Optional

from . import semconv
from ._keep import DETAIL_KEYS, KeptSpan, SpanKeep

_KINDS = ("internal", "server", "client", "producer", "consumer")


class Row(NamedTuple):
    span: KeptSpan
    depth: int


class TurnRows(NamedTuple):
    label: str  # "turn 1", or "outside any turn"
    number: Optional[int]
    rows: list[Row]
    start_ns: int
    end_ns: int
    errors: int
    llm_calls: int
    input_tokens: int
    output_tokens: int


def from_stored(span: Any) -> KeptSpan:
    """A stored span (``StoredSpan``) as a ``KeptSpan``."""
    attrs = span.attributes
    message = span.status_message or ""
    if span.status_code == 2 and not message:
        for event in span.events:
            if event.get("name") == "exception":
                message = str(event.get("attributes", {}).get("exception.message", ""))
                break
    turn = attrs.get(semconv.TURN_INDEX)
    return KeptSpan(
        int(span.span_id, 16),
        int(span.parent_span_id, 16) if span.parent_span_id else 0,
        int(span.trace_id, 16),
        span.name,
        span.kind,
        span.start_ns,
        span.end_ns,
        span.status_code == 2,
        message,
        turn if type(turn) is int else None,
        {key: attrs[key] for key in DETAIL_KEYS if key in attrs},
    )


def _is_llm(span: KeptSpan) -> bool:
    d = span.details
    return d.get(semconv.GEN_AI_OPERATION_NAME) in ("chat", "text_completion", "generate_content") or (
        d.get(semconv.OPENINFERENCE_SPAN_KIND) == "LLM"
    )


def layout(spans: Iterable[KeptSpan]) -> list[TurnRows]:
    """The spans grouped by turn (in the order the turns started), each turn's spans as a tree
    in start order (a span whose parent is not among them is a top row)."""
    groups: dict[tuple[int, Optional[int]], list[KeptSpan]] = {}
    for span in spans:
        key = (span.trace_id if span.turn is not None else 0, span.turn)
        groups.setdefault(key, []).append(span)
    turns: list[TurnRows] = []
    for (_, index), members in groups.items():
        members.sort(key=lambda s: (s.start_ns, -s.end_ns))
        ids = {s.span_id for s in members}
        children: dict[int, list[KeptSpan]] = {}
        tops: list[KeptSpan] = []
        for span in members:
            if span.parent_id and span.parent_id in ids and span.parent_id != span.span_id:
                children.setdefault(span.parent_id, []).append(span)
            else:
                tops.append(span)
        rows: list[Row] = []
        stack = [(top, 0) for top in reversed(tops)]
        while stack:
            span, depth = stack.pop()
            rows.append(Row(span, depth))
            stack += [(child, depth + 1) for child in reversed(children.get(span.span_id, ()))]
        llm = [s for s in members if _is_llm(s)]
        turns.append(
            TurnRows(
                f"turn {index}" if index is not None else "outside any turn",
                index,
                rows,
                min(s.start_ns for s in members),
                max(s.end_ns for s in members),
                sum(1 for s in members if s.error),
                len(llm),
                sum(_int(s.details.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)) for s in llm),
                sum(_int(s.details.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)) for s in llm),
            )
        )
    turns.sort(key=lambda t: (t.number is None, t.start_ns))
    return turns


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def kind_of(span: KeptSpan) -> str:
    """What a row says the span is: the GenAI operation, else OpenInference's kind, else OTel's."""
    d = span.details
    operation = d.get(semconv.GEN_AI_OPERATION_NAME)
    if operation:
        return str(operation)
    oi = d.get(semconv.OPENINFERENCE_SPAN_KIND)
    if oi:
        return str(oi).lower()
    if span.name == semconv.HISTORY_LOAD_SPAN_NAME:
        return "history"
    if semconv.CHANNEL_PLATFORM in d:
        return "channel"
    kind = _KINDS[span.kind] if 0 <= span.kind < len(_KINDS) else ""
    return "" if kind == "internal" else kind


def details_of(span: KeptSpan) -> list[str]:
    """The figures a row shows after its name."""
    d = span.details
    out: list[str] = []
    model = d.get(semconv.GEN_AI_RESPONSE_MODEL) or d.get(semconv.GEN_AI_REQUEST_MODEL)
    if model:
        out.append(f"model={model}")
    tokens_in, tokens_out = d.get(semconv.GEN_AI_USAGE_INPUT_TOKENS), d.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
    if tokens_in is not None or tokens_out is not None:
        out.append(
            f"tokens={tokens_in if tokens_in is not None else '?'}/{tokens_out if tokens_out is not None else '?'}"
        )
    cost = d.get(semconv.LLM_COST_TOTAL)
    if isinstance(cost, (int, float)):
        out.append(f"${cost:.6f}")
    tool = d.get(semconv.GEN_AI_TOOL_NAME)
    if tool and str(tool) not in span.name:
        out.append(f"tool={tool}")
    if semconv.CHANNEL_PLATFORM in d:
        out.append(f"channel={d[semconv.CHANNEL_PLATFORM]}:{d.get(semconv.CHANNEL_ID, '?')}")
        if d.get(semconv.CHANNEL_LEAKED):
            out.append("LEAKED")
    if semconv.HISTORY_MESSAGES in d:
        redundant = d.get(semconv.HISTORY_MESSAGES_REDUNDANT)
        out.append(f"messages={d[semconv.HISTORY_MESSAGES]}" + (f" ({redundant} again)" if redundant else ""))
        if d.get(semconv.HISTORY_CACHE_HIT):
            out.append("cache hit")
    return out


def duration_text(ns: int) -> str:
    seconds = max(ns, 0) / 1e9
    if seconds >= 1:
        return f"{seconds:.2f}s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.1f}ms"
    return f"{seconds * 1e6:.0f}us"


def _axis(turns: Sequence[TurnRows]) -> tuple[int, int]:
    start = min((t.start_ns for t in turns), default=0)
    end = max((t.end_ns for t in turns), default=0)
    return start, max(end - start, 1)


# -- HTML ---------------------------------------------------------------------------------------
_CSS = """
.skw{--skw-fg:#1f2328;--skw-muted:#656d76;--skw-line:#d0d7de;--skw-track:#f6f8fa;--skw-bar:#4c78a8;
--skw-llm:#8250df;--skw-tool:#1a7f37;--skw-err:#cf222e;--skw-hist:#9a6700;
font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--skw-fg);max-width:100%}
@media (prefers-color-scheme:dark){.skw{--skw-fg:#e6edf3;--skw-muted:#8d96a0;--skw-line:#30363d;
--skw-track:#161b22;--skw-bar:#539bf5;--skw-llm:#b083f0;--skw-tool:#3fb950;--skw-err:#f85149;--skw-hist:#d29922}}
body[data-jp-theme-light=false] .skw,.vscode-dark .skw,[data-theme=dark] .skw{--skw-fg:#e6edf3;--skw-muted:#8d96a0;
--skw-line:#30363d;--skw-track:#161b22;--skw-bar:#539bf5;--skw-llm:#b083f0;--skw-tool:#3fb950;--skw-err:#f85149;
--skw-hist:#d29922}
.skw .skw-head{display:flex;flex-wrap:wrap;gap:2px 16px;margin-bottom:6px}
.skw .skw-fig b{font-weight:normal;color:var(--skw-muted)}
.skw details{border-top:1px solid var(--skw-line);padding:2px 0}
.skw summary{cursor:pointer;font-weight:600}
.skw .skw-row{display:flex;align-items:center;gap:8px;min-height:17px}
.skw .skw-label{flex:0 0 42%;box-sizing:border-box;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
.skw .skw-track{flex:1 1 auto;position:relative;height:13px;background:var(--skw-track)}
.skw .skw-bar{position:absolute;top:2px;height:9px;min-width:2px;border-radius:2px}
.skw .skw-dur{flex:0 0 64px;text-align:right;color:var(--skw-muted)}
.skw .skw-kind{color:var(--skw-muted)}
.skw .skw-det{color:var(--skw-muted)}
.skw .skw-err .skw-name,.skw .skw-msg{color:var(--skw-err)}
.skw .skw-msgline{white-space:pre-wrap;word-break:break-word}
.skw .skw-note{color:var(--skw-muted);margin:4px 0}
.skw .skw-finding{color:var(--skw-hist);white-space:pre-wrap;margin:2px 0 2px 14px}
.skw .skw-finding.skw-error{color:var(--skw-err)}
.skw .skw-evidence .skw-name{text-decoration:underline dotted var(--skw-hist)}
"""

_BAR_COLOURS = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "llm": "llm",
    "execute_tool": "tool",
    "tool": "tool",
    "history": "hist",
}
_FALLBACK = {"bar": "#4c78a8", "llm": "#8250df", "tool": "#1a7f37", "err": "#cf222e", "hist": "#9a6700"}


def _by_turn(findings: Sequence[Any]) -> tuple[dict[Optional[int], list[Any]], set[int]]:
    """Findings (``Finding``) by the turn they are about (None: the session), and the ids of
    their evidence spans."""
    grouped: dict[Optional[int], list[Any]] = {}
    evidence: set[int] = set()
    for finding in findings:
        grouped.setdefault(finding.turn, []).append(finding)
        for span_id in finding.evidence:
            try:
                evidence.add(int(span_id, 16))
            except (TypeError, ValueError):
                pass
    return grouped, evidence


_SEVERITY_MARK = {"info": "i", "warning": "!", "error": "!!"}


def _finding_line(finding: Any) -> str:
    return f"{_SEVERITY_MARK.get(finding.severity.value, '!')} {finding.kind}: {finding.message}"


def _colour(span: KeptSpan, kind: str) -> str:
    name = "err" if span.error else _BAR_COLOURS.get(kind, "bar")
    return f"var(--skw-{name},{_FALLBACK[name]})"  # the fallback: a static render that drops <style>


def waterfall_html(
    head: Sequence[tuple[str, Any]],
    spans: Iterable[KeptSpan],
    *,
    note: str = "",
    open_turns: bool = True,
    findings: Sequence[Any] = (),
) -> str:
    """The waterfall as one self-contained HTML fragment: the ``head`` figures (label, value),
    then a collapsible block per turn (its ``findings`` written under it, their evidence spans
    marked). Nothing is fetched; every colour has an inline fallback."""
    grouped, evidence = _by_turn(findings)
    turns = layout(spans)
    origin, total = _axis(turns)
    parts = [f'<div class="skw"><style>{_CSS}</style><div class="skw-head">']
    for label, value in head:
        parts.append(f'<span class="skw-fig"><b>{html.escape(str(label))}</b> {html.escape(str(value))}</span>')
    parts.append("</div>")
    if note:
        parts.append(f'<div class="skw-note">{html.escape(note)}</div>')
    for turn in turns:
        figures = [duration_text(turn.end_ns - turn.start_ns), f"{len(turn.rows)} spans"]
        if turn.llm_calls:
            figures.append(f"{turn.llm_calls} LLM calls, tokens {turn.input_tokens}/{turn.output_tokens}")
        if turn.errors:
            figures.append(f"{turn.errors} error{'s' if turn.errors != 1 else ''}")
        parts.append(
            f'<details class="skw-turn"{" open" if open_turns else ""} data-turn="{turn.number or ""}">'
            f'<summary>{html.escape(turn.label)} <span class="skw-det">{html.escape(" · ".join(figures))}</span>'
            "</summary>"
        )
        for row in turn.rows:
            span = row.span
            kind = kind_of(span)
            left = (span.start_ns - origin) / total * 100
            width = max((span.end_ns - span.start_ns) / total * 100, 0.0)
            details = " ".join(details_of(span))
            title = f"{span.name} {duration_text(span.end_ns - span.start_ns)} {details}".strip()
            label = (
                f'<span class="skw-name">{html.escape(span.name)}</span>'
                + (f' <span class="skw-kind">[{html.escape(kind)}]</span>' if kind else "")
                + (f' <span class="skw-det">{html.escape(details)}</span>' if details else "")
                + (f' <span class="skw-msg">{html.escape(span.message or "error")}</span>' if span.error else "")
            )
            marked = " skw-evidence" if span.span_id in evidence else ""
            parts.append(
                f'<div class="skw-row skw-span{" skw-err" if span.error else ""}{marked}" '
                f'data-name="{html.escape(span.name)}" '
                f'data-start="{span.start_ns - origin}" data-depth="{row.depth}" title="{html.escape(title)}">'
                f'<div class="skw-label" style="padding-left:{row.depth * 14}px">{label}</div>'
                f'<div class="skw-track"><div class="skw-bar" style="left:{left:.3f}%;width:{width:.3f}%;'
                f'background:{_colour(span, kind)}"></div></div>'
                f'<div class="skw-dur">{duration_text(span.end_ns - span.start_ns)}</div></div>'
            )
            if span.error and span.message:  # the whole message, under its row
                parts.append(
                    f'<div class="skw-msg skw-msgline" style="padding-left:{row.depth * 14 + 14}px">'
                    f"{html.escape(span.message)}</div>"
                )
        for finding in grouped.pop(turn.number, []):
            parts.append(_finding_html(finding))
        parts.append("</details>")
    for group in grouped.values():  # the session's own, and those of turns not drawn
        for finding in group:
            parts.append(_finding_html(finding))
    if not turns:
        parts.append('<div class="skw-note">no spans yet</div>')
    parts.append("</div>")
    return "".join(parts)


def _finding_html(finding: Any) -> str:
    severity = finding.severity.value
    return (
        f'<div class="skw-finding skw-{html.escape(severity)}" data-kind="{html.escape(finding.kind)}">'
        f"{html.escape(_finding_line(finding))}</div>"
    )


# -- text ----------------------------------------------------------------------------------------
_ANSI = {"bar": "34", "llm": "35", "tool": "32", "err": "31", "hist": "33"}


def waterfall_text(
    spans: Iterable[KeptSpan], *, width: int = 100, colour: bool = False, findings: Sequence[Any] = ()
) -> str:
    """The waterfall for a terminal: a label column, bars scaled to ``width`` columns, the
    duration; ANSI colours when ``colour`` (errors red, LLM calls magenta, tools green). A
    turn's ``findings`` are written under it; their evidence spans are marked ``*``."""
    grouped, evidence = _by_turn(findings)
    turns = layout(spans)
    origin, total = _axis(turns)
    width = max(width, 40)
    label_width = max(min(width * 2 // 5, 60), 16)
    track = max(width - label_width - 12, 8)  # " |" + bar + "| " + the duration (8)
    lines: list[str] = []

    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if colour else text

    for turn in turns:
        figures = [duration_text(turn.end_ns - turn.start_ns), f"{len(turn.rows)} spans"]
        if turn.llm_calls:
            figures.append(f"llm={turn.llm_calls} tokens={turn.input_tokens}/{turn.output_tokens}")
        if turn.errors:
            figures.append(paint(f"errors={turn.errors}", _ANSI["err"]))
        lines.append(paint(turn.label, "1") + "  " + "  ".join(figures))
        for row in turn.rows:
            span = row.span
            kind = kind_of(span)
            name = (
                "  " * row.depth
                + ("*" if span.span_id in evidence else "")
                + span.name
                + (f" [{kind}]" if kind else "")
            )
            name = name if len(name) <= label_width else name[: label_width - 1] + "~"
            start = int((span.start_ns - origin) / total * track)
            length = max(round((span.end_ns - span.start_ns) / total * track), 1)
            start = min(start, track - 1)
            length = min(length, track - start)
            bar = " " * start + "#" * length + " " * (track - start - length)
            code = "err" if span.error else _BAR_COLOURS.get(kind, "bar")
            line = (
                f"{name.ljust(label_width)} |{paint(bar, _ANSI[code])}| {duration_text(span.end_ns - span.start_ns):>8}"
            )
            lines.append(line.rstrip())
            extra = details_of(span)
            if span.error:
                extra.append(paint(f"ERROR {span.message}".rstrip(), _ANSI["err"]))
            if extra:
                lines.append(" " * (2 * row.depth + 2) + "  ".join(extra))
        for finding in grouped.pop(turn.number, []):
            lines.append(
                paint("  " + _finding_line(finding), _ANSI["err" if finding.severity.value == "error" else "hist"])
            )
    for group in grouped.values():
        for finding in group:
            lines.append(paint(_finding_line(finding), _ANSI["err" if finding.severity.value == "error" else "hist"]))
    return "\n".join(lines)


# -- live --------------------------------------------------------------------------------------------
class LiveDisplay:
    """A notebook display that follows its session: shown once with a ``display_id``, then
    updated in place as spans end (at most every ``interval`` seconds; a one-shot timer
    delivers the last change, so nothing runs while nothing changes). The notebook keeps the
    last update as the cell's output."""

    interval = 0.25

    def __init__(self, render: Any, follow: Optional[SpanKeep] = None) -> None:
        self._render = render
        self._follow = follow  # the spans whose changes it follows (until final)
        self._handle: Any = None
        self._lock = threading.Lock()
        self._last = 0.0
        self._timer: Any = None

    def show(self) -> None:
        from IPython.display import HTML, display

        self._handle = display(HTML(self._render()), display_id=True)
        if self._follow is not None:
            self._follow.listen(self.changed)

    def changed(self) -> None:
        if self._handle is None:
            return
        with self._lock:
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._push)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._push()

    def _push(self) -> None:
        from IPython.display import HTML

        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        try:
            self._handle.update(HTML(self._render()))
        except Exception:  # a display must never break the agent
            logging.getLogger("sessionkit").debug("sessionkit: could not update a live display", exc_info=True)

    def final(self) -> None:
        """Push the last state now (the session ended) and stop following."""
        if self._follow is not None:
            self._follow.listen(None)
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if self._handle is not None:
            self._push()

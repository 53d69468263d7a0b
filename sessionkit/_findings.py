"""Findings: structured facts about a session or a turn (what went wrong, and what to do),
detected live as the session's spans and turns end.

A ``Finding`` has a kind, a severity, a one-line message, the figures that show it and the ids
of the spans that are its evidence. Detectors make them: each is a small class behind one
interface (``Detector``: ``span_ended``, ``turn_ended``, ``session_ended``), one instance per
session, fed by the span processor's thread. A detector looks at an LLM call, a tool call or a
failed span in O(1) and keeps bounded state; the spans that are neither cost it nothing (the
session does not call it for them).

``SessionFindings`` is a session's sink: it makes the session's detectors on first use, keeps
what they report (once per finding), logs each on the ``sessionkit`` logger, and writes it as a
``sessionkit.finding`` event on the session's record and, while it is open, on the turn's root.
sessionkit's own figures that are not spans (history loads, channels, budgets) report to the
same sink.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Optional, Union

from . import semconv
from ._values import as_count

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "DETECTORS",
    "FINDING_KINDS",
    "THRESHOLDS",
    "Detector",
    "EndedSpan",
    "EndedTurn",
    "Finding",
    "FindingSink",
    "SessionFindings",
    "Severity",
    "request_fingerprint",
]

logger = logging.getLogger("sessionkit")

Figure = Union[int, float, str]


class Severity(str, Enum):
    """How much a finding matters: ``info`` (worth knowing), ``warning`` (costs you), ``error``
    (broke or will break the session)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_LOG_LEVELS = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.ERROR: logging.ERROR}


@dataclass(frozen=True)
class Finding:
    """A structured fact about a session or one of its turns."""

    kind: str
    """What was found: ``loop``, ``retry_storm``, ``context_growth``, ... (docs/insights.md)."""
    severity: Severity
    message: str
    """One line: what happened and what to do."""
    figures: Mapping[str, Figure] = field(default_factory=dict)
    """The numbers that show it (counts, tokens, USD, seconds, shares)."""
    evidence: tuple[str, ...] = ()
    """The ids (16 hex digits) of the spans that show it, oldest first (at most 20)."""
    turn: Optional[int] = None
    """The turn it is about, or None: the session as a whole."""
    time_ns: int = 0
    """When it was found (ns since the epoch)."""
    session_id: Optional[str] = None
    """The session it is about."""

    def attributes(self) -> dict[str, Any]:
        """The finding as the attributes of a ``sessionkit.finding`` event."""
        attrs: dict[str, Any] = {
            semconv.FINDING_KIND: self.kind,
            semconv.FINDING_SEVERITY: self.severity.value,
            semconv.FINDING_MESSAGE: self.message,
            semconv.FINDING_FIGURES: json.dumps(dict(self.figures), ensure_ascii=False, sort_keys=True),
        }
        if self.evidence:
            attrs[semconv.FINDING_EVIDENCE] = list(self.evidence)
        if self.turn is not None:
            attrs[semconv.FINDING_TURN] = self.turn
        return attrs

    @classmethod
    def from_attributes(
        cls, attrs: Mapping[str, Any], time_ns: int = 0, session_id: Optional[str] = None
    ) -> Optional[Finding]:
        """A finding read back from an event's attributes (the store, an OTLP receiver), or None."""
        kind = attrs.get(semconv.FINDING_KIND)
        if not isinstance(kind, str):
            return None
        try:
            severity = Severity(attrs.get(semconv.FINDING_SEVERITY, "info"))
        except ValueError:
            severity = Severity.INFO
        try:
            figures = json.loads(attrs.get(semconv.FINDING_FIGURES) or "{}")
        except (TypeError, ValueError):
            figures = {}
        turn = attrs.get(semconv.FINDING_TURN)
        return cls(
            kind=kind,
            severity=severity,
            message=str(attrs.get(semconv.FINDING_MESSAGE, "")),
            figures=figures if isinstance(figures, dict) else {},
            evidence=tuple(str(e) for e in attrs.get(semconv.FINDING_EVIDENCE) or ()),
            turn=turn if isinstance(turn, int) else None,
            time_ns=time_ns,
            session_id=session_id,
        )


MAX_EVIDENCE = 20
MAX_FINDINGS = 100  # per session; more are counted, not kept


def _hex(span_id: int) -> str:
    return format(span_id, "016x")


class EndedSpan:
    """What a detector sees of an ended span of the session: an LLM call, a tool call, or a
    span that failed."""

    __slots__ = ("span", "attributes", "turn", "llm", "tool", "failed")

    def __init__(
        self,
        span: ReadableSpan,
        attributes: Mapping[str, Any],
        turn: Optional[int],
        llm: bool,
        tool: bool,
        failed: bool,
    ) -> None:
        self.span = span
        self.attributes = attributes
        self.turn = turn
        """The index of the turn it ended in (None: outside the session's turns)."""
        self.llm = llm
        """An LLM call the session counts (the wire's span, not a framework's twin of it)."""
        self.tool = tool
        """A tool call (``gen_ai.operation.name=execute_tool``)."""
        self.failed = failed
        """Its status is ``ERROR``."""

    @property
    def span_id(self) -> str:
        context = self.span.context
        return _hex(context.span_id) if context is not None else ""

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def duration_seconds(self) -> float:
        start, end = self.span.start_time, self.span.end_time
        return (end - start) / 1e9 if start is not None and end is not None else 0.0

    @property
    def end_ns(self) -> int:
        return self.span.end_time or 0

    @property
    def input_tokens(self) -> int:
        return as_count(self.attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)) or 0

    @property
    def output_tokens(self) -> int:
        return as_count(self.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)) or 0

    @property
    def cost_usd(self) -> float:
        cost = self.attributes.get(semconv.LLM_COST_TOTAL)
        return float(cost) if isinstance(cost, (int, float)) else 0.0

    @property
    def model(self) -> Optional[str]:
        found = self.attributes.get(semconv.GEN_AI_RESPONSE_MODEL) or self.attributes.get(semconv.GEN_AI_REQUEST_MODEL)
        return str(found) if found else None

    @property
    def status_code(self) -> Optional[int]:
        code = self.attributes.get(semconv.HTTP_RESPONSE_STATUS_CODE)
        return code if isinstance(code, int) else None

    @property
    def retryable_failure(self) -> bool:
        """Failed the way a retry answers: rate limited, overloaded or a server error, or timed out."""
        code = self.status_code
        if code is not None and (code == 429 or code >= 500):
            return True
        if not self.failed:
            return False
        error = str(self.attributes.get(semconv.ERROR_TYPE) or "").lower()
        return "timeout" in error or "timedout" in error or "connect" in error or (code is None and self.llm)


class EndedTurn:
    """What a detector sees of an ended turn."""

    __slots__ = ("index", "_span_id", "input_tokens", "output_tokens", "cost_usd", "duration_seconds", "failed")

    def __init__(
        self,
        index: int,
        span_id: int,
        input_tokens: int,
        output_tokens: int,
        cost_usd: Optional[float],
        duration_seconds: float,
        failed: bool,
    ) -> None:
        self.index = index
        self._span_id = span_id
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cost_usd = cost_usd
        self.duration_seconds = duration_seconds
        self.failed = failed

    @property
    def span_id(self) -> Optional[str]:
        """The id of the turn's root span (16 hex digits), if known."""
        return _hex(self._span_id) if self._span_id else None


class FindingSink:
    """Where a detector reports (``SessionFindings``), and what it may read: the thresholds and
    the models' context windows."""

    thresholds: Mapping[str, float]

    def report(self, finding: Finding, key: Any = None) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def context_window(self, model: str, provider: Optional[str]) -> Optional[int]:
        """The model's context window in tokens (the ``context_windows`` setting, then the price
        table), or None: unknown."""
        return None


class Detector:
    """One kind of finding, detected in one session. Subclass it, set ``kind``, and override
    what you need; register the class with the ``detectors`` setting. Its methods run on the
    thread that ended the span, one call at a time per session; they must be quick (O(1) per
    span) and keep bounded state. ``self.report(...)`` files a finding (once per ``key``)."""

    kind: ClassVar[str] = ""
    sees: ClassVar[frozenset[str]] = frozenset({"llm", "tool", "failed"})
    """Which ended spans ``span_ended`` is called for: ``"llm"`` (LLM calls), ``"tool"`` (tool
    calls), ``"tool_args"`` (tool calls whose arguments are known: captured, or their
    fingerprint), ``"failed"`` (any failed span), ``"recovery"`` (LLM and tool calls that went
    well, once a span of the session has failed: what ends a burst or a streak)."""
    __slots__ = ("sink", "__dict__")  # (a subclass of yours keeps attributes as it likes)

    def __init__(self, sink: FindingSink) -> None:
        self.sink = sink

    @property
    def thresholds(self) -> Mapping[str, float]:
        return self.sink.thresholds

    def report(
        self,
        severity: Severity,
        message: str,
        figures: Optional[Mapping[str, Figure]] = None,
        evidence: Iterable[str] = (),
        turn: Optional[int] = None,
        key: Any = None,
        kind: Optional[str] = None,
    ) -> None:
        """File a finding of this detector's kind (or ``kind``); a second one with the same
        ``key`` (default: the turn) is dropped."""
        found = Finding(
            kind=kind or self.kind,
            severity=severity,
            message=message,
            figures=dict(figures or {}),
            evidence=tuple(evidence)[-MAX_EVIDENCE:],
            turn=turn,
            time_ns=time.time_ns(),
        )
        self.sink.report(found, key if key is not None else turn)

    def span_ended(self, span: EndedSpan) -> None:
        """An LLM call, a tool call or a failed span of the session ended."""

    def turn_ended(self, turn: EndedTurn) -> None:
        """A turn of the session ended."""

    def session_ended(self) -> None:
        """The session ended (before its record goes out)."""


def request_fingerprint(body: Union[bytes, bytearray, memoryview]) -> int:
    """A cheap fingerprint of an LLM request's body, the same for the same bytes: its length and
    the checksums of its first and last 2 KB (a new message changes the length; O(1) in the body)."""
    head, tail = bytes(body[:2048]), bytes(body[-2048:])
    return (len(body) << 32) ^ zlib.crc32(head) ^ (zlib.crc32(tail) << 1)


# -- the built-in detectors -------------------------------------------------------------------
class _Calls:
    """The calls of one tool with one set of arguments in a session."""

    __slots__ = ("name", "calls", "turn", "in_turn", "most", "ids")

    def __init__(self, name: str, turn: Optional[int]) -> None:
        self.name = name
        self.calls = 0
        self.turn = turn  # the turn of the newest call
        self.in_turn = 0  # calls in that turn
        self.most = 0  # most calls in one turn
        self.ids: list[int] = []  # the newest calls' span ids (at most MAX_EVIDENCE)


class LoopDetector(Detector):
    """The same tool with the same arguments called ``loop`` times (default 3) in a turn, or
    across the session's turns; the same LLM request sent again after it was answered (nothing
    new in it). It remembers the last 32 distinct calls and requests of the session: a loop
    repeats within that many."""

    kind = "loop"
    sees = frozenset({"llm", "tool_args"})
    KEPT = 32
    __slots__ = ("_tools", "_answered", "_looping")

    def __init__(self, sink: FindingSink) -> None:
        super().__init__(sink)
        self._tools: dict[int, _Calls] = {}  # hash(tool, arguments) -> its calls
        self._looping: list[_Calls] = []  # the calls at the threshold in their turn (checked at its end)
        # request fingerprint -> [sends, span ids, model]
        self._answered: dict[int, list[Any]] = {}

    def span_ended(self, span: EndedSpan) -> None:
        attrs = span.attributes
        if span.tool:
            key = hash(
                (
                    attrs.get(semconv.GEN_AI_TOOL_NAME),
                    attrs.get(semconv.GEN_AI_TOOL_CALL_ARGUMENTS) or attrs.get(semconv.TOOL_CALL_FINGERPRINT),
                )
            )
            turn = span.turn
            entry = self._tools.get(key)
            if entry is None:
                tools = self._tools
                if len(tools) >= self.KEPT:  # (the oldest first seen goes)
                    del tools[next(iter(tools))]
                tools[key] = entry = _Calls(str(attrs.get(semconv.GEN_AI_TOOL_NAME) or span.name), turn)
            elif entry.turn != turn:  # another turn: its count starts again
                entry.turn, entry.in_turn = turn, 0
            entry.calls += 1
            entry.in_turn += 1
            if entry.in_turn > entry.most:
                entry.most = entry.in_turn
            if entry.in_turn == self.thresholds["loop"]:
                self._looping.append(entry)
            ids = entry.ids
            ids.append(span.span.context.span_id)
            if len(ids) > MAX_EVIDENCE:
                del ids[0]
        elif span.llm and not span.failed:
            fingerprint = attrs.get(semconv.LLM_REQUEST_FINGERPRINT)
            if not isinstance(fingerprint, int):
                return
            answered = self._answered
            sent = answered.pop(fingerprint, None)
            if sent is None:
                if len(answered) >= self.KEPT:
                    del answered[next(iter(answered))]
                answered[fingerprint] = [1, [span.span.context.span_id], span.model]
                return
            answered[fingerprint] = sent
            sent[0] += 1
            sent[1] = (sent[1] + [span.span.context.span_id])[-MAX_EVIDENCE:]
            if sent[0] == 2:  # reported at once: each further send is money spent on the same answer
                self.report(
                    Severity.WARNING,
                    f"the same request to {sent[2] or 'the model'} was sent again after it was answered, "
                    "with no new message: a retry loop; stop resending an answered request",
                    {"sends": sent[0], "model": sent[2] or ""},
                    [_hex(i) for i in sent[1]],
                    span.turn,
                    key=("llm", fingerprint),
                )

    def turn_ended(self, turn: EndedTurn) -> None:
        if not self._looping:
            return
        still = []
        for entry in self._looping:
            if entry.turn == turn.index:
                self._report_tool(entry.name, entry.in_turn, entry.ids[-entry.in_turn :], turn.index)
            elif entry.turn is not None and entry.turn > turn.index:
                still.append(entry)  # (a later turn, still open)
        self._looping = still

    def session_ended(self) -> None:
        threshold = int(self.thresholds["loop"])
        for entry in list(self._tools.values()):
            if entry.calls >= threshold and entry.most < threshold:  # (a turn's own loop is reported)
                self._report_tool(entry.name, entry.calls, entry.ids, None)

    def _report_tool(self, name: str, calls: int, ids: Sequence[int], turn: Optional[int]) -> None:
        evidence = [_hex(i) for i in ids]
        if turn is not None:
            self.report(
                Severity.WARNING,
                f"tool {name} was called {calls} times with the same arguments in turn {turn}: the agent is "
                "looping; give it the tool's result in a form it accepts, or cap the repeats",
                {"tool": name, "calls": calls},
                evidence,
                turn,
                key=("tool", name, turn, ids[0] if ids else 0),
            )
            return
        self.report(  # (across turns: not a loop of the agent's, work done again: worth a cache)
            Severity.INFO,
            f"tool {name} was called {calls} times with the same arguments across the session's turns: "
            "keep its result for the session instead of fetching it again",
            {"tool": name, "calls": calls},
            evidence,
            None,
            key=("tool", name, None, ids[0] if ids else 0),
        )


class RetryStormDetector(Detector):
    """LLM or tool calls failing the way retries answer (429, 5xx, timeouts) ``retry_storm``
    times (default 3) within a minute, with the time and tokens they wasted."""

    kind = "retry_storm"
    sees = frozenset({"failed", "recovery"})
    WINDOW_NS = 60_000_000_000
    __slots__ = ("_burst",)

    def __init__(self, sink: FindingSink) -> None:
        super().__init__(sink)
        # the failed calls of the burst: (end ns, span id, error, seconds, tokens billed, turn)
        self._burst: deque[tuple[int, int, str, float, int, Optional[int]]] = deque(maxlen=MAX_EVIDENCE)

    def span_ended(self, span: EndedSpan) -> None:
        if not (span.llm or span.tool):
            return
        burst = self._burst
        if not span.failed and not burst:
            return  # (a call that went well, no burst going on)
        if span.retryable_failure:
            end = span.end_ns
            while burst and end - burst[0][0] > self.WINDOW_NS:
                burst.popleft()
            error = str(span.status_code or span.attributes.get(semconv.ERROR_TYPE) or "error")
            tokens = span.input_tokens + span.output_tokens
            burst.append((end, span.span.context.span_id, error, span.duration_seconds, tokens, span.turn))
            return
        if burst:
            if len(burst) >= self.thresholds["retry_storm"]:
                self._flush(span)  # the call that got through ends the burst: its prompt was resent each time
            burst.clear()

    def turn_ended(self, turn: EndedTurn) -> None:
        if self._burst:
            self.session_ended()  # (a burst still failing when its turn ended)

    def session_ended(self) -> None:
        if self._burst and len(self._burst) >= self.thresholds["retry_storm"]:
            self._flush(None)
            self._burst.clear()

    def _flush(self, through: Optional[EndedSpan]) -> None:
        burst = list(self._burst)
        codes = sorted({b[2] for b in burst})
        wasted_seconds = round(sum(b[3] for b in burst), 3)
        billed = sum(b[4] for b in burst)
        resent = through.input_tokens * len(burst) if through is not None and through.llm else 0
        figures: dict[str, Figure] = {
            "failed_calls": len(burst),
            "errors": ", ".join(codes),
            "wasted_seconds": wasted_seconds,
            "wasted_tokens": billed,
            "resent_input_tokens": resent,
        }
        prompt_cost = through.attributes.get(semconv.LLM_COST_PROMPT) if through is not None else None
        if through is not None and through.input_tokens and isinstance(prompt_cost, (int, float)):
            # what the resent prompts would cost at the call's input price (providers bill some failures)
            figures["wasted_usd"] = round(prompt_cost / through.input_tokens * (billed + resent), 8)
        self.report(
            Severity.WARNING,
            f"{len(burst)} calls failed with {', '.join(codes)} within a minute and were retried "
            f"({wasted_seconds:g} s lost): back off longer, lower concurrency, or raise the rate limit",
            figures,
            [_hex(b[1]) for b in burst],
            burst[-1][5],
            key=("storm", burst[0][1]),
        )


class ContextGrowthDetector(Detector):
    """A turn's largest prompt (input tokens of one LLM call) at more than ``context_window_share``
    (default 0.8) of its model's context window, with the turn where it overflows at the
    session's rate of growth; and prompts that grew on every one of ``growth_turns`` (5) turns."""

    kind = "context_growth"
    sees = frozenset({"llm"})
    KEPT_TURNS = 32
    __slots__ = ("_largest", "_history", "_growth_reported")

    def __init__(self, sink: FindingSink) -> None:
        super().__init__(sink)
        self._largest: dict[
            int, tuple[int, Optional[str], Optional[str], str]
        ] = {}  # open turn -> (tokens, model, provider, span id)
        self._history: deque[tuple[int, int]] = deque(maxlen=self.KEPT_TURNS)  # (turn, largest prompt)
        self._growth_reported = False

    def span_ended(self, span: EndedSpan) -> None:
        if span.turn is None:
            return
        tokens = span.input_tokens
        if tokens and tokens > self._largest.get(span.turn, (0, None, None, ""))[0]:
            if len(self._largest) >= self.KEPT_TURNS:
                self._largest.pop(next(iter(self._largest)))
            provider = span.attributes.get(semconv.GEN_AI_PROVIDER_NAME)
            self._largest[span.turn] = (tokens, span.model, str(provider) if provider else None, span.span_id)

    def turn_ended(self, turn: EndedTurn) -> None:
        found = self._largest.pop(turn.index, None)
        if found is None:
            return
        tokens, model, provider, span_id = found
        history = self._history
        history.append((turn.index, tokens))
        rate = self._rate()
        window = self.sink.context_window(model, provider) if model else None
        if window:
            share = tokens / window
            if share >= self.thresholds["context_window_share"]:
                figures: dict[str, Figure] = {
                    "input_tokens": tokens,
                    "context_window": window,
                    "share": round(share, 3),
                    "model": model or "",
                }
                overflow = ""
                if rate > 0 and share < 1:
                    at = turn.index + max(1, -(-(window - tokens) // int(rate)))
                    figures["overflow_turn"] = at
                    figures["growth_per_turn"] = int(rate)
                    overflow = f"; at +{int(rate):,} tokens a turn it overflows at turn {at}"
                self.report(
                    Severity.ERROR if share >= 1 else Severity.WARNING,
                    f"turn {turn.index} sent {tokens:,} input tokens, {share:.0%} of {model}'s "
                    f"{window:,}-token context window{overflow}: trim or summarise the history",
                    figures,
                    [span_id],
                    turn.index,
                )
        growth = int(self.thresholds["growth_turns"])
        if not self._growth_reported and len(history) >= growth:
            recent = list(history)[-growth:]
            if all(b[1] > a[1] for a, b in zip(recent, recent[1:])):
                self._growth_reported = True
                self.report(
                    Severity.INFO,
                    f"input tokens grew on each of the last {growth} turns ({recent[0][1]:,} to "
                    f"{recent[-1][1]:,}, +{int(rate):,} a turn): the whole history is resent each turn; "
                    "cache the prompt prefix, trim or summarise it",
                    {"from_tokens": recent[0][1], "to_tokens": recent[-1][1], "growth_per_turn": int(rate)},
                    [span_id],
                    turn.index,
                    key="growth",
                )

    def _rate(self) -> float:
        """Input tokens gained per turn over the kept turns (least squares; 0 with fewer than 2)."""
        points = list(self._history)
        if len(points) < 2:
            return 0.0
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        denominator = sum((x - mx) ** 2 for x in xs)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / denominator if denominator else 0.0


class _SpikeDetector(Detector):
    """A turn's figure at more than ``spike_factor`` (default 3) times the median of the
    session's earlier turns (at least 3 of them)."""

    KEPT_TURNS = 32
    MIN_TURNS = 3
    __slots__ = ("_values", "_sorted")

    def __init__(self, sink: FindingSink) -> None:
        super().__init__(sink)
        self._values: deque[float] = deque()  # the newest KEPT_TURNS values, in turn order ...
        self._sorted: list[float] = []  # ... and sorted (the median in O(log n) per turn)

    def value(self, turn: EndedTurn) -> Optional[float]:  # pragma: no cover - overridden
        raise NotImplementedError

    def turn_ended(self, turn: EndedTurn) -> None:
        value = self.value(turn)
        if value is None:
            return
        values, ordered = self._values, self._sorted
        count = len(ordered)
        if count >= self.MIN_TURNS:
            middle = count // 2
            median = ordered[middle] if count % 2 else (ordered[middle - 1] + ordered[middle]) / 2
            if median > 0 and value > self.thresholds["spike_factor"] * median:
                self.spiked(turn, value, median)
        values.append(value)
        bisect.insort(ordered, value)
        if count >= self.KEPT_TURNS:
            del ordered[bisect.bisect_left(ordered, values.popleft())]

    def spiked(self, turn: EndedTurn, value: float, median: float) -> None:  # pragma: no cover
        raise NotImplementedError


class CostSpikeDetector(_SpikeDetector):
    kind = "cost_spike"
    __slots__ = ()

    def value(self, turn: EndedTurn) -> Optional[float]:
        return turn.cost_usd

    def spiked(self, turn: EndedTurn, value: float, median: float) -> None:
        self.report(
            Severity.WARNING,
            f"turn {turn.index} cost ${value:.4f}, {value / median:.1f}x the session's median turn "
            f"(${median:.4f}): look at its LLM calls (a larger model, a longer prompt, more calls)",
            {"cost_usd": round(value, 8), "median_usd": round(median, 8), "ratio": round(value / median, 2)},
            [turn.span_id] if turn.span_id else [],
            turn.index,
        )


class SlowTurnDetector(_SpikeDetector):
    """A turn that takes more than ``spike_factor`` times the median turn, and at least
    ``slow_turn_seconds`` (1) longer than it: not the jitter of turns that take milliseconds."""

    kind = "slow_turn"
    __slots__ = ()

    def value(self, turn: EndedTurn) -> Optional[float]:
        return turn.duration_seconds

    def spiked(self, turn: EndedTurn, value: float, median: float) -> None:
        if value - median < self.thresholds["slow_turn_seconds"]:
            return
        self.report(
            Severity.INFO,
            f"turn {turn.index} took {value:.2f} s, {value / median:.1f}x the session's median turn "
            f"({median:.2f} s): look at its slowest span",
            {"seconds": round(value, 3), "median_seconds": round(median, 3), "ratio": round(value / median, 2)},
            [turn.span_id] if turn.span_id else [],
            turn.index,
        )


class ErrorStreakDetector(Detector):
    """``error_streak`` (default 3) failed turns in a row, or failed tool calls in a row."""

    kind = "error_streak"
    sees = frozenset({"failed", "recovery"})
    __slots__ = ("_tools", "_turns", "_turn_streak")

    def __init__(self, sink: FindingSink) -> None:
        super().__init__(sink)
        self._tools: list[str] = []
        self._turns: list[str] = []
        self._turn_streak = 0

    def span_ended(self, span: EndedSpan) -> None:
        if not span.tool:
            return
        if not span.failed:
            if self._tools:
                self._tools = []
            return
        self._tools = (self._tools + [span.span_id])[-MAX_EVIDENCE:]
        if len(self._tools) == self.thresholds["error_streak"]:
            name = span.attributes.get(semconv.GEN_AI_TOOL_NAME) or span.name
            self.report(
                Severity.ERROR,
                f"{len(self._tools)} tool calls failed in a row (the last: {name}): the agent is not "
                "recovering; check the tool, or stop the run after repeated failures",
                {"failed_tool_calls": len(self._tools)},
                self._tools,
                span.turn,
                key=("tools", self._tools[0]),
            )

    def turn_ended(self, turn: EndedTurn) -> None:
        if not turn.failed:
            if self._turn_streak:
                self._turns, self._turn_streak = [], 0
            return
        self._turn_streak += 1
        if turn.span_id:
            self._turns = (self._turns + [turn.span_id])[-MAX_EVIDENCE:]
        if self._turn_streak == self.thresholds["error_streak"]:
            self.report(
                Severity.ERROR,
                f"{self._turn_streak} turns failed in a row (turns {turn.index - self._turn_streak + 1}"
                f" to {turn.index}): the conversation is broken; look at the first failure",
                {"failed_turns": self._turn_streak},
                self._turns,
                turn.index,
                key=("turns", turn.index),
            )


DETECTORS: dict[str, type[Detector]] = {
    d.kind: d
    for d in (
        LoopDetector,
        RetryStormDetector,
        ContextGrowthDetector,
        CostSpikeDetector,
        SlowTurnDetector,
        ErrorStreakDetector,
    )
}
"""The built-in detectors by kind."""

FINDING_KINDS = (
    *DETECTORS,
    "history_redundant",
    "channel_retry_storm",
    "channel_leaked",
    "budget",
)
"""Every built-in kind of finding: the detectors' and those sessionkit's own figures report."""

THRESHOLDS: dict[str, float] = {
    "loop": 3,
    "retry_storm": 3,
    "context_window_share": 0.8,
    "growth_turns": 5,
    "spike_factor": 3.0,
    "slow_turn_seconds": 1.0,
    "error_streak": 3,
}
"""The detectors' thresholds and their defaults (the ``finding_thresholds`` setting overrides)."""


class SessionFindings(FindingSink):
    """A session's findings and its detectors (made on first use)."""

    __slots__ = (
        "lock",
        "_found_lock",
        "_found",
        "_keys",
        "dropped",
        "_kinds",
        "_publish",
        "thresholds",
        "_windows",
        "_session_id",
        "span_hooks",
        "turn_hooks",
        "_ends",
        "armed",
    )

    def __init__(
        self,
        session_id: str,
        kinds: frozenset[str],
        thresholds: Mapping[str, float],
        windows: Callable[[str, Optional[str]], Optional[int]],
        extra: Sequence[type[Detector]],
        publish: Callable[[Finding], None],
    ) -> None:
        self.lock = threading.Lock()
        """The detectors' state: one hook call at a time per session."""
        self._found_lock = threading.Lock()  # what was found (taken inside a hook's report too)
        self._session_id = session_id
        self._kinds = kinds
        self.thresholds = thresholds
        self._windows = windows
        self._publish = publish
        self._found: list[Finding] = []
        self._keys: set[Any] = set()
        self.dropped = 0
        made: list[Detector] = []
        for detector in [*(d for k, d in DETECTORS.items() if k in kinds), *extra]:
            try:
                made.append(detector(self))
            except Exception:
                logger.warning("sessionkit: could not make the detector %r (left out)", detector, exc_info=True)

        # Each hook's bound methods, of the detectors that override it (the base's do nothing);
        # span_ended's by the kind of span: (llm, tool, failed) -> the detectors that see it
        def overriding(hook: str) -> list[Detector]:
            return [d for d in made if getattr(type(d), hook) is not getattr(Detector, hook)]

        def sees(d: Detector, llm: bool, tool: bool, args: bool, failed: bool, armed: bool) -> bool:
            wants = d.sees
            return (
                (llm and "llm" in wants)
                or (tool and "tool" in wants)
                or (tool and args and "tool_args" in wants)
                or (failed and "failed" in wants)
                or (armed and not failed and (llm or tool) and "recovery" in wants)
            )

        self.span_hooks = tuple(
            tuple(
                d.span_ended
                for d in overriding("span_ended")
                if sees(d, bool(key & 16), bool(key & 8), bool(key & 4), bool(key & 2), bool(key & 1))
            )
            for key in range(32)
        )
        """By ``llm << 4 | tool << 3 | args << 2 | failed << 1 | armed`` (``args``: a tool call
        whose arguments are known): the ``span_ended`` of the detectors that see such a span (a
        tuple lookup, no allocation, per span; ``SessionInsights.span_ended`` computes it)."""
        self.armed = False
        """A span of the session has failed (detectors that see ``recovery`` get successes now)."""
        self.turn_hooks = tuple(d.turn_ended for d in overriding("turn_ended"))
        self._ends = tuple(d.session_ended for d in overriding("session_ended"))

    @property
    def findings(self) -> list[Finding]:
        with self._found_lock:
            return list(self._found)

    def context_window(self, model: str, provider: Optional[str]) -> Optional[int]:
        return self._windows(model, provider)

    def report(self, finding: Finding, key: Any = None) -> None:
        if finding.kind in FINDING_KINDS and finding.kind not in self._kinds:
            return  # (switched off)
        with self._found_lock:
            once = (finding.kind, key)
            if once in self._keys:
                return
            self._keys.add(once)
            if len(self._found) >= MAX_FINDINGS:
                self.dropped += 1
                return
            if finding.session_id is None:
                finding = dataclasses.replace(finding, session_id=self._session_id)
            self._found.append(finding)
        try:
            self._publish(finding)
        except Exception:
            logger.debug("sessionkit: could not write a finding (kept in the session)", exc_info=True)

    def run(self, hooks: tuple[Callable[..., None], ...], *args: Any) -> None:
        """``args`` to the detectors' ``hooks`` (``span_hooks[...]``, ``turn_hooks``), one at a
        time per session; a hook that raises is logged at debug level and skipped."""
        with self.lock:  # (one call at a time per session: detectors keep plain state)
            for hook in hooks:
                try:
                    hook(*args)
                except Exception:
                    logger.debug("sessionkit: the %s detector failed (ignored)", hook, exc_info=True)

    def turn_ended(self, turn: EndedTurn) -> None:
        self.run(self.turn_hooks, turn)

    def session_ended(self) -> None:
        self.run(self._ends)


def log_finding(finding: Finding, session_id: str) -> None:
    """The finding on the ``sessionkit`` logger, once, at its severity's level."""
    where = f" turn {finding.turn}" if finding.turn is not None else ""
    logger.log(
        _LOG_LEVELS[finding.severity],
        "sessionkit: %s in session %s%s: %s",
        finding.kind,
        session_id,
        where,
        finding.message,
        extra={"sessionkit_finding": finding},  # (a handler can tell a finding from other warnings)
    )

"""SessionInsights: a session's findings and budget, fed by the span processor as its spans
end (``Session.on_span_end``), its turns start and end, and it ends.

The session makes one on first use: at its start when it has a budget, else with the first LLM
call, tool call or failed span in it, so a session that has none of those costs nothing. What is
found is published through the session (a log line, an event on its record and on the turn's
root); the budget's refusal is asked for by the wire hook before each LLM request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Optional

from . import semconv
from ._budget import Budget, BudgetMeter
from ._findings import THRESHOLDS, EndedSpan, EndedTurn, Finding, SessionFindings
from ._prices import context_window

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from ._config import Config

__all__ = ["SessionInsights"]

logger = logging.getLogger("sessionkit")


class SessionInsights:
    __slots__ = ("findings", "meter")

    def __init__(
        self, config: Config, session_id: str, budget: Optional[Budget], publish: Callable[[Finding], None]
    ) -> None:
        kinds = frozenset(config.findings)
        thresholds = {**THRESHOLDS, **config.finding_thresholds}
        windows = config.context_windows

        def window(model: str, provider: Optional[str]) -> Optional[int]:
            return windows.get(model) or context_window(model, provider)

        self.findings = SessionFindings(session_id, kinds, thresholds, window, config.detectors, publish)
        self.meter: Optional[BudgetMeter] = None
        if budget is not None:
            self.meter = BudgetMeter(budget, session_id, self.findings)

    @staticmethod
    def wanted(config: Config) -> bool:
        """Whether a session of this client looks for findings at all."""
        return bool(config.findings) or bool(config.detectors)

    def span_ended(
        self, span: ReadableSpan, attrs: Mapping[str, Any], turn: Optional[int], llm: bool, tool: bool, failed: bool
    ) -> None:
        """An LLM call, tool call or failed span of the session ended. Never raises."""
        try:
            findings = self.findings
            if failed:
                findings.armed = True
            args = tool and (semconv.TOOL_CALL_FINGERPRINT in attrs or semconv.GEN_AI_TOOL_CALL_ARGUMENTS in attrs)
            # (the index of span_hooks, computed here: this runs for every LLM call, tool call and failure)
            hooks = findings.span_hooks[(llm << 4) | (tool << 3) | (args << 2) | (failed << 1) | findings.armed]
            meter = self.meter
            if hooks or (meter is not None and llm):
                ended = EndedSpan(span, attrs, turn, llm, tool, failed)
                if meter is not None and llm:
                    meter.llm_call(ended.input_tokens + ended.output_tokens, ended.cost_usd)
                if hooks:
                    with findings.lock:  # (findings.run, inlined on the per-span path)
                        for hook in hooks:
                            try:
                                hook(ended)
                            except Exception:
                                logger.debug("sessionkit: a detector failed (ignored)", exc_info=True)
        except Exception:
            logger.debug("sessionkit: could not look for findings (ignored)", exc_info=True)

    def turn_started(self) -> None:
        if self.meter is not None:
            self.meter.turn()

    def turn_ended(self, turn: Any, failed: bool) -> None:
        """A turn of the session ended (an explicit one just before its root span). Never raises."""
        findings = self.findings
        hooks = findings.turn_hooks
        if not hooks:
            return
        try:
            figures = turn.figures
            ended = EndedTurn(
                turn.index,
                turn.span_id,
                figures.input_tokens if figures is not None else 0,
                figures.output_tokens if figures is not None else 0,
                figures.cost_usd if figures is not None else None,
                turn.duration_seconds,
                failed,
            )
            findings.run(hooks, ended)
        except Exception:
            logger.debug("sessionkit: could not look for findings (ignored)", exc_info=True)

    def session_ended(self) -> None:
        self.findings.session_ended()

    def refuse(self) -> None:
        if self.meter is not None:
            self.meter.refuse()

    def record_attributes(self) -> dict[str, Any]:
        found = self.findings.findings
        attrs: dict[str, Any] = {}
        if found:
            attrs[semconv.SESSION_FINDINGS] = len(found) + self.findings.dropped
            attrs[semconv.SESSION_FINDING_KINDS] = list(dict.fromkeys(f.kind for f in found))
        if self.meter is not None:
            attrs.update(self.meter.record_attributes())
        return attrs

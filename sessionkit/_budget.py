"""Budgets: what one session may spend (USD, tokens, LLM calls, turns, seconds), and what
happens when it is spent.

``Budget`` is the user's declaration (``start_session(..., budget=Budget(usd=0.50))``, or the
client-wide ``budget`` setting). ``BudgetMeter`` is one session's consumption, counted from its
LLM calls as they end (on any provider: the wire's spans), its turns as they start, and its age.
At ``warn_at`` (80%) and at 100% of a limit it reports a ``budget`` finding; past 100%
``on_exceed`` decides: ``"warn"`` (the finding is all), ``"raise"`` (the session's next LLM
request is refused before it is sent: the wire hook raises :class:`BudgetExceeded`), or a
callable (called once with the :class:`BudgetExceeded` it would raise).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

from . import semconv
from ._errors import BudgetExceeded
from ._findings import Figure, Finding, FindingSink, Severity

__all__ = ["LIMITS", "Budget", "BudgetMeter"]

LIMITS = ("usd", "tokens", "llm_calls", "turns", "seconds")
_UNITS = {"usd": "USD", "tokens": "tokens", "llm_calls": "LLM calls", "turns": "turns", "seconds": "s"}
OnExceed = Union[str, Callable[[BudgetExceeded], Any]]


@dataclass(frozen=True)
class Budget:
    """What one session may spend. Each limit is optional; at least one is set.

    ``Budget(usd=0.50, tokens=200_000, llm_calls=50, turns=20, seconds=600, on_exceed="raise")``
    """

    usd: Optional[float] = None
    tokens: Optional[int] = None
    """Input plus output tokens of the session's LLM calls."""
    llm_calls: Optional[int] = None
    turns: Optional[int] = None
    seconds: Optional[float] = None
    """Wall-clock seconds since the session started."""
    on_exceed: OnExceed = "warn"
    """``"warn"``: a finding (and a log line); ``"raise"``: the next LLM request of the session
    is refused before it is sent, with :class:`sessionkit.BudgetExceeded`; a callable: called
    once with that exception (for your own stop)."""
    warn_at: float = 0.8
    """The share of a limit at which a ``warning`` finding says it is being spent."""

    def __post_init__(self) -> None:
        given = 0
        for name in LIMITS:
            value = getattr(self, name)
            if value is None:
                continue
            given += 1
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"sessionkit: Budget({name}=...) takes a number; got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"sessionkit: Budget({name}={value!r}) must be a finite number above 0; leave it out for no limit"
                )
            if name in ("tokens", "llm_calls", "turns") and value != int(value):
                raise ValueError(f"sessionkit: Budget({name}={value!r}) takes a whole number")
        if not given:
            raise ValueError(
                "sessionkit: a Budget needs at least one limit: usd=, tokens=, llm_calls=, turns= or seconds="
            )
        if not (callable(self.on_exceed) or self.on_exceed in ("warn", "raise")):
            raise ValueError(
                f"sessionkit: Budget(on_exceed={self.on_exceed!r}) takes 'warn', 'raise' or a callable "
                "(called with the BudgetExceeded)"
            )
        if isinstance(self.warn_at, bool) or not isinstance(self.warn_at, (int, float)) or not 0 < self.warn_at <= 1:
            raise ValueError(f"sessionkit: Budget(warn_at={self.warn_at!r}) takes a share between 0 and 1, like 0.8")

    @classmethod
    def parse(cls, text: str) -> Budget:
        """A budget from ``"usd=0.5,tokens=200000,on_exceed=raise"`` (the ``SESSIONKIT_BUDGET``
        variable)."""
        fields: dict[str, Any] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or name not in (*LIMITS, "on_exceed", "warn_at"):
                raise ValueError(
                    f"sessionkit: cannot read the budget {text!r}: write name=value pairs of "
                    f"{', '.join(LIMITS)}, on_exceed, warn_at, separated by commas"
                )
            if name == "on_exceed":
                fields[name] = value
            elif name in ("tokens", "llm_calls", "turns"):
                fields[name] = int(value)
            else:
                fields[name] = float(value)
        return cls(**fields)

    def limits(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in LIMITS if getattr(self, name) is not None}


class BudgetMeter:
    """One session's consumption of its budget, and what happens at its limits."""

    __slots__ = ("budget", "_session_id", "_sink", "_lock", "consumed", "_started", "_said", "refusal", "_limits")

    def __init__(self, budget: Budget, session_id: str, sink: FindingSink) -> None:
        self.budget = budget
        self._session_id = session_id
        self._sink = sink
        self._lock = threading.Lock()
        self._limits = budget.limits()
        self.consumed: dict[str, float] = {"usd": 0.0, "tokens": 0, "llm_calls": 0, "turns": 0, "seconds": 0.0}
        self._started = time.monotonic()
        self._said: set[tuple[str, str]] = set()
        self.refusal: Optional[BudgetExceeded] = None
        """Set once a limit is passed with ``on_exceed="raise"``: what the next request raises."""

    def llm_call(self, tokens: int, cost_usd: float) -> None:
        with self._lock:
            consumed = self.consumed
            consumed["llm_calls"] += 1
            consumed["tokens"] += tokens
            consumed["usd"] += cost_usd
        self.check()

    def turn(self) -> None:
        with self._lock:
            self.consumed["turns"] += 1
        self.check()

    def check(self) -> None:
        """Compare the consumption with the limits: findings at ``warn_at`` and 100%, then
        ``on_exceed`` once."""
        with self._lock:
            self.consumed["seconds"] = time.monotonic() - self._started
            crossed: list[tuple[str, str, float, float]] = []
            for name, limit in self._limits.items():
                used = self.consumed[name]
                for level, share in (("exceeded", 1.0), ("warning", self.budget.warn_at)):
                    if used >= limit * share:
                        if (name, level) not in self._said:
                            self._said.add((name, level))
                            if level == "exceeded":
                                self._said.add((name, "warning"))
                            crossed.append((name, level, used, limit))
                        break
        for name, level, used, limit in crossed:
            self._crossed(name, level, used, limit)

    def _crossed(self, name: str, level: str, used: float, limit: float) -> None:
        unit = _UNITS[name]
        shown = f"{used:.4g}" if isinstance(used, float) else f"{used:,}"
        figures: dict[str, Figure] = {
            "limit": name,
            "limit_value": limit,
            "consumed": round(used, 8),
            "share": round(used / limit, 3),
        }
        if level == "warning":
            self._sink.report(
                Finding(
                    "budget",
                    Severity.WARNING,
                    f"the session has spent {shown} of its {limit:g} {unit} budget ({used / limit:.0%})",
                    figures,
                    time_ns=time.time_ns(),
                ),
                (name, level),
            )
            return
        action = self.budget.on_exceed
        then = {"warn": "nothing is stopped (on_exceed='warn')", "raise": "its next LLM request is refused"}.get(
            action if isinstance(action, str) else "", "on_exceed is called"
        )
        self._sink.report(
            Finding(
                "budget",
                Severity.ERROR,
                f"the session is over its {limit:g} {unit} budget ({shown}): {then}",
                figures,
                time_ns=time.time_ns(),
            ),
            (name, level),
        )
        exceeded = BudgetExceeded(self._session_id, name, limit, used)
        if action == "raise":
            with self._lock:
                if self.refusal is None:
                    self.refusal = exceeded
        elif callable(action):
            action(exceeded)

    def refuse(self) -> None:
        """Before an LLM request of the session is sent: raise :class:`BudgetExceeded` when a
        limit has been passed and ``on_exceed="raise"`` (the seconds limit is checked now)."""
        if self.refusal is None and "seconds" in self._limits:
            self.check()
        refusal = self.refusal
        if refusal is not None:
            raise BudgetExceeded(refusal.session_id, refusal.limit, refusal.limit_value, refusal.consumed)

    def record_attributes(self) -> Mapping[str, Any]:
        """The limits and their consumption, for the session's record."""
        with self._lock:
            self.consumed["seconds"] = time.monotonic() - self._started
            attrs: dict[str, Any] = {}
            for name, limit in self._limits.items():
                attrs[f"{semconv.BUDGET_PREFIX}{name}.limit"] = limit
                attrs[f"{semconv.BUDGET_PREFIX}{name}.consumed"] = self.consumed[name]
            if "tokens" in self._limits:
                attrs[semconv.GEN_AI_AGENT_TOKEN_BUDGET_LIMIT] = int(self._limits["tokens"])
                attrs[semconv.GEN_AI_AGENT_TOKEN_BUDGET_CONSUMED] = int(self.consumed["tokens"])
            return attrs

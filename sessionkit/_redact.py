"""Redaction of captured content: a default set of secret patterns, then the user's hook.

Runs on every piece of content sessionkit captures (decorator inputs and outputs, prompts and
completions) before it is put on a span, so nothing matched ever leaves the process. Headers
are never captured at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Optional

logger = logging.getLogger("sessionkit")

REDACTED = "[REDACTED]"

DEFAULT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}")),
    ("api key", re.compile(r"\b(?:sk|pk|rk)-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{16,}\b")),
    ("aws access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("github token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
)
# What each pattern's match must contain: a substring test (C speed) skips a pattern whose match
# cannot be in the text, so most text is never run through the regular expressions.
# (The bearer pattern ignores case: its test runs on the lowered text.)
_MUST_CONTAIN: tuple[str, ...] = ("bearer", "k-", "AKIA", "gh", "eyJ", "@")


class Redactor:
    """``redactor(text) -> text``: default patterns (unless turned off), then the user hook.
    Never raises: if the hook fails, the content is replaced whole, not passed on unredacted."""

    def __init__(self, hook: Optional[Callable[[str], str]], defaults: bool) -> None:
        self.hook = hook
        self.defaults = defaults

    def __call__(self, text: str) -> str:
        if self.defaults:
            for index, ((_, pattern), needle) in enumerate(zip(DEFAULT_PATTERNS, _MUST_CONTAIN)):
                if needle in (text.lower() if index == 0 else text):
                    text = pattern.sub(REDACTED, text)
        if self.hook is not None:
            try:
                result = self.hook(text)
            except Exception:
                logger.exception("sessionkit: the redact hook raised; the content is dropped")
                return REDACTED
            if not isinstance(result, str):
                logger.warning(
                    "sessionkit: the redact hook returned %s, not str; the content is dropped", type(result).__name__
                )
                return REDACTED
            text = result
        return text

"""litellm's OpenTelemetry callback (``litellm.callbacks = ["otel"]``) in the session.

litellm takes the global provider when it is an SDK ``TracerProvider`` (sessionkit's is), so its
spans land in the session with no provider of its own and no warning. Two things it does by
default are changed for sessionkit's clients:

- With a span current (a turn's root, an ``@agent`` call), litellm writes its request's whole
  description (about 70 attributes: usage, cost, prompts) onto *that* span. This integration asks
  it for a ``litellm_request`` span of its own instead (``USE_OTEL_LITELLM_REQUEST_SPAN``, unless
  the program set it), so nothing of litellm's lands on sessionkit's spans.
- The request litellm sends is seen on the wire, and counted there: its ``litellm_request``
  span is marked ``sessionkit.llm.counted_in_child`` and exported without usage and cost, so
  the call's tokens count once (when ``instrument_llm_calls`` is off, litellm's span keeps them).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import semconv
from .._spans import add_enricher, set_clean_attributes
from ._pick import client_for

__all__ = ["SCOPE", "enrich", "setup"]

SCOPE = os.environ.get("OTEL_TRACER_NAME", "litellm")
"""The instrumentation scope of litellm's tracer (litellm reads the same variable)."""
NAME = "litellm"
logger = logging.getLogger("sessionkit")
_COUNTED = {semconv.LLM_COUNTED_IN_CHILD: True}


def enrich(span: Any) -> None:
    """At the start of a litellm span: the call it describes is counted by its wire span."""
    try:
        client = client_for(NAME)
        if client is not None and client.config.instrument_llm_calls:
            set_clean_attributes(span, _COUNTED)
    except Exception:
        pass  # (litellm's span stays as litellm made it)


def setup() -> None:
    """Ask litellm for spans of its own, and mark them (once per process)."""
    os.environ.setdefault("USE_OTEL_LITELLM_REQUEST_SPAN", "true")
    add_enricher(SCOPE, enrich)

"""GenAI client metrics, derived from finished LLM spans off the agent's path.

The three histograms of the GenAI semantic conventions (operation duration, token usage, time
to first chunk) are recorded from the attributes of each finished wire-level LLM span, in the
export thread as its batch goes out (see ``ExportPipeline``'s ``observe`` hook): each histogram
record resolves an attribute set and takes the aggregation's lock, which in the calling thread
would cost about as much as the span. A span that is dropped instead of exported
is observed right where it is dropped, so the metrics stay complete when tracing is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import semconv
from ._spans import attributes_of

__all__ = ["GenAIInstruments", "WIRE_MARKER", "record_llm_metrics"]

# Set on every span the HTTP-layer patch makes, and on no other: what marks an LLM call's span.
WIRE_MARKER = semconv.LLM_ATTEMPT
# Span attributes that become metric attributes, when present.
_DIMENSIONS = (
    semconv.GEN_AI_OPERATION_NAME,
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.SERVER_ADDRESS,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_RESPONSE_MODEL,
    semconv.ERROR_TYPE,
)


class GenAIInstruments:
    __slots__ = ("duration", "tokens", "ttfc")

    def __init__(self, meter: Any) -> None:
        self.duration = meter.create_histogram(
            semconv.METRIC_GEN_AI_DURATION, unit="s", description="GenAI operation duration"
        )
        self.tokens = meter.create_histogram(
            semconv.METRIC_GEN_AI_TOKEN_USAGE, unit="{token}", description="Tokens used per GenAI operation"
        )
        self.ttfc = meter.create_histogram(
            semconv.METRIC_GEN_AI_TTFC, unit="s", description="Time to the first chunk of a streamed response"
        )


def record_llm_metrics(instruments_of: Callable[[str, Callable[[Any], Any]], Any], spans: Iterable[Any]) -> None:
    """Record the GenAI histograms for the LLM-call spans among ``spans``; ``instruments_of``
    is the client's instrument cache (``Host.instruments``)."""
    instruments = None
    for span in spans:
        attrs = attributes_of(span)
        if WIRE_MARKER not in attrs:
            continue
        if instruments is None:
            instruments = instruments_of(semconv.INSTRUMENTS_GEN_AI, GenAIInstruments)
        dimensions = {name: attrs[name] for name in _DIMENSIONS if name in attrs}
        if dimensions.get(semconv.GEN_AI_REQUEST_MODEL) == "unknown":
            del dimensions[semconv.GEN_AI_REQUEST_MODEL]  # the span's name needs one; the metric does not
        if span.end_time is not None and span.start_time is not None:
            instruments.duration.record((span.end_time - span.start_time) / 1e9, dimensions)
        ttfc = attrs.get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if ttfc is not None:
            instruments.ttfc.record(ttfc, dimensions)
        for kind, name in (
            ("input", semconv.GEN_AI_USAGE_INPUT_TOKENS),
            ("output", semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
        ):
            count = attrs.get(name)
            if count is not None:
                instruments.tokens.record(count, {**dimensions, semconv.GEN_AI_TOKEN_TYPE: kind})

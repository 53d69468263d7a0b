"""Carrying the session to the services a request goes to (the ``propagate_to`` setting).

Each wire hook asks ``headers_for`` before it sends a request: inside a session, to an allowed
target, the answer is the ``traceparent`` of the calling span (an LLM call's own span, when the
request is one) and the ``baggage`` with the session's ids; else None, after one tuple check
when nothing is allowed anywhere (the default). ``merge_headers`` adds them without replacing
what the program or another instrumentation set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace

from .. import semconv
from .._payloads.llm import provider_of
from .._propagation import Targets, baggage_header, merge_headers, outgoing_headers
from .._spans import attributes_of
from .._types import Host
from .call import registry

__all__ = ["headers_for", "merge_headers", "merged", "ours_for", "targets_of"]

logger = logging.getLogger("sessionkit")

_targets: dict[tuple[str, ...], Targets] = {}


def _is_llm_host(host: str) -> bool:
    return provider_of(host) is not None or (host.startswith("bedrock-runtime.") and host.endswith(".amazonaws.com"))


def targets_of(entries: tuple[str, ...]) -> Targets:
    """The compiled ``propagate_to`` (one per distinct setting, kept)."""
    found = _targets.get(entries)
    if found is None:
        if len(_targets) > 64:
            _targets.clear()
        found = _targets[entries] = Targets(entries, _is_llm_host)
    return found


def headers_for(
    client: Optional[Host] = None, url: Optional[str] = None, llm: bool = False, context: Optional[Any] = None
) -> Optional[dict[str, str]]:
    """The propagation headers for a request to ``url`` (None: any URL, the caller decided) from
    the calling code, or None: outside a session, or not an allowed target. Never raises."""
    try:
        if client is None:
            client = registry.pick()
            if client is None:
                return None
        config = client.config
        if url is not None:
            entries = config.propagate_to
            if not entries or not targets_of(entries).allows(url, llm):
                return None
        session = client.current_session()
        if session is None:
            return None
        span = trace.get_current_span(context)
        span_context = span.get_span_context()
        turn = attributes_of(span).get(semconv.TURN_INDEX) if span_context.is_valid else None
        baggage = baggage_header(session.stamp, turn, config.propagate_baggage, session.project)
        session.handed_on()  # its figures are this process's own: say how often it went elsewhere
        return outgoing_headers(span_context, baggage)
    except Exception:
        logger.debug("sessionkit: could not make propagation headers (the request goes without)", exc_info=True)
        return None


def ours_for(url: str, llm_context: Optional[otel_context.Context] = None) -> Optional[dict[str, str]]:
    """The headers a request to ``url`` gets (when it is an LLM call, ``llm_context`` holds its
    span), or None: nothing is allowed (one check), not an allowed target, no session."""
    client = registry.pick()
    if client is None or not client.config.propagate_to:
        return None
    return headers_for(client, url, llm_context is not None, llm_context)


def merged(given: Any, ours: Mapping[str, str], defaults: Any = None) -> Any:
    """A request's ``headers`` argument (a dict, a multidict, pairs, None) with ``ours`` merged
    in; ``defaults`` (a session's default headers) count as already there."""
    out: dict[str, str] = {}
    for source in (defaults, given):
        if source:
            for k, v in source.items() if hasattr(source, "items") else source:
                out[str(k)] = str(v)
    lower = {k.lower(): k for k in out}

    def get(name: str) -> Optional[str]:
        key = lower.get(name)
        return out[key] if key is not None else None

    def put(name: str, value: str) -> None:
        out[lower.get(name, name)] = value

    merge_headers(get, put, ours)
    return out

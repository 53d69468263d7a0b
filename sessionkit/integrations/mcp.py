"""The Model Context Protocol SDK (``mcp``): its client and server spans, in the session.

The MCP SDK traces itself through the global OpenTelemetry provider (so, with ``set_global``
on, its spans are stamped with their session), and carries the trace context in each request's
``params._meta``, so a server's spans sit under the caller's. This integration completes the
client side's spans with the MCP semantic conventions the server side already writes:
``gen_ai.operation.name=execute_tool`` and ``gen_ai.tool.name`` for ``tools/call``,
``gen_ai.prompt.name`` for ``prompts/get``, and the OpenInference kind (``TOOL``) Phoenix reads.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Optional

import wrapt

from .. import semconv
from .._propagation import merge_headers
from .._spans import add_enricher, attributes_of, set_clean_attributes
from ._pick import client_for

__all__ = ["SCOPE", "enrich", "setup"]

SCOPE = "mcp-python-sdk"
"""The instrumentation scope of the MCP SDK's tracer."""
NAME = "mcp"
_CLIENT_PREFIX = "MCP send "
logger = logging.getLogger("sessionkit")
_serving: contextvars.ContextVar[Optional[Any]] = contextvars.ContextVar("sessionkit_mcp_request", default=None)
"""The server's request context while the SDK's server middleware handles it (its session id)."""


def enrich(span: Any) -> None:
    """At a span's start: the MCP conventions its SDK left out. Never raises."""
    try:
        if client_for(NAME) is None:
            return
        attrs = attributes_of(span)
        method = attrs.get("mcp.method.name")
        if not isinstance(method, str):
            return
        added: dict[str, Any] = {}
        target = None
        if span.name.startswith(_CLIENT_PREFIX):
            rest = span.name[len(_CLIENT_PREFIX) + len(method) :].strip()
            target = rest or None
        else:
            target = attrs.get(semconv.GEN_AI_TOOL_NAME) or attrs.get("gen_ai.prompt.name")
        if method == "tools/call":
            added[semconv.GEN_AI_OPERATION_NAME] = semconv.OPERATION_EXECUTE_TOOL
            added[semconv.OPENINFERENCE_SPAN_KIND] = "TOOL"
            if target and semconv.GEN_AI_TOOL_NAME not in attrs:
                added[semconv.GEN_AI_TOOL_NAME] = target
        elif method == "prompts/get" and target and "gen_ai.prompt.name" not in attrs:
            added["gen_ai.prompt.name"] = target
        request = _serving.get()
        if request is not None and "mcp.session.id" not in attrs:
            # streamable HTTP: the session the server gave the client (none on stdio, nor with
            # the sessionless protocol revisions)
            headers = getattr(getattr(request, "request", None), "headers", None)
            session_id = headers.get("mcp-session-id") if headers is not None else None
            if isinstance(session_id, str) and session_id:
                added["mcp.session.id"] = session_id
        if "openinference.span.kind" not in attrs and semconv.OPENINFERENCE_SPAN_KIND not in added:
            added[semconv.OPENINFERENCE_SPAN_KIND] = "CHAIN"
        set_clean_attributes(span, added)
    except Exception:
        pass  # (a span we could not complete is still the SDK's whole span)


async def _handle(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    ctx = args[0] if args else kwargs.get("ctx")
    token = _serving.set(ctx)
    continued = None
    try:
        meta = getattr(ctx, "meta", None)
        client = client_for(NAME) if meta else None
        if client is not None:
            continued = client.continue_session(meta)  # the caller's session, from params._meta
            continued.__enter__()
    except Exception:
        logger.debug("sessionkit: could not continue the MCP caller's session (ignored)", exc_info=True)
        continued = None
    failure: Optional[BaseException] = None
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        _serving.reset(token)
        if continued is not None:
            try:
                continued.__exit__(type(failure) if failure else None, failure, None)
            except Exception:
                logger.debug("sessionkit: could not end the MCP request's session (ignored)", exc_info=True)


def _inject(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The SDK put the trace context in a request's ``params._meta``; add the session's baggage
    (and the trace context, if the SDK's propagator left it out) when ``propagate_to`` has "mcp"."""
    result = wrapped(*args, **kwargs)
    try:
        meta = args[0] if args else kwargs.get("meta")
        client = client_for(NAME)
        if isinstance(meta, dict) and client is not None and "mcp" in client.config.propagate_to:
            ours = client.propagation_headers()
            if ours:
                merge_headers(meta.get, meta.__setitem__, ours)
    except Exception:
        logger.debug("sessionkit: could not add the session to an MCP request (ignored)", exc_info=True)
    return result


def setup() -> None:
    """Complete the MCP SDK's spans from now on (once): on the server side the request's MCP
    session id (streamable HTTP) is read from the request context the SDK's tracing middleware
    is handed; a request's ``params._meta`` that carries a caller's session continues it (the
    tool's spans join the caller's session and turn). On the client side, the session's baggage
    goes into ``params._meta`` next to the trace context when ``propagate_to`` names ``"mcp"``."""
    add_enricher(SCOPE, enrich)
    try:
        from mcp.shared import jsonrpc_dispatcher

        wrapt.wrap_function_wrapper(jsonrpc_dispatcher, "inject_trace_context", _inject)
    except Exception:
        logger.debug("sessionkit: this mcp sends no trace context sessionkit knows (no session in _meta)")
    try:
        from mcp.server import _otel

        wrapt.wrap_function_wrapper(_otel.OpenTelemetryMiddleware, "__call__", _handle)
    except Exception:
        logger.debug("sessionkit: this mcp has no tracing middleware sessionkit knows (no mcp.session.id)")

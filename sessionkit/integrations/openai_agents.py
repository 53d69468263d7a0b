"""The OpenAI Agents SDK (``openai-agents``): its traces and spans as OpenTelemetry spans in the
session.

A tracing processor registered with the SDK (``agents.add_trace_processor``; the SDK's own
processors, its exporter included, stay as the program set them) turns each run's trace into a
span, and each of its spans (agent, function tool, handoff, guardrail, generation, response,
MCP tool listing, custom) into a child of it, with the GenAI names: ``invoke_agent {agent}``,
``execute_tool {tool}``, ``chat {model}``. Each span is current while it is open, so the LLM
calls the SDK sends are seen on the wire inside it, and counted there once. A run outside any
session starts one (ended with the run); the run's ``group_id`` is the thread.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Optional

from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv
from .._payloads.body import captured
from .._spans import set_clean_attributes
from ._open import Open, close, open_span
from ._pick import client_for

__all__ = ["SessionTracingProcessor", "processor", "setup"]

logger = logging.getLogger("sessionkit")
NAME = "openai_agents"


def _content(client: Any, value: Any) -> Optional[str]:
    if value is None:
        return None
    config = client.config
    return captured(value, config.max_content_length, client.redact)


class SessionTracingProcessor:
    """The Agents SDK tracing processor (see the module's docstring). Never raises into the SDK."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Open] = {}

    # -- traces: one per run -------------------------------------------------------------------
    def on_trace_start(self, sdk_trace: Any) -> None:
        try:
            client = client_for(NAME)
            if client is None:
                return
            group = getattr(sdk_trace, "group_id", None)
            session = None
            if client.current_session() is None:  # a run outside a session starts one
                fields: dict[str, Any] = {"thread_id": str(group)} if group else {}
                session = client.start_session(str(getattr(sdk_trace, "name", None) or "agent run"), **fields)
            attrs: dict[str, Any] = {
                semconv.OPENINFERENCE_SPAN_KIND: "CHAIN",
                "sessionkit.agents.trace_id": str(getattr(sdk_trace, "trace_id", "")),
            }
            if group:
                attrs[semconv.GEN_AI_CONVERSATION_ID] = str(group)
            self._start(client, str(sdk_trace.trace_id), None, str(sdk_trace.name or "agent run"), attrs, session)
        except Exception:
            logger.debug("sessionkit: could not follow an Agents SDK trace (ignored)", exc_info=True)

    def on_trace_end(self, sdk_trace: Any) -> None:
        try:
            found = self._pop(str(sdk_trace.trace_id))
            if found is None:
                return
            close(found)
            if found.session is not None:
                found.session.end()
        except Exception:
            logger.debug("sessionkit: could not end an Agents SDK trace (ignored)", exc_info=True)

    # -- spans -------------------------------------------------------------------------------------
    def on_span_start(self, sdk_span: Any) -> None:
        try:
            with self._lock:
                parent = self._open.get(str(sdk_span.parent_id)) or self._open.get(str(sdk_span.trace_id))
            client = parent.client if parent is not None else client_for(NAME)
            if client is None:
                return
            name, kind, attrs = _describe(sdk_span.span_data)
            self._start(client, str(sdk_span.span_id), parent, name, attrs, None, kind)
        except Exception:
            logger.debug("sessionkit: could not follow an Agents SDK span (ignored)", exc_info=True)

    def on_span_end(self, sdk_span: Any) -> None:
        try:
            found = self._pop(str(sdk_span.span_id))
            if found is None:
                return
            span = found.span
            _finish(found.client, span, sdk_span.span_data)
            error = getattr(sdk_span, "error", None)
            if error:
                message = str(error.get("message") if isinstance(error, dict) else error)
                span.set_attribute(semconv.ERROR_TYPE, message[:128])
                span.set_status(Status(StatusCode.ERROR, message))
            close(found)
        except Exception:
            logger.debug("sessionkit: could not end an Agents SDK span (ignored)", exc_info=True)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass

    # -- the spans ------------------------------------------------------------------------------------
    def _start(
        self,
        client: Any,
        key: str,
        parent: Optional[Open],
        name: str,
        attrs: dict[str, Any],
        session: Any,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        opened = open_span(client, parent, name, attrs, session, kind)
        with self._lock:
            self._open[key] = opened

    def _pop(self, key: str) -> Optional[Open]:
        with self._lock:
            return self._open.pop(key, None)


def _describe(data: Any) -> tuple[str, SpanKind, dict[str, Any]]:
    """A span's name, kind and attributes at its start, from its SDK span data."""
    kind = getattr(data, "type", "custom")
    attrs: dict[str, Any] = {"sessionkit.agents.span_type": kind}
    if kind == "agent":
        name = str(data.name)
        attrs.update(
            {
                semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_AGENT,
                semconv.GEN_AI_AGENT_NAME: name,
                semconv.OPENINFERENCE_SPAN_KIND: "AGENT",
            }
        )
        if data.tools:
            attrs["sessionkit.agents.tools"] = tuple(str(t) for t in data.tools)
        if data.handoffs:
            attrs["sessionkit.agents.handoffs"] = tuple(str(h) for h in data.handoffs)
        return f"invoke_agent {name}", SpanKind.INTERNAL, attrs
    if kind == "function":
        name = str(data.name)
        attrs.update(
            {
                semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
                semconv.GEN_AI_TOOL_NAME: name,
                "gen_ai.tool.type": "function",
                semconv.OPENINFERENCE_SPAN_KIND: "TOOL",
            }
        )
        if data.mcp_data:
            attrs["sessionkit.agents.mcp_data"] = json.dumps(data.mcp_data, default=str)[:1024]
        return f"execute_tool {name}", SpanKind.INTERNAL, attrs
    if kind in ("generation", "response"):
        model = getattr(data, "model", None)
        attrs.update(
            {
                semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_CHAT,
                semconv.OPENINFERENCE_SPAN_KIND: "LLM",
                semconv.GEN_AI_PROVIDER_NAME: "openai",
            }
        )
        if model:
            attrs[semconv.GEN_AI_REQUEST_MODEL] = str(model)
        return f"chat {model}" if model else "chat", SpanKind.CLIENT, attrs
    if kind == "handoff":
        attrs.update(
            {
                "sessionkit.agents.handoff.from": str(data.from_agent),
                "sessionkit.agents.handoff.to": str(data.to_agent),
                semconv.OPENINFERENCE_SPAN_KIND: "CHAIN",
            }
        )
        return f"handoff {data.from_agent} -> {data.to_agent}", SpanKind.INTERNAL, attrs
    if kind == "guardrail":
        attrs.update({"sessionkit.agents.guardrail.name": str(data.name), semconv.OPENINFERENCE_SPAN_KIND: "GUARDRAIL"})
        return f"guardrail {data.name}", SpanKind.INTERNAL, attrs
    if kind == "mcp_tools":
        attrs.update({"sessionkit.agents.mcp.server": str(data.server), semconv.OPENINFERENCE_SPAN_KIND: "TOOL"})
        return f"mcp list_tools {data.server}", SpanKind.INTERNAL, attrs
    if kind == "turn":  # one pass of the agent loop (not a session's turn)
        attrs.update({"sessionkit.agents.turn": int(data.turn), semconv.GEN_AI_AGENT_NAME: str(data.agent_name)})
        attrs[semconv.OPENINFERENCE_SPAN_KIND] = "CHAIN"
        return f"agent loop {data.turn} {data.agent_name}", SpanKind.INTERNAL, attrs
    name = str(getattr(data, "name", None) or kind)
    attrs[semconv.OPENINFERENCE_SPAN_KIND] = "CHAIN"
    return name, SpanKind.INTERNAL, attrs


def _finish(client: Any, span: Any, data: Any) -> None:
    """What a span learned by its end: outputs, usage, the guardrail's verdict."""
    kind = getattr(data, "type", "custom")
    capture = client.config.capture_content
    attrs: dict[str, Any] = {}
    if kind == "function" and capture:
        arguments, result = _content(client, data.input), _content(client, data.output)
        if arguments is not None:
            attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = arguments
            attrs[semconv.INPUT_VALUE] = arguments
        if result is not None:
            attrs[semconv.GEN_AI_TOOL_CALL_RESULT] = result
            attrs[semconv.OUTPUT_VALUE] = result
    elif kind == "guardrail":
        attrs["sessionkit.agents.guardrail.triggered"] = bool(data.triggered)
    elif kind == "handoff":  # the agent handed to is known by the end
        attrs["sessionkit.agents.handoff.to"] = str(data.to_agent)
        span.update_name(f"handoff {data.from_agent} -> {data.to_agent}")
    elif kind == "response":
        response = data.response
        if response is not None:
            if getattr(response, "model", None):
                attrs[semconv.GEN_AI_RESPONSE_MODEL] = str(response.model)
                span.update_name(f"chat {response.model}")
            if getattr(response, "id", None):
                attrs[semconv.GEN_AI_RESPONSE_ID] = str(response.id)
            usage = getattr(response, "usage", None)
            if usage is not None:
                attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = int(usage.input_tokens)
                attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = int(usage.output_tokens)
        if capture and data.input is not None:
            attrs[semconv.INPUT_VALUE] = _content(client, data.input)
    elif kind == "generation":
        usage = data.usage or {}
        if isinstance(usage.get("input_tokens"), int):
            attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = usage["input_tokens"]
        if isinstance(usage.get("output_tokens"), int):
            attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = usage["output_tokens"]
        if capture:
            if data.input is not None:
                attrs[semconv.INPUT_VALUE] = _content(client, list(data.input))
            if data.output is not None:
                attrs[semconv.OUTPUT_VALUE] = _content(client, list(data.output))
    elif kind == "agent" and data.output_type:
        attrs["sessionkit.agents.output_type"] = str(data.output_type)
    elif kind == "custom" and capture and getattr(data, "data", None):
        attrs["sessionkit.agents.data"] = _content(client, data.data)
    if attrs:
        set_clean_attributes(span, attrs)


_processor: Optional[SessionTracingProcessor] = None


def processor() -> Optional[SessionTracingProcessor]:
    """The processor registered with the Agents SDK (None before the SDK was imported)."""
    return _processor


def setup() -> None:
    """Register the processor with the Agents SDK, once."""
    global _processor
    from agents import tracing

    if _processor is not None:
        return

    class Registered(SessionTracingProcessor, tracing.TracingProcessor):
        pass

    _processor = Registered()
    tracing.add_trace_processor(_processor)

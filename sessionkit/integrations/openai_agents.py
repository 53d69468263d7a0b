"""The OpenAI Agents SDK (``openai-agents``): its traces and spans as OpenTelemetry spans in the
session.

A tracing processor registered with the SDK (``agents.add_trace_processor``; the SDK's own
processors, its exporter included, stay as the program set them) turns each run's trace into a
span, and each of its spans (agent, function tool, handoff, guardrail, generation, response,
MCP tool listing, custom) into a child of it, with the GenAI names: ``invoke_agent {agent}``,
``execute_tool {tool}``, ``chat {model}``. Each span is current while it is open, so the LLM
calls the SDK sends are seen on the wire inside it, and counted there once. A run outside any
session that has a ``group_id`` is a turn of that conversation's session (``Client.conversation``:
runs with one group id are one session, until it is idle); one without starts a session of its
own, ended with the run. Each run's user message and final answer are its span's input and
output (``capture_turn_content``).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Optional

from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv
from .._payloads.body import captured
from .._spans import attributes_of, set_clean_attributes
from ._open import Open, close, finish_run, open_span, start_run
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
        self._folded: dict[str, Open] = {}  # a run's "task" span -> the run's span, which stands for it

    # -- traces: one per run -------------------------------------------------------------------
    def on_trace_start(self, sdk_trace: Any) -> None:
        try:
            client = client_for(NAME)
            if client is None:
                return
            group = getattr(sdk_trace, "group_id", None)
            name = str(getattr(sdk_trace, "name", None) or "agent run")
            session = turn = token = None
            if client.current_session() is None:  # a run outside a session: its conversation's turn, or a session
                session, turn, token = start_run(client, name, str(group) if group else None)
            attrs: dict[str, Any] = {
                semconv.OPENINFERENCE_SPAN_KIND: "CHAIN",
                "sessionkit.agents.trace_id": str(getattr(sdk_trace, "trace_id", "")),
            }
            if group:
                attrs[semconv.GEN_AI_CONVERSATION_ID] = str(group)
            opened = self._start(client, str(sdk_trace.trace_id), None, name, attrs, session)
            opened.turn, opened.turn_token = turn, token
        except Exception:
            logger.debug("sessionkit: could not follow an Agents SDK trace (ignored)", exc_info=True)

    def on_trace_end(self, sdk_trace: Any) -> None:
        try:
            found = self._pop(str(sdk_trace.trace_id))
            if found is None:
                return
            close(found)
            finish_run(found)
        except Exception:
            logger.debug("sessionkit: could not end an Agents SDK trace (ignored)", exc_info=True)

    # -- spans -------------------------------------------------------------------------------------
    def on_span_start(self, sdk_span: Any) -> None:
        try:
            parent_id = str(sdk_span.parent_id)
            with self._lock:
                parent = (
                    self._open.get(parent_id) or self._folded.get(parent_id) or self._open.get(str(sdk_span.trace_id))
                )
                if getattr(sdk_span.span_data, "type", None) == "task" and parent is not None:
                    # The SDK's task span of a run repeats the run (its name, its extent): the
                    # run's span stands for it, and its children hang there.
                    self._folded[str(sdk_span.span_id)] = parent
                    return
            client = parent.client if parent is not None else client_for(NAME)
            if client is None:
                return
            name, kind, attrs = _describe(sdk_span.span_data)
            self._start(client, str(sdk_span.span_id), parent, name, attrs, None, kind)
        except Exception:
            logger.debug("sessionkit: could not follow an Agents SDK span (ignored)", exc_info=True)

    def on_span_end(self, sdk_span: Any) -> None:
        try:
            with self._lock:
                if self._folded.pop(str(sdk_span.span_id), None) is not None:
                    return
            found = self._pop(str(sdk_span.span_id))
            if found is None:
                return
            span = found.span
            _finish(found.client, span, sdk_span.span_data)
            if getattr(sdk_span.span_data, "type", None) in ("response", "generation"):
                with self._lock:
                    run = self._open.get(str(sdk_span.trace_id))
                if run is not None:
                    _run_message_and_answer(run, sdk_span.span_data)
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
    ) -> Open:
        opened = open_span(client, parent, name, attrs, session, kind)
        with self._lock:
            self._open[key] = opened
        return opened

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


def _user_message(items: Any) -> Optional[str]:
    """The newest user message of a model request's input (a string, or a list of input items)."""
    if isinstance(items, str):
        return items
    for item in reversed(list(items or ())):
        role = item.get("role") if isinstance(item, dict) else getattr(item, "role", None)
        if role == "user":
            content = item.get("content") if isinstance(item, dict) else getattr(item, "content", None)
            if isinstance(content, str):
                return content
            texts = [
                str(part.get("text") if isinstance(part, dict) else getattr(part, "text", "")) for part in content or ()
            ]
            return "".join(texts) or None
    return None


def _answer(data: Any) -> Optional[str]:
    """The text of a model response (a Responses API response, or chat completion messages)."""
    response = getattr(data, "response", None)
    if response is not None:
        text = getattr(response, "output_text", None)
        return text if isinstance(text, str) and text else None
    for message in reversed(list(getattr(data, "output", None) or ())):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str) and content:
            return content
    return None


def _run_message_and_answer(run: Open, data: Any) -> None:
    """A model call of the run ended: the run's user message is its first request's newest
    user message, its answer the newest response's text. They go on the run's span (the root
    of the turn the run is) and on its conversation's turn, as turn content."""
    client = run.client
    config = client.config
    if not config.capture_turn_content:
        return
    span = run.span
    message = None if semconv.INPUT_VALUE in attributes_of(span) else _user_message(getattr(data, "input", None))
    answer = _answer(data)
    attrs: dict[str, Any] = {}
    if message is not None:
        attrs[semconv.INPUT_VALUE] = captured(message, config.max_content_length, client.redact)
    if answer is not None:
        attrs[semconv.OUTPUT_VALUE] = captured(answer, config.max_content_length, client.redact)
    if attrs:
        set_clean_attributes(span, attrs)
    turn = run.turn
    if turn is not None:
        if message is not None:
            turn.set_input(message)
        if answer is not None:
            turn.set_output(answer)


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

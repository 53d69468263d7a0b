"""LangChain and LangGraph runs in the session: a callback handler every run gets.

The handler is registered once as a LangChain configure hook (``register_configure_hook``),
so every run gets it, with no ``callbacks=[...]`` to pass. Chains (a LangGraph graph and its
nodes among them), tools, retrievers and chat models become spans nested as their runs are;
each is current while it runs, so the chat model's request is seen on the wire inside its span
and counted there once. A run's ``configurable.thread_id`` (LangGraph's conversation) becomes
the conversation: a root run outside any session is a turn of that thread's session
(``Client.conversation``: runs on one thread are one session until it is idle); one with no
thread starts a session of its own, ended with the run; inside a session, the root run carries
the thread as ``gen_ai.conversation.id``. A root run's input and output are its newest message
(``capture_turn_content``), not the whole graph state. LangChain's hidden
runs (tagged ``langsmith:hidden``, LangGraph's internal writes) and a node's routing steps (a
conditional edge's path function) make no span.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any, Optional
from uuid import UUID

from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv
from .._payloads.body import captured
from .._spans import attributes_of, set_clean_attributes
from ._open import Open, close, finish_run, open_span, start_run
from ._pick import client_for

__all__ = ["handler", "setup"]

logger = logging.getLogger("sessionkit")
NAME = "langchain"
_HIDDEN = "langsmith:hidden"


def _name(serialized: Any, kwargs: dict[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if not name and isinstance(serialized, dict):
        name = serialized.get("name") or (serialized.get("id") or [None])[-1]
    return str(name or default)


class _Handler:
    """The callbacks; a ``BaseCallbackHandler`` subclass of it is made at setup (see ``setup``)."""

    run_inline = True  # called where the run is, so its span is current there
    raise_error = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[UUID, Open] = {}
        self._hidden: dict[UUID, Optional[UUID]] = {}  # a hidden run -> its parent
        self._roots: set[UUID] = set()  # the runs open with no visible parent: a turn each

    # -- the spans --------------------------------------------------------------------------------
    def _visible_parent(self, parent_run_id: Optional[UUID]) -> Optional[Open]:
        with self._lock:
            while parent_run_id is not None and parent_run_id in self._hidden:
                parent_run_id = self._hidden[parent_run_id]
            return self._runs.get(parent_run_id) if parent_run_id is not None else None

    def _start(
        self,
        run_id: UUID,
        parent_run_id: Optional[UUID],
        name: str,
        kind: str,
        attrs: dict[str, Any],
        tags: Any,
        metadata: Any,
        span_kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        try:
            if tags and _HIDDEN in tags:
                with self._lock:
                    self._hidden[run_id] = parent_run_id
                return
            parent = self._visible_parent(parent_run_id)
            if kind == "chain" and tags and parent is not None and _is_branch(name, tags, metadata, parent):
                with self._lock:
                    self._hidden[run_id] = parent_run_id
                return
            client = parent.client if parent is not None else client_for(NAME)
            if client is None:
                return
            metadata = metadata if isinstance(metadata, dict) else {}
            thread = metadata.get("thread_id")
            session = turn = token = None
            if parent is None and thread is not None:
                attrs[semconv.GEN_AI_CONVERSATION_ID] = str(thread)
            if parent is None and client.current_session() is None:
                # A root run outside a session: a turn of its thread's conversation, or a session of its own.
                session, turn, token = start_run(client, name, str(thread) if thread is not None else None)
            node = metadata.get("langgraph_node")
            if node is not None and str(node) == name:  # the node's own run (its children inherit the key)
                attrs["sessionkit.langgraph.node"] = str(node)
                if metadata.get("langgraph_step") is not None:
                    attrs["sessionkit.langgraph.step"] = str(metadata["langgraph_step"])
            attrs["sessionkit.langchain.run_type"] = kind
            opened = open_span(client, parent, name, attrs, session, span_kind)
            opened.turn, opened.turn_token = turn, token
            with self._lock:
                self._runs[run_id] = opened
                if parent is None:
                    self._roots.add(run_id)
        except Exception:
            logger.debug("sessionkit: could not follow a LangChain run (ignored)", exc_info=True)

    def _end(self, run_id: UUID, attrs: Optional[dict[str, Any]] = None, error: Any = None) -> None:
        try:
            with self._lock:
                self._hidden.pop(run_id, None)
                self._roots.discard(run_id)
                run = self._runs.pop(run_id, None)
            if run is None:
                return
            span = run.span
            if attrs:
                set_clean_attributes(span, attrs)
            if error is not None:
                span.set_attribute(semconv.ERROR_TYPE, type(error).__qualname__)
                if isinstance(error, BaseException):
                    span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)[:256]))
            close(run)
            finish_run(run, error if isinstance(error, BaseException) or error is None else RuntimeError(str(error)))
        except Exception:
            logger.debug("sessionkit: could not end a LangChain run (ignored)", exc_info=True)

    def _content(self, run_id: UUID, key: str, value: Any, out: dict[str, Any]) -> None:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or value is None or not run.client.config.capture_content:
            return
        config = run.client.config
        out[key] = captured(_plain(value), config.max_content_length, run.client.redact)

    # -- chains (graphs and their nodes) ------------------------------------------------------------
    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: Any = None, **kw: Any
    ) -> None:
        name = _name(serialized, kw, "chain")
        attrs: dict[str, Any] = {semconv.OPENINFERENCE_SPAN_KIND: "CHAIN"}
        self._start(run_id, parent_run_id, name, "chain", attrs, kw.get("tags"), kw.get("metadata"))
        out: dict[str, Any] = {}
        if not self._turn_content(run_id, semconv.INPUT_VALUE, inputs, out):
            self._content(run_id, semconv.INPUT_VALUE, inputs, out)
        self._set(run_id, out)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        out: dict[str, Any] = {}
        if not self._turn_content(run_id, semconv.OUTPUT_VALUE, outputs, out):
            self._content(run_id, semconv.OUTPUT_VALUE, outputs, out)
        self._end(run_id, out)

    def _turn_content(self, run_id: UUID, key: str, value: Any, out: dict[str, Any]) -> bool:
        """A root run's input or output is a turn's (``capture_turn_content``): its newest
        message, not the whole state. False for other runs."""
        with self._lock:
            run = self._runs.get(run_id) if run_id in self._roots else None
        if run is None:
            return False
        client = run.client
        message = _last_message(value)
        if message is None or not client.config.capture_turn_content:
            return True
        out[key] = captured(message, client.config.max_content_length, client.redact)
        if run.turn is not None:
            if key == semconv.INPUT_VALUE:
                run.turn.set_input(message)
            else:
                run.turn.set_output(message)
        return True

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        if type(error).__name__ in ("GraphInterrupt", "ParentCommand"):  # LangGraph's control flow
            self._end(run_id)
            return
        self._end(run_id, error=error)

    # -- tools ----------------------------------------------------------------------------------------
    def on_tool_start(
        self, serialized: Any, input_str: Any, *, run_id: UUID, parent_run_id: Any = None, **kw: Any
    ) -> None:
        name = _name(serialized, kw, "tool")
        attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_EXECUTE_TOOL,
            semconv.GEN_AI_TOOL_NAME: name,
            semconv.OPENINFERENCE_SPAN_KIND: "TOOL",
        }
        self._start(run_id, parent_run_id, f"execute_tool {name}", "tool", attrs, kw.get("tags"), kw.get("metadata"))
        out: dict[str, Any] = {}
        self._content(run_id, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, kw.get("inputs") or input_str, out)
        if semconv.GEN_AI_TOOL_CALL_ARGUMENTS in out:
            out[semconv.INPUT_VALUE] = out[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]
        self._set(run_id, out)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kw: Any) -> None:
        out: dict[str, Any] = {}
        self._content(run_id, semconv.GEN_AI_TOOL_CALL_RESULT, getattr(output, "content", output), out)
        if semconv.GEN_AI_TOOL_CALL_RESULT in out:
            out[semconv.OUTPUT_VALUE] = out[semconv.GEN_AI_TOOL_CALL_RESULT]
        self._end(run_id, out)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self._end(run_id, error=error)

    # -- retrievers --------------------------------------------------------------------------------
    def on_retriever_start(
        self, serialized: Any, query: str, *, run_id: UUID, parent_run_id: Any = None, **kw: Any
    ) -> None:
        name = _name(serialized, kw, "retriever")
        attrs: dict[str, Any] = {semconv.OPENINFERENCE_SPAN_KIND: "RETRIEVER"}
        self._start(run_id, parent_run_id, f"retrieve {name}", "retriever", attrs, kw.get("tags"), kw.get("metadata"))
        out: dict[str, Any] = {}
        self._content(run_id, semconv.INPUT_VALUE, query, out)
        self._set(run_id, out)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kw: Any) -> None:
        self._end(run_id, {"sessionkit.retriever.documents": len(documents) if documents is not None else 0})

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self._end(run_id, error=error)

    # -- chat models and LLMs ----------------------------------------------------------------------------
    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, parent_run_id: Any = None, **kw: Any
    ) -> None:
        self._model_start(serialized, run_id, parent_run_id, kw, messages)

    def on_llm_start(
        self, serialized: Any, prompts: Any, *, run_id: UUID, parent_run_id: Any = None, **kw: Any
    ) -> None:
        self._model_start(serialized, run_id, parent_run_id, kw, prompts)

    def _model_start(self, serialized: Any, run_id: UUID, parent_run_id: Any, kw: dict[str, Any], inputs: Any) -> None:
        params: dict[str, Any] = kw["invocation_params"] if isinstance(kw.get("invocation_params"), dict) else {}
        metadata: dict[str, Any] = kw["metadata"] if isinstance(kw.get("metadata"), dict) else {}
        model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
        provider = metadata.get("ls_provider")
        attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_CHAT,
            semconv.OPENINFERENCE_SPAN_KIND: "LLM",
        }
        if model:
            attrs[semconv.GEN_AI_REQUEST_MODEL] = str(model)
            attrs[semconv.LLM_MODEL_NAME] = str(model)
        if provider:
            attrs[semconv.GEN_AI_PROVIDER_NAME] = str(provider)
        name = f"chat {model}" if model else "chat"
        self._start(run_id, parent_run_id, name, "llm", attrs, kw.get("tags"), metadata, SpanKind.CLIENT)
        out: dict[str, Any] = {}
        self._content(run_id, semconv.INPUT_VALUE, inputs, out)
        self._set(run_id, out)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kw: Any) -> None:
        out: dict[str, Any] = {}
        usage = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
        if isinstance(usage, dict):
            for key, attribute in (
                ("prompt_tokens", semconv.GEN_AI_USAGE_INPUT_TOKENS),
                ("completion_tokens", semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
            ):
                if isinstance(usage.get(key), int):
                    out[attribute] = usage[key]
        generations = getattr(response, "generations", None) or []
        texts = [getattr(g, "text", "") for batch in generations for g in batch]
        self._content(run_id, semconv.OUTPUT_VALUE, "".join(t for t in texts if t) or None, out)
        self._end(run_id, out)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self._end(run_id, error=error)

    def _set(self, run_id: UUID, attrs: dict[str, Any]) -> None:
        if not attrs:
            return
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None:
            set_clean_attributes(run.span, attrs)


def _is_branch(name: str, tags: Any, metadata: Any, parent: Open) -> bool:
    """Whether a chain run is a LangGraph node's routing step (a conditional edge's path
    function): a direct child of the node's own run, a later step of its sequence (``seq:step:2``
    on), not named after the node. A user's chain called inside the node's function runs within
    its first step, and an LCEL sequence's steps are children of the sequence, not of the node."""
    node = metadata.get("langgraph_node") if isinstance(metadata, dict) else None
    if node is None or str(node) == name or attributes_of(parent.span).get("sessionkit.langgraph.node") != str(node):
        return False
    for tag in tags:
        if isinstance(tag, str) and tag.startswith("seq:step:") and tag[9:].isdigit() and int(tag[9:]) >= 2:
            return True
    return False


def _last_message(value: Any) -> Optional[str]:
    """The newest message's text of a run's input or output: a string, a message, or a graph
    state's ``messages`` list."""
    if isinstance(value, dict):
        if "messages" in value:
            value = value["messages"]
        elif len(value) == 1:
            value = next(iter(value.values()))
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        value = value[-1]
    if isinstance(value, str):
        return value
    content = value.get("content") if isinstance(value, dict) else getattr(value, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content) or None
    return None


def _plain(value: Any) -> Any:
    """LangChain values (messages, documents) as plain data for capture."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    content = getattr(value, "content", None)
    if content is not None:
        return {"role": getattr(value, "type", "message"), "content": _plain(content)}
    return str(value)


_handler: Optional[Any] = None
_var: Optional[contextvars.ContextVar[Any]] = None


def handler() -> Optional[Any]:
    """The callback handler every LangChain run gets (None before LangChain was imported)."""
    return _handler


def setup() -> None:
    """Register the handler with LangChain, once."""
    global _handler, _var
    if _handler is not None:
        return
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.tracers.context import register_configure_hook

    class SessionCallbackHandler(_Handler, BaseCallbackHandler):
        def __init__(self) -> None:
            _Handler.__init__(self)
            BaseCallbackHandler.__init__(self)

    _handler = SessionCallbackHandler()
    _var = contextvars.ContextVar("sessionkit_langchain_handler", default=_handler)
    register_configure_hook(_var, inheritable=True)

"""The A2A protocol SDK (``a2a-sdk``) in the session: an agent served over A2A continues its
caller's session, and an A2A conversation (its ``contextId``) is one session.

- **The caller's side** needs nothing of this module: an A2A client sends its requests through
  httpx, so naming the remote agent's URL in ``propagate_to`` carries the session to it (as to
  any other service). a2a-sdk's own spans (``a2a.client...``) land in the caller's turn.
- **The agent's side**: each time the SDK runs the ``AgentExecutor`` for an incoming message,
  - with session headers on the request (``traceparent`` and ``baggage`` from a caller that
    ``propagate_to`` names) and no session current, the run continues the caller's session, as
    ``SessionMiddleware`` would (the ``continue_incoming`` setting applies); with the middleware
    installed the run is already in it;
  - with none, the run is a turn of the session of the message's A2A ``contextId`` (the
    conversation id A2A gives every message of one conversation, server-made for the first):
    the messages of one context are one session, a turn per message, until
    ``conversation_idle_timeout``. The turn's input is the message's text, its output the text
    the agent answered (its last message or artifact), under ``capture_turn_content``.

  Either way the run's spans (the model calls on the wire, a2a-sdk's ``a2a.server...`` spans
  inside it) carry the session, and a context's session its ``gen_ai.conversation.id`` (the
  context id).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import wrapt

from ._open import end_turn, start_run
from ._pick import client_for

__all__ = ["setup"]

logger = logging.getLogger("sessionkit")
NAME = "a2a"


def _text(parts: Any) -> Optional[str]:
    texts = [part.text for part in parts or () if isinstance(getattr(part, "text", None), str) and part.text]
    return "\n".join(texts) or None


def _answer(event: Any) -> Optional[str]:
    """The agent's text in an event it enqueued (a message, a status with one, an artifact)."""
    parts = getattr(event, "parts", None)  # a Message
    if parts is None:
        artifact = getattr(event, "artifact", None)
        status = getattr(event, "status", None)
        if artifact is not None and hasattr(artifact, "parts"):
            parts = artifact.parts
        elif status is not None and getattr(status, "message", None) is not None:
            parts = status.message.parts
    return _text(parts)


class _Answers(wrapt.ObjectProxy):
    """An executor's event queue that keeps the newest text the agent enqueued."""

    def __init__(self, queue: Any) -> None:
        super().__init__(queue)
        self._self_answer: Optional[str] = None

    async def enqueue_event(self, event: Any) -> Any:
        try:
            self._self_answer = _answer(event) or self._self_answer
        except Exception:
            pass
        return await self.__wrapped__.enqueue_event(event)


class _Followed(wrapt.ObjectProxy):
    """An ``AgentExecutor`` whose runs are in the session (see the module's docstring)."""

    async def execute(self, context: Any, event_queue: Any) -> Any:
        client = scope = turn = token = None
        try:
            client = client_for(NAME)
            if client is not None and client.current_session() is None:
                call = getattr(context, "call_context", None)
                headers = getattr(call, "state", {}).get("headers") if call is not None else None
                if headers:
                    scope = client.continue_session(headers)
                    if scope.__enter__() is None:
                        scope.__exit__(None, None, None)
                        scope = None
                if scope is None:
                    conversation = getattr(context, "context_id", None) or None
                    _, turn, token = start_run(client, "a2a", conversation)
                    if turn is not None:
                        message = _text(getattr(getattr(context, "message", None), "parts", None))
                        if message is not None:
                            turn.set_input(message)
        except Exception:
            logger.debug("sessionkit: could not follow an A2A run (ignored)", exc_info=True)
        queue = _Answers(event_queue) if turn is not None else event_queue
        error: Optional[BaseException] = None
        try:
            return await self.__wrapped__.execute(context, queue)
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if turn is not None:
                    end_turn(turn, token, error, queue._self_answer)
                if scope is not None:
                    scope.__exit__(type(error) if error else None, error, None)
            except Exception:
                logger.debug("sessionkit: could not end an A2A run (ignored)", exc_info=True)


def _follow_executor(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """A request handler made with an ``AgentExecutor`` gets it followed (``_Followed``)."""
    try:
        if args and not isinstance(args[0], _Followed):
            args = (_Followed(args[0]), *args[1:])
        elif "agent_executor" in kwargs and not isinstance(kwargs["agent_executor"], _Followed):
            kwargs = {**kwargs, "agent_executor": _Followed(kwargs["agent_executor"])}
    except Exception:
        logger.debug("sessionkit: could not follow an A2A agent (ignored)", exc_info=True)
    return wrapped(*args, **kwargs)


def setup() -> None:
    """Follow the runs of the agent executors of A2A request handlers made from now on (once per
    process; a handler made before sessionkit set up runs as it did)."""

    def follow(handler: str) -> Any:
        def hook(module: Any) -> None:
            wrapt.wrap_function_wrapper(module, f"{handler}.__init__", _follow_executor)

        return hook

    for module, handler in (
        ("a2a.server.request_handlers.default_request_handler_v2", "DefaultRequestHandlerV2"),
        ("a2a.server.request_handlers.default_request_handler", "LegacyRequestHandler"),
    ):
        wrapt.register_post_import_hook(follow(handler), module)

"""Google's Agent Development Kit (``google-adk``) in the session.

ADK traces itself with OpenTelemetry (``invoke_agent``, ``generate_content``, ``execute_tool``
spans on the global provider, which is sessionkit's), and its model calls go through
google-genai, whose requests sessionkit sees on the wire. So its spans need no translation; what
this integration adds is the conversation:

- ``Runner.run_async`` (and ``Runner.run``, which runs it in a thread with the caller's context)
  outside a sessionkit session is a turn of the session of ADK's own session id (its
  ``session_id``, the conversation id ADK writes as ``gen_ai.conversation.id``), with ADK's
  ``user_id`` as the session's user: several runs on one ADK session are one sessionkit session,
  a turn per run, until ``conversation_idle_timeout``;
- the turn's input is the run's new user message, its output the text of the run's final
  response (``Event.is_final_response()``), both under ``capture_turn_content``.

Inside a session (``with client.session(...)``) a run is a part of the caller's turn, as any
other code is. ADK's own span of a model call is marked ``sessionkit.llm.counted_in_child`` by
the wire span under it, so the call's tokens count once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Optional

import wrapt

from ._open import end_turn, start_run
from ._pick import client_for

__all__ = ["setup"]

logger = logging.getLogger("sessionkit")
NAME = "google_adk"


def _text(content: Any) -> Optional[str]:
    """The text parts of an ADK/genai ``Content``, joined (None: no text)."""
    parts = getattr(content, "parts", None) or ()
    texts = [part.text for part in parts if isinstance(getattr(part, "text", None), str)]
    return "".join(texts) or None


async def _run_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> AsyncIterator[Any]:
    turn = token = None
    try:
        client = client_for(NAME)
        if client is not None and client.current_session() is None:
            name = f"adk {getattr(instance, 'app_name', None) or 'run'}"
            _, turn, token = start_run(
                client, name, str(kwargs.get("session_id") or "") or None, user_id=kwargs.get("user_id")
            )
            if turn is not None:
                message = _text(kwargs.get("new_message"))
                if message is not None:
                    turn.set_input(message)
    except Exception:
        logger.debug("sessionkit: could not follow an ADK run (ignored)", exc_info=True)
    error: Optional[BaseException] = None
    answer: Optional[str] = None
    try:
        async for event in wrapped(*args, **kwargs):
            if turn is not None:
                try:
                    if event.is_final_response():
                        answer = _text(getattr(event, "content", None)) or answer
                except Exception:
                    pass
            yield event
    except BaseException as exc:
        error = exc
        raise
    finally:
        if turn is not None:
            end_turn(turn, token, error, answer)


def setup() -> None:
    """Follow ADK runs (once per process)."""
    wrapt.wrap_function_wrapper("google.adk.runners", "Runner.run_async", _run_async)

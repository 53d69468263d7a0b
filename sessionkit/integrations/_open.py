"""A framework's run or span, open as an OpenTelemetry span: what the integrations share."""

from __future__ import annotations

import contextvars
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .._spans import set_clean_attributes

__all__ = ["Open", "close", "end_turn", "finish_run", "open_span", "start_run"]


class Open:
    """The span that stands for a framework's run (or span), current while it runs."""

    __slots__ = ("span", "context", "token", "session", "client", "turn", "turn_token")

    def __init__(self, span: Any, context: Any, token: Any, session: Any, client: Any) -> None:
        self.span = span
        self.context = context
        self.token = token
        self.session = session
        """The session this run started (a root run outside any session), ended with it."""
        self.client = client
        self.turn: Any = None
        """The turn this run is of a conversation's session (``Client.conversation``)."""
        self.turn_token: Any = None


def start_run(
    client: Any, name: str, conversation: Optional[str], user_id: Optional[str] = None
) -> tuple[Any, Any, Any]:
    """A root run outside any session: ``(session to end with the run, turn, token)``. A run
    that names its ``conversation`` is a turn of that conversation's session (made current
    here, ``end_turn`` ends it); any other starts a session of its own, ended with it."""
    if conversation is None:
        return client.start_session(name), None, None
    turn = client.conversation(conversation, name=name, user_id=user_id).turn()
    return None, turn, turn.enter()


def end_turn(turn: Any, token: Any, error: Optional[BaseException] = None, answer: Any = None) -> None:
    """A run's conversation turn (``start_run``) ends with the run, with its ``answer``."""
    try:
        turn.leave(token)
    except ValueError:  # ended in another context than it started in
        pass
    turn.end_call(error, answer)
    turn.session.client.conversation(turn.session.thread_id)  # the idle clock starts from the run's end


def finish_run(run: Open, error: Optional[BaseException] = None) -> None:
    """After ``close``: the run's turn (or session) ends with it."""
    if run.turn is not None:
        end_turn(run.turn, run.turn_token, error)
    if run.session is not None:
        run.session.end("fail" if error is not None else "success")


def open_span(
    client: Any, parent: Optional[Open], name: str, attrs: dict[str, Any], session: Any, kind: SpanKind
) -> Open:
    """Start the span under ``parent``'s (else the calling code's, within its session) and make
    it current here, so what runs inside (the LLM call on the wire) nests under it."""
    base = parent.context if parent is not None else client.span_parent(otel_context.get_current())
    span = client.tracer.start_span(name, context=base, kind=kind)
    set_clean_attributes(span, attrs)
    context = trace.set_span_in_context(span, base)
    return Open(span, context, otel_context.attach(context), session, client)


def close(run: Open) -> None:
    """Undo the start's attach and end the span. The end can come in another context than the
    start (a streamed or async run's task), where the attach cannot be undone: then it is not."""
    token = run.token
    if isinstance(token, contextvars.Token):
        try:
            token.var.reset(token)
        except (ValueError, RuntimeError):
            pass
    elif token is not None:
        otel_context.detach(token)
    run.span.end()

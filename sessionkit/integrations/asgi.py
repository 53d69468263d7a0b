"""``SessionMiddleware`` for ASGI apps (Starlette, FastAPI, Django's ASGI, plain ASGI): each
request continues its caller's session from the request's headers (``traceparent``,
``baggage``), as :meth:`sessionkit.Client.continue_session` does.

``app = SessionMiddleware(app)``, or ``app.add_middleware(SessionMiddleware)`` in Starlette or
FastAPI. A request without session headers runs as it would without the middleware (with its
server span, when ``server_span`` is on). Where a server span is current already (OpenTelemetry's
FastAPI instrumentation outside this middleware, as with ``app.add_middleware``), that one is the
request's: the middleware adds none and stamps it with the session. ``trust=False`` (or the ``continue_incoming``
setting) on a public edge: incoming session headers are ignored.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace

from ._serving import Middleware, client_of, end_server_span, makes_server_span, outer_server_span, start_server_span

__all__ = ["SessionMiddleware"]

logger = logging.getLogger("sessionkit")


class SessionMiddleware(Middleware):
    """ASGI middleware: the request runs in the caller's session, under the caller's span.

    ``client``: the client the requests go to (default: ``sessionkit.init``'s, else the newest).
    ``trust``: whether incoming session headers are continued (default: the client's
    ``continue_incoming`` setting). ``server_span``: a ``SERVER`` span per request
    (``GET /path``, with its status), the request's other spans under it."""

    KIND = "ASGI"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope.get("type") if isinstance(scope, dict) else None
        client = client_of(self.client) if kind in ("http", "websocket") else None
        if client is None:
            await self.app(scope, receive, send)
            return
        outer = outer_server_span()
        try:
            continued = client.continue_session(scope.get("headers") or [], trust=self.trust)
            if continued.__enter__() is not None and outer is not None:
                client.stamp_span(outer)  # the app's own server span, started before the session was known
        except Exception:
            logger.warning("sessionkit: could not continue the request's session (ignored)", exc_info=True)
            await self.app(scope, receive, send)
            return
        span = None
        token = None
        status: list[int] = []
        send_on = send
        if makes_server_span(self, outer):  # (one SERVER span per request)
            try:
                span = start_server_span(client, str(scope.get("method") or ""), str(scope.get("path") or "/"))
                token = otel_context.attach(trace.set_span_in_context(span))

                async def send_on(message: Any) -> None:
                    if isinstance(message, dict) and message.get("type") == "http.response.start":
                        status.append(int(message.get("status", 0)))
                    await send(message)

            except Exception:
                logger.debug("sessionkit: could not start the request's span (ignored)", exc_info=True)
        failure: Optional[BaseException] = None
        try:
            await self.app(scope, receive, send_on)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            try:
                if token is not None:
                    otel_context.detach(token)
                if span is not None:
                    end_server_span(span, status[0] if status else None, failure)
                continued.__exit__(type(failure) if failure else None, failure, None)
            except Exception:
                logger.debug("sessionkit: could not end the request's session (ignored)", exc_info=True)

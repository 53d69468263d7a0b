"""``SessionMiddleware`` for WSGI apps (Flask, Django, plain WSGI): each request continues its
caller's session from the request's headers (``traceparent``, ``baggage``), as
:meth:`sessionkit.Client.continue_session` does.

``app.wsgi_app = SessionMiddleware(app.wsgi_app)`` in Flask. The session (and the server span)
ends when the response has been sent: when the server closes the app's response iterable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace

from ._serving import Middleware, client_of, end_server_span, makes_server_span, outer_server_span, start_server_span

__all__ = ["SessionMiddleware"]

logger = logging.getLogger("sessionkit")

_HEADERS = (("traceparent", "HTTP_TRACEPARENT"), ("tracestate", "HTTP_TRACESTATE"), ("baggage", "HTTP_BAGGAGE"))


class SessionMiddleware(Middleware):
    """WSGI middleware: the request runs in the caller's session, under the caller's span
    (``client``, ``trust`` and ``server_span`` as in the ASGI middleware)."""

    KIND = "WSGI"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        client = client_of(self.client)
        if client is None:
            return self.app(environ, start_response)
        outer = outer_server_span()
        try:
            headers = {name: environ[key] for name, key in _HEADERS if key in environ}
            continued = client.continue_session(headers, trust=self.trust)
            if continued.__enter__() is not None and outer is not None:
                client.stamp_span(outer)  # the app's own server span, started before the session was known
        except Exception:
            logger.warning("sessionkit: could not continue the request's session (ignored)", exc_info=True)
            return self.app(environ, start_response)
        request = _Request(continued)
        if makes_server_span(self, outer):  # (one SERVER span per request)
            try:
                method, path = str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", "/") or "/")
                request.span = start_server_span(client, method, path)
                request.token = otel_context.attach(trace.set_span_in_context(request.span))
            except Exception:
                logger.debug("sessionkit: could not start the request's span (ignored)", exc_info=True)

        def starting(status: str, response_headers: Any, exc_info: Any = None) -> Any:
            try:
                request.status = int(str(status).split(" ", 1)[0])
            except ValueError:
                pass
            if exc_info is not None:
                return start_response(status, response_headers, exc_info)
            return start_response(status, response_headers)

        try:
            body = self.app(environ, starting)
        except BaseException as exc:
            request.end(exc)
            raise
        return _Body(body, request)


class _Request:
    """One request's continued session and span, ended once."""

    def __init__(self, continued: Any) -> None:
        self.continued = continued
        self.span: Any = None
        self.token: Any = None
        self.status: Optional[int] = None
        self.left = False
        self.done = False

    def leave(self) -> None:
        """Leave the request's context (the app returned); the body's iteration enters it again."""
        if not self.left:
            self.left = True
            try:
                if self.token is not None:
                    otel_context.detach(self.token)
                    self.token = None
            except Exception:
                pass

    def end(self, exc: Optional[BaseException]) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.leave()
            if self.span is not None:
                end_server_span(self.span, self.status, exc)
            self.continued.__exit__(type(exc) if exc else None, exc, None)
        except Exception:
            logger.debug("sessionkit: could not end the request's session (ignored)", exc_info=True)


class _Body:
    """The app's response, handed on; the request ends when the server closes it."""

    def __init__(self, body: Iterable[bytes], request: _Request) -> None:
        self._body = body
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException as exc:
            self._request.end(exc)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._request.end(None)

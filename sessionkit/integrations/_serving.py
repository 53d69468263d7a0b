"""What the ASGI and WSGI middlewares share: which client serves a request, and its span."""

from __future__ import annotations

from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv
from ._pick import registry

__all__ = ["Middleware", "client_of", "end_server_span", "makes_server_span", "outer_server_span", "start_server_span"]


class Middleware:
    """What both middlewares take: the app, the client, whether to trust incoming headers, and
    whether to make a server span per request."""

    KIND = "ASGI"

    def __init__(self, app: Any, client: Any = None, *, trust: Optional[bool] = None, server_span: bool = True) -> None:
        if not callable(app):
            raise TypeError(f"sessionkit: SessionMiddleware(app) takes a {self.KIND} app; got {app!r}")
        if trust is not None and not isinstance(trust, bool):
            raise TypeError(f"sessionkit: SessionMiddleware(trust=...) takes True or False; got {trust!r}")
        self.app = app
        self.client = client
        self.trust = trust
        self.server_span = server_span


def client_of(given: Any) -> Optional[Any]:
    """The client a request goes to: the middleware's own, else the default (or newest) one."""
    client = given if given is not None else registry.pick()
    if client is None or client.closed:
        return None
    return client


def outer_server_span() -> Any:
    """The request's server span made before the middleware ran (by the app's own OpenTelemetry
    instrumentation, outside the middleware), or None."""
    span = trace.get_current_span()
    return span if span.is_recording() and getattr(span, "kind", None) is SpanKind.SERVER else None


def makes_server_span(middleware: Middleware, outer: Any) -> bool:
    """Whether the middleware adds the request's SERVER span: asked to, and none is current (an
    outer middleware's). An app inside it that traces itself sees ours current, and OpenTelemetry's
    instrumentations then make theirs an INTERNAL span: one SERVER span per request either way."""
    return middleware.server_span and outer is None


def start_server_span(client: Any, method: str, path: str) -> Any:
    """The request's ``SERVER`` span, current for the caller to attach (started under whatever
    the continued session made current: the caller's span)."""
    return client.tracer.start_span(
        f"{method} {path}" if method else path,
        kind=SpanKind.SERVER,
        attributes={semconv.HTTP_REQUEST_METHOD: method, semconv.URL_PATH: path},
    )


def end_server_span(span: Any, status: Optional[int], exc: Optional[BaseException]) -> None:
    if status is not None:
        span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, status)
    if exc is not None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    elif status is not None and status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()

"""The wire hook of httpx and httpx2: ``Client.send`` / ``AsyncClient.send``.

The patch is thin and idempotent: the patched method is a ``wrapt.FunctionWrapper`` whose
wrapper carries a marker, so instrumenting twice (two clients, ``init`` twice, a reload) never
wraps twice. A request that is not an LLM call costs one method check and a URL match.

For a streamed response the response's byte stream is swapped for a proxy that hands every
chunk on unchanged, as it arrives, while the call reads usage from a copy of it. The span ends
once: when the stream is exhausted, closed, or garbage collected unread.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from opentelemetry import context as otel_context

from .call import LLMCall, start_call
from .outgoing import merge_headers, ours_for
from .patching import is_wrapped, unwrap, wrap

MODULES = ("httpx", "httpx2")
_MARKER = "_sessionkit_llm_send"

_stream_classes: dict[str, tuple[type, type]] = {}


def _stream_classes_for(module: ModuleType) -> tuple[type, type]:
    """Proxy classes that subclass the module's own stream types (httpx checks isinstance)."""
    found = _stream_classes.get(module.__name__)
    if found is not None:
        return found

    class SyncProxy(module.SyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: Any, call: LLMCall) -> None:
            self._inner = inner
            self._call = call
            weakref.finalize(self, call.finish, None, False)  # dropped unread: ends the span

        def __iter__(self) -> Iterator[bytes]:
            call = self._call
            try:
                for chunk in self._inner:
                    call.observe(chunk)
                    yield chunk
            except GeneratorExit:
                raise
            except BaseException as exc:
                call.finish(exc, False)
                raise
            call.finish(None, True)

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._call.finish(None, False)

    class AsyncProxy(module.AsyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: Any, call: LLMCall) -> None:
            self._inner = inner
            self._call = call
            weakref.finalize(self, call.finish, None, False)

        async def __aiter__(self) -> AsyncIterator[bytes]:
            call = self._call
            try:
                async for chunk in self._inner:
                    call.observe(chunk)
                    yield chunk
            except GeneratorExit:
                raise
            except BaseException as exc:
                call.finish(exc, False)
                raise
            call.finish(None, True)

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._call.finish(None, False)

    found = _stream_classes[module.__name__] = (SyncProxy, AsyncProxy)
    return found


def _wrap_stream(module: ModuleType, stream: Any, call: LLMCall) -> Any:
    sync_proxy, async_proxy = _stream_classes_for(module)
    if isinstance(stream, module.AsyncByteStream) and not isinstance(stream, module.SyncByteStream):
        return async_proxy(stream, call)
    return sync_proxy(stream, call)


def _got_response(call: LLMCall, response: Any, stream: bool, module: ModuleType) -> None:
    """Headers are in. Without ``stream`` the body was read already; with it, watch it pass."""
    if not stream:
        call.got_body(response.status_code, response.content)
    elif call.got_headers(response.status_code, response.headers):
        response.stream = _wrap_stream(module, response.stream, call)


def _propagate(request: Any, call: Any) -> None:
    """The session's headers on the request, when its target is allowed (``propagate_to``)."""
    try:
        ours = ours_for(str(request.url), call.context if call is not None else None)
        if ours:
            headers = request.headers
            merge_headers(headers.get, headers.__setitem__, ours)
    except Exception:
        pass  # (the request goes on without them)


def _sync_send(module: ModuleType) -> Any:
    def send(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("request")
        call = start_call(request)
        _propagate(request, call)
        if call is None:
            return wrapped(*args, **kwargs)
        token = otel_context.attach(call.context)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            otel_context.detach(token)
            call.finish(exc)
            raise
        otel_context.detach(token)
        _got_response(call, response, bool(kwargs.get("stream", False)), module)
        return response

    return send


def _async_send(module: ModuleType) -> Any:
    async def send(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        request = args[0] if args else kwargs.get("request")
        call = start_call(request)
        _propagate(request, call)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = otel_context.attach(call.context)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            otel_context.detach(token)
            call.finish(exc)
            raise
        otel_context.detach(token)
        _got_response(call, response, bool(kwargs.get("stream", False)), module)
        return response

    return send


def is_patched(cls: Any) -> bool:
    """Whether ``cls.send`` is sessionkit's wrapper (a test hook, and the patch's own check)."""
    return is_wrapped(cls, "send", _MARKER)


def patch(module: ModuleType) -> None:
    """Patch ``module`` (httpx or httpx2) once: ``Client.send`` and ``AsyncClient.send``."""
    wrap(module.Client, "send", _sync_send(module), _MARKER)
    wrap(module.AsyncClient, "send", _async_send(module), _MARKER)


def unpatch(module: ModuleType) -> None:
    """Restore the original ``send`` methods."""
    for name in ("Client", "AsyncClient"):
        unwrap(getattr(module, name, None), "send", _MARKER)

"""The wire hook of aiohttp: ``ClientSession._request``, the one method every request of a
session goes through (``get``, ``post``, ``request`` and Gemini's and litellm's async clients).

A request is recognised as httpx's are (``call.start_call``). Its response's body is read as
the program reads it: the response's ``StreamReader`` becomes a subclass of it, with no new
state, whose chunk reads hand each chunk to the call as well; the span ends when the body has
been read to its end, or when the response is dropped. Other responses are left as they are.
"""

from __future__ import annotations

import json
import logging
import weakref
from types import ModuleType
from typing import Any, Optional

from opentelemetry import context as otel_context

from .call import LLMCall, start_call
from .outgoing import merged, ours_for
from .patching import unwrap, wrap

logger = logging.getLogger("sessionkit")

_MARKER = "_sessionkit_llm_request"
_taps: dict[int, LLMCall] = {}
"""The calls whose response bodies are being read, by the id of their stream reader."""
_tapped_classes: dict[type, type] = {}


def _body(kwargs: dict[str, Any]) -> Optional[bytes]:
    """The request body as aiohttp will send it, when it is JSON or bytes (forms and streams:
    None, and the call is recognised by its path and headers only)."""
    if kwargs.get("json") is not None:
        try:
            return json.dumps(kwargs["json"]).encode()
        except (TypeError, ValueError):
            return None
    data = kwargs.get("data")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    return None


def _headers(session: Any, given: Any) -> dict[str, str]:
    """The request's headers with the session's defaults, names in lower case."""
    out: dict[str, str] = {}
    for source in (getattr(session, "headers", None), given):
        if source:
            items = source.items() if hasattr(source, "items") else source
            for name, value in items:
                out[str(name).lower()] = str(value)
    return out


class _Request:
    """A request as ``LLMCall`` reads it; its headers and body are put together only when
    looked at (after the URL's path was found to be an LLM API's)."""

    method = "POST"

    def __init__(self, session: Any, url: str, kwargs: dict[str, Any]) -> None:
        self.url = url
        self._session = session
        self._kwargs = kwargs
        self._headers: Optional[dict[str, str]] = None
        self._content: Optional[bytes] = None
        self._read = False

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = _headers(self._session, self._kwargs.get("headers"))
        return self._headers

    @property
    def content(self) -> Optional[bytes]:
        if not self._read:
            self._content, self._read = _body(self._kwargs), True
        return self._content


def _start(session: Any, args: tuple, kwargs: dict[str, Any]) -> Optional[LLMCall]:
    try:
        method = args[0] if args else kwargs.get("method", "")
        if not isinstance(method, str) or method.upper() != "POST":
            return None
        url = str(args[1] if len(args) > 1 else kwargs.get("str_or_url", ""))
        return start_call(_Request(session, url, kwargs))
    except Exception:
        logger.debug("sessionkit: could not start an LLM span (the call goes on untraced)", exc_info=True)
        return None


def _tapped(base: type) -> type:
    """A subclass of aiohttp's ``StreamReader`` with the same layout (so an instance's class can
    be switched to it) whose chunk reads are seen by the call."""
    found = _tapped_classes.get(base)
    if found is not None:
        return found

    class Tapped(base):
        __slots__ = ()

        def _read_nowait_chunk(self, n: int) -> bytes:
            data: bytes = super()._read_nowait_chunk(n)
            call = _taps.get(id(self))
            if call is not None:
                call.observe(data)
                if self.at_eof():
                    _end(id(self), True)
            return data

    found = _tapped_classes[base] = Tapped
    return found


def _end(key: int, completed: bool) -> None:
    call = _taps.pop(key, None)
    if call is not None:
        call.finish(None, completed)


def _at_eof(content: Any) -> None:
    """The connection delivered the whole body: when the program has read it all, the call ends."""
    if content.at_eof():
        _end(id(content), True)


def _watch(module: ModuleType, session: Any, call: LLMCall, response: Any) -> None:
    try:
        content = response.content
        if type(content) is not module.StreamReader:  # no body (EmptyStreamReader), or not one we know
            call.got_body(response.status, b"")
            return
        if not call.got_headers(response.status, response.headers, decoded=bool(session.auto_decompress)):
            return
        key = id(content)
        _taps[key] = call
        content.__class__ = _tapped(module.StreamReader)
        content.on_eof(lambda: _at_eof(content))
        weakref.finalize(response, _end, key, False)  # dropped before its end was read
    except Exception:
        logger.debug("sessionkit: could not watch an LLM response (ignored)", exc_info=True)
        call.finish()


def _propagate(session: Any, args: tuple, kwargs: dict[str, Any], call: Optional[LLMCall]) -> None:
    """The session's headers in ``kwargs["headers"]``, when the target is allowed (``propagate_to``)."""
    try:
        url = str(args[1] if len(args) > 1 else kwargs.get("str_or_url", ""))
        if "://" not in url:
            base = getattr(session, "_base_url", None)  # ClientSession(base_url=...): relative URLs
            url = str(base).rstrip("/") + "/" + url.lstrip("/") if base is not None else url
        ours = ours_for(url, call.context if call is not None else None)
        if ours:
            kwargs["headers"] = merged(kwargs.get("headers"), ours, getattr(session, "headers", None))
    except Exception:
        pass  # (the request goes on without them)


def _request(module: ModuleType) -> Any:
    async def request(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = _start(instance, args, kwargs)
        _propagate(instance, args, kwargs, call)
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
        _watch(module, instance, call, response)
        return response

    return request


def patch(module: ModuleType) -> None:
    """Patch aiohttp once, when its stream reader reads chunks the way this hook knows."""
    if not hasattr(module.StreamReader, "_read_nowait_chunk"):
        logger.debug("sessionkit: this aiohttp's StreamReader is not one the hook knows; aiohttp is not traced")
        return
    wrap(module.ClientSession, "_request", _request(module), _MARKER)


def unpatch(module: ModuleType) -> None:
    unwrap(getattr(module, "ClientSession", None), "_request", _MARKER)

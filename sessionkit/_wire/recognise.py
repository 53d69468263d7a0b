"""Recognising an LLM call: whether a POST goes to an LLM API path (the configured base URLs,
then the known paths), which endpoint and provider it is, and whether a request to an unknown
host is an LLM call by its SDK headers or its body."""

from __future__ import annotations

from typing import Any, Optional

from .._payloads.llm import (
    Endpoint,
    api_of,
    match,
    normalize_base_urls,
)

# -- the patch ---------------------------------------------------------------------------------------
_base_urls_cache: dict[int, tuple[Any, dict[str, str]]] = {}


def configured_base_urls(config: Any) -> dict[str, str]:
    """``llm_base_urls`` normalised once per (frozen) config, not once per request."""
    found = _base_urls_cache.get(id(config))
    if found is None or found[0] is not config:
        if len(_base_urls_cache) > 64:  # configs come and go with re-init; keep only recent ones
            _base_urls_cache.clear()
            _endpoints.clear()  # its keys hold ids of the maps just let go
        found = _base_urls_cache[id(config)] = (config, normalize_base_urls(config.llm_base_urls))
    return found[1]


# (url, id of a base-URL map in _base_urls_cache, which keeps the map alive, recognised) -> match
_endpoints: dict[tuple[str, int, Optional[str]], Optional[Endpoint]] = {}


def endpoint_of(url: str, base_urls: dict[str, str], recognised: Optional[str]) -> Optional[Endpoint]:
    """``match`` for a POST to ``url``, remembered: an agent calls the same few URLs all day."""
    key = (url, id(base_urls), recognised)
    try:
        return _endpoints[key]
    except KeyError:
        pass
    found = match("POST", url, base_urls, recognised)
    if len(_endpoints) >= 256:
        _endpoints.clear()
    _endpoints[key] = found
    return found


_paths: dict[str, bool] = {}  # url -> whether its path is an LLM API's (bounded)


def is_llm_path(url: str) -> bool:
    """Whether ``url``'s path is an LLM API's, remembered per URL (a dict lookup per request)."""
    found = _paths.get(url)
    if found is None:
        found = api_of("POST", url) is not None
        if len(_paths) >= 1024:
            _paths.clear()
        _paths[url] = found
    return found


# Headers the official LLM SDKs send: Stainless-generated ones (openai, anthropic, groq, and
# others generated the same way) send x-stainless-lang; Anthropic's API wants anthropic-version;
# Google's client libraries send x-goog-api-client; Fern-generated ones (cohere) x-fern-sdk-name.
_SDK_HEADERS = ("x-stainless-lang", "anthropic-version", "x-goog-api-client", "x-fern-sdk-name")

# User agents that name the provider an SDK is for, whatever host it was pointed at.
_AGENTS = (("mistral-client", "mistral_ai"), ("mistralai", "mistral_ai"), ("ollama-python", "ollama"))

_BODY_KEYS = (b'"messages"', b'"input"', b'"prompt"', b'"contents"')


def is_llm_request(headers: Any, body: Any) -> Optional[str]:
    """Whether a POST to an LLM API path is an LLM call by what it is: an LLM SDK's headers, or
    a JSON body with a model and messages (or input, a prompt, contents). None when it is not;
    else the provider the SDK named (its user agent), or "" when nothing named one."""
    agent = headers.get("user-agent") or ""
    for mark, provider in _AGENTS:
        if mark in agent:
            return provider
    if any(name in headers for name in _SDK_HEADERS):
        return ""
    head = bytes(body[:65536]) if body else b""
    return "" if b'"model"' in head and any(key in head for key in _BODY_KEYS) else None


def request_body(request: Any) -> Optional[bytes]:
    """An httpx request's body, or None when it streams and was not read."""
    try:
        return request.content
    except Exception:
        return None


class Request:
    """A request as ``LLMCall`` reads it, for clients other than httpx (aiohttp, botocore)."""

    __slots__ = ("method", "url", "headers", "content")

    def __init__(self, method: str, url: str, headers: Any, content: Optional[bytes]) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.content = content

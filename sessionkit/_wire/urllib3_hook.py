"""The propagation hook of urllib3 (and so of requests, and of botocore): the session's headers
on requests to allowed targets (``propagate_to``). It records no LLM calls: those libraries'
LLM traffic is botocore's, which ``botocore_hook`` reads at its own level.

``HTTPConnectionPool.urlopen`` is the one method every request of urllib3 goes through (a
retry or redirect calls it again with the same headers: the merge adds nothing twice).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .outgoing import merged, ours_for
from .patching import unwrap, wrap

MODULES = ("urllib3.connectionpool",)
_MARKER = "_sessionkit_propagate"


def _urlopen(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        url = args[1] if len(args) > 1 else kwargs.get("url", "")
        if isinstance(url, str):
            if "://" not in url:
                port = instance.port
                netloc = instance.host if port is None else f"{instance.host}:{port}"
                url = f"{instance.scheme}://{netloc}{url}"
            ours = ours_for(url)
            if ours:
                if len(args) > 3:
                    args = (*args[:3], merged(args[3] if args[3] is not None else instance.headers, ours), *args[4:])
                else:
                    given = kwargs.get("headers")
                    kwargs["headers"] = merged(given if given is not None else instance.headers, ours)
    except Exception:
        pass  # (the request goes on without them)
    return wrapped(*args, **kwargs)


def patch(module: ModuleType) -> None:
    wrap(module.HTTPConnectionPool, "urlopen", _urlopen, _MARKER)


def unpatch(module: ModuleType) -> None:
    unwrap(getattr(module, "HTTPConnectionPool", None), "urlopen", _MARKER)

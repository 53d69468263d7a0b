"""Seeing LLM calls on the wire, whichever client sends them: httpx and httpx2 (``httpx_hook``),
aiohttp (``aiohttp_hook``), botocore for AWS Bedrock (``botocore_hook``); and carrying the
session to allowed services (``propagate``) through those and urllib3 (``urllib3_hook``: requests).

Each hook patches its library once per process, the moment the program imports it (a
post-import hook: sessionkit itself imports none of them), and hands what it sees to
``call.LLMCall``. The clients that record are in ``registry``.
"""

from __future__ import annotations

import logging
import sys
from types import ModuleType
from typing import Any

import wrapt

from .._errors import internal_errors
from .._types import Host
from . import aiohttp_hook, botocore_hook, httpx_hook, urllib3_hook
from .call import LLMCall, registry
from .httpx_hook import is_patched

__all__ = ["LLMCall", "register", "unregister", "is_patched", "patch_all", "registry", "unpatch_all"]

logger = logging.getLogger("sessionkit")

# The module whose import each hook waits for, and the hook.
HOOKS: dict[str, Any] = {
    "httpx": httpx_hook,
    "httpx2": httpx_hook,
    "aiohttp": aiohttp_hook,
    "botocore.client": botocore_hook,
    "urllib3.connectionpool": urllib3_hook,
}
_hooked: set[str] = set()
_wanted = False


def register(client: Host) -> None:
    """Record ``client``'s LLM calls (patching the HTTP clients once per process)."""
    registry.add(client)
    patch_all()


def unregister(client: Host) -> None:
    """Stop recording for ``client``; the last client to stop restores the original methods
    (unless the instrumentor holds the patch)."""
    if registry.remove(client) and not registry.held_by_instrumentor:
        unpatch_all()


def _on_import(hook: Any) -> Any:
    def patch(module: ModuleType) -> None:
        if not _wanted:
            return
        try:
            hook.patch(module)
        except Exception:
            name = module.__name__
            logger.warning("sessionkit: could not instrument %s (its calls go untraced)", name, exc_info=True)

    return patch


def patch_all() -> None:
    """Patch every supported HTTP client once: now if imported, else the moment the program
    imports it."""
    global _wanted
    _wanted = True
    for name, hook in HOOKS.items():
        if name not in _hooked:
            _hooked.add(name)
            wrapt.register_post_import_hook(_on_import(hook), name)  # runs at once if already imported
        elif name in sys.modules:
            _on_import(hook)(sys.modules[name])


def unpatch_all() -> None:
    """Restore the original methods. A module still being imported (another thread is running
    its body: it has not defined the class yet) or one that fails to unpatch is left as it is,
    logged, and the others are restored all the same."""
    global _wanted
    _wanted = False
    for name, hook in HOOKS.items():
        module = sys.modules.get(name)
        if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
            continue
        with internal_errors(f"restoring {name}"):
            hook.unpatch(module)

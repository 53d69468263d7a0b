"""Agent frameworks in the session, one module per library: ``openai_agents`` (the OpenAI
Agents SDK's traces and spans), ``langchain`` (LangChain and LangGraph runs), ``mcp`` (the
Model Context Protocol SDK's calls), ``litellm`` (its OpenTelemetry callback's spans),
``google_adk`` (Google ADK runs as conversation turns), ``a2a`` (the A2A protocol SDK: the
session carried over A2A requests, a task's context id as the conversation).

Each is set up once per process, the moment its library is imported (a post-import hook: an
integration never imports its library first), for the clients whose ``integrations`` setting
names it (all of them by default). A call goes to the client of the current session, else the
default client, else the newest.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

import wrapt

from ._pick import client_for, registry

__all__ = ["client_for", "register", "registry", "unregister"]

logger = logging.getLogger("sessionkit")

# Each integration and the module whose import sets it up.
LIBRARIES = {
    "openai_agents": "agents",
    "langchain": "langchain_core",
    "mcp": "mcp",
    "litellm": "litellm",
    "google_adk": "google.adk.runners",
    "a2a": "a2a",
}
_hooked: set[str] = set()
_set_up: set[str] = set()


def register(client: Any) -> None:
    """Serve ``client`` with the integrations its settings name."""
    registry.add(client)
    for name in client.config.integrations:
        if name not in _hooked:
            _hooked.add(name)
            wrapt.register_post_import_hook(_setup(name), LIBRARIES[name])  # at once if imported


def unregister(client: Any) -> None:
    registry.remove(client)


def _setup(name: str) -> Any:
    def setup(module: ModuleType) -> None:
        if name in _set_up:
            return
        _set_up.add(name)
        try:
            importlib.import_module(f"sessionkit.integrations.{name}").setup()
        except Exception:
            logger.warning("sessionkit: could not set up the %s integration (continuing without)", name, exc_info=True)

    return setup

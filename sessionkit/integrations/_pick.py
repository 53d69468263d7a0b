"""The clients the integrations serve, and the one a call of an integration goes to."""

from __future__ import annotations

from typing import Any, Optional

from .._client_set import ClientSet

__all__ = ["client_for", "registry"]

registry: ClientSet[Any] = ClientSet()
"""The clients the integrations serve (``default_client`` set by ``sessionkit.api``)."""


def client_for(name: str) -> Optional[Any]:
    """The client a call of integration ``name`` goes to, or None: none records, or the one it
    belongs to (the current session's client, else the default or newest) leaves it out."""
    client = registry.owner_or_pick()
    if client is None or client.closed or not client.recording or name not in client.config.integrations:
        return None
    return client

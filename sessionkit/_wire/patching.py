"""Patching a class's method once, recognisably: the patched method is a
``wrapt.FunctionWrapper`` whose wrapper carries a marker, so patching twice (two clients,
``init`` twice, a reload) never wraps twice, and unpatching restores the original."""

from __future__ import annotations

from typing import Any

import wrapt

__all__ = ["is_wrapped", "unwrap", "wrap"]


def is_wrapped(cls: Any, name: str, marker: str) -> bool:
    """Whether ``cls.<name>`` is a wrapper marked with ``marker`` (False for no class)."""
    method = getattr(cls, "__dict__", {}).get(name)
    return isinstance(method, wrapt.FunctionWrapper) and getattr(method._self_wrapper, marker, False)


def wrap(cls: Any, name: str, wrapper: Any, marker: str) -> None:
    """Wrap ``cls.<name>`` with ``wrapper`` (marked), unless it is wrapped already."""
    if not is_wrapped(cls, name, marker):
        setattr(wrapper, marker, True)
        wrapt.wrap_function_wrapper(cls, name, wrapper)


def unwrap(cls: Any, name: str, marker: str) -> None:
    """Restore the method ``wrap`` replaced (nothing for no class: a module still importing)."""
    if is_wrapped(cls, name, marker):
        setattr(cls, name, cls.__dict__[name].__wrapped__)

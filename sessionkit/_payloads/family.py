"""``PayloadFamily``: what the wire hook needs of one API family's payload module, and
``family_of``, which imports the module of a family the first time a call of it is seen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .llm import LLMRequest, LLMResult

__all__ = ["PayloadFamily", "family_of"]


class PayloadFamily(Protocol):
    """One API family's requests, responses and streams. Implemented by the modules ``openai``,
    ``anthropic``, ``gemini``, ``cohere``, ``ollama`` and ``bedrock`` of this package."""

    @property
    def ARRAY_FIELDS(self) -> Mapping[str, str]:
        """The request field holding the message array, per API (long bodies are read by it)."""
        ...

    @property
    def StreamReader(self) -> Callable[..., Any]:
        """Reads a streamed answer: ``StreamReader(api, keep_text=...)``."""
        ...

    def parse_request(self, api: str, body: Any, messages: bool = True) -> LLMRequest: ...

    def parse_response(self, api: str, body: Any, result: LLMResult) -> None: ...

    def convert_messages(self, api: str, items: list[Any]) -> list[dict[str, Any]]: ...


def family_of(name: str) -> PayloadFamily:
    """The payload module of API family ``name`` (``Endpoint.family``), imported on first use."""
    if name == "openai":
        from . import openai

        return openai
    if name == "anthropic":
        from . import anthropic

        return anthropic
    if name == "gemini":
        from . import gemini

        return gemini
    if name == "cohere":
        from . import cohere

        return cohere
    if name == "ollama":
        from . import ollama

        return ollama
    if name == "bedrock":
        from . import bedrock

        return bedrock
    raise LookupError(f"sessionkit: no payload family {name!r}")

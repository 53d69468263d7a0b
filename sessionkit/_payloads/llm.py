"""What an LLM call is, independent of provider: recognising one, and its request and result.

Pure functions and plain data; no I/O. The provider modules fill these from their payloads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from .. import semconv

# (path suffix, api) in match order: the longest suffix that could be confused comes first.
_OPENAI_PATHS = (
    ("/chat/completions", "openai.chat"),
    ("/completions", "openai.completions"),
    ("/responses", "openai.responses"),
    ("/embeddings", "openai.embeddings"),
)
_NATIVE_PATHS = (
    ("/messages", "anthropic.messages"),
    ("/api/chat", "ollama.chat"),
    ("/api/generate", "ollama.generate"),
    ("/api/embed", "ollama.embed"),
    ("/api/embeddings", "ollama.embed"),
    ("/v2/chat", "cohere.chat"),
    ("/v2/embed", "cohere.embed"),
)
_BEDROCK_PATHS = {"invoke": "bedrock.invoke", "converse": "bedrock.converse"}
# Gemini and Vertex AI name the method after the model: .../models/{model}:generateContent
_GEMINI_METHODS = {
    "generateContent": "gemini.generate",
    "streamGenerateContent": "gemini.stream",
    "embedContent": "gemini.embed",
    "batchEmbedContents": "gemini.embed",
}

OPERATIONS = {
    "openai.chat": "chat",
    "openai.completions": "text_completion",
    "openai.responses": "chat",
    "openai.embeddings": "embeddings",
    "anthropic.messages": "chat",
    "gemini.generate": "generate_content",
    "gemini.stream": "generate_content",
    "gemini.embed": "embeddings",
    "ollama.chat": "chat",
    "ollama.generate": "text_completion",
    "ollama.embed": "embeddings",
    "cohere.chat": "chat",
    "cohere.embed": "embeddings",
    "bedrock.converse": "chat",
    "bedrock.converse_stream": "chat",
    "bedrock.invoke": "chat",
    "bedrock.invoke_stream": "chat",
}
# The provider of an unknown host that speaks an API family.
_FAMILY_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "ollama": "ollama",
    "cohere": "cohere",
    "bedrock": "aws.bedrock",
}


@dataclass(frozen=True)
class Endpoint:
    """A recognised LLM endpoint: which provider, which API, and where (and, for APIs that
    name it in the URL, the model)."""

    provider: str
    api: str
    host: str
    port: Optional[int]
    model: Optional[str] = None

    @property
    def operation(self) -> str:
        return OPERATIONS[self.api]

    @property
    def family(self) -> str:
        """The payload module that reads this API (``openai``, ``anthropic``, ``gemini``, ...)."""
        return self.api.partition(".")[0]


def _api_for(path: str, table: tuple[tuple[str, str], ...]) -> Optional[str]:
    for suffix, api in table:
        if path.endswith(suffix):
            return api
    return None


def _gemini(path: str) -> Optional[tuple[str, str]]:
    """``(api, model)`` of a Gemini / Vertex AI method path (or of Anthropic's models on Vertex
    AI, ``publishers/anthropic/models/{model}:rawPredict``), or None."""
    head, colon, method = path.rpartition(":")
    if not colon:
        return None
    api = _GEMINI_METHODS.get(method)
    if api is None:
        if method not in ("rawPredict", "streamRawPredict") or "/publishers/anthropic/" not in head:
            return None
        api = "anthropic.messages"
    before, slash, model = head.rpartition("/models/")
    if not slash or not model or "/" in model:
        return None
    return api, unquote(model)


def normalize_base_urls(base_urls: Any) -> dict[str, str]:
    """``["http://127.0.0.1:8000/v1"]`` or ``{"http://...": "vllm"}`` -> ``{prefix: provider}``
    (an empty provider means: infer it from the API path)."""
    if not base_urls:
        return {}
    if isinstance(base_urls, str):
        base_urls = [u for u in base_urls.split(",") if u.strip()]
    if isinstance(base_urls, Mapping):
        items = [(str(k), str(v or "")) for k, v in base_urls.items()]
    else:
        items = [(str(u), "") for u in base_urls]
    return {url.strip().rstrip("/"): provider for url, provider in items}


# Well-known hosts and the semantic conventions' provider name (gen_ai.provider.name) for them.
_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "aiplatform.googleapis.com": "gcp.vertex_ai",
    "openrouter.ai": "openrouter",
    "api.together.xyz": "together_ai",
    "api.fireworks.ai": "fireworks",
}
_HOST_SUFFIXES = (
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    ("-aiplatform.googleapis.com", "gcp.vertex_ai"),
    (".amazonaws.com", "aws.bedrock"),
)
EXCLUDED = "none"
"""The provider name in ``llm_base_urls`` that says: requests under this URL are not LLM calls."""


def api_of(method: str, url: str) -> Optional[str]:
    """The API an HTTP request's path belongs to (``openai.chat``, ``anthropic.messages``,
    ``gemini.generate``, ``ollama.chat``, ...), or None: no LLM API path, or not a POST. The
    first, cheap test every request passes."""
    if method != "POST":
        return None
    path = urlsplit(url).path.rstrip("/")
    if "/model/" in path:  # (a Bedrock model id may hold a colon too)
        found = _bedrock(path)
        if found is not None:
            return found[0]
    if ":" in path:
        found = _gemini(path)
        return found[0] if found is not None else None
    return _api_for(path, _NATIVE_PATHS) or _api_for(path, _OPENAI_PATHS)


def _bedrock(path: str) -> Optional[tuple[str, str]]:
    """``(api, model)`` of a Bedrock Runtime path sent over HTTP by hand or by an SDK that does
    not use botocore (``anthropic.AnthropicBedrock``): ``/model/{modelId}/invoke``, or None."""
    head, slash, operation = path.rpartition("/")
    api = _BEDROCK_PATHS.get(operation)
    _, marker, model = head.rpartition("/model/")
    if api is None or not marker or not model or "/" in model:
        return None
    return api, unquote(model)


def provider_of(host: str) -> Optional[str]:
    """The provider of a well-known host, or None."""
    found = _HOSTS.get(host)
    if found is None:
        found = next((name for suffix, name in _HOST_SUFFIXES if host.endswith(suffix)), None)
    return found


def match(method: str, url: str, base_urls: Mapping[str, str], recognised: Optional[str] = None) -> Optional[Endpoint]:
    """The endpoint an HTTP request goes to, or None when it is not an LLM call.

    A POST to an LLM API path (``/chat/completions``, ``/responses``, ``/messages``,
    ``/api/chat``, ``/v2/chat``, ``models/...:generateContent``, ...) is one when it goes to a
    well-known host, to a URL of ``llm_base_urls``, or when ``recognised`` is not None: the
    caller saw that the request itself is one (an LLM SDK's headers, or a body with a model and
    messages); a non-empty ``recognised`` names the provider the SDK is for. A Gemini method
    path is an LLM call by itself. ``llm_base_urls`` names a URL's provider, or excludes it
    (``"none"``).
    """
    api = api_of(method, url)
    if api is None:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    path = parts.path.rstrip("/")
    model: Optional[str] = None
    if api.startswith("bedrock."):
        found = _bedrock(path)
        model = found[1] if found is not None else None
    elif ":" in path:
        found = _gemini(path)
        model = found[1] if found is not None else None
        if recognised is None and api.startswith("gemini."):
            recognised = ""  # the method path says it all
    if base_urls:
        bare = f"{parts.scheme}://{parts.netloc}{path}"
        for prefix, provider in base_urls.items():
            if bare.startswith(prefix):
                if provider == EXCLUDED:
                    return None
                return Endpoint(provider or provider_of(host) or _family(api, path), api, host, port, model)
    known = provider_of(host)
    if known is not None:
        if known == "anthropic" and not api.startswith("anthropic."):
            return None  # api.anthropic.com has no OpenAI paths
        if known == "openai" and not api.startswith("openai."):
            return None
        return Endpoint(known, api, host, port, model)
    if recognised is not None:
        # an unknown host speaking a known API
        return Endpoint(recognised or _family(api, path), api, host, port, model)
    return None


def _family(api: str, path: str = "") -> str:
    """An unknown host's provider: the API family it speaks."""
    family = api.partition(".")[0]
    if "/publishers/" in path:  # Vertex AI's path to a model, Google's or another publisher's
        return "gcp.vertex_ai"
    return _FAMILY_PROVIDERS.get(family, family)


@dataclass
class LLMRequest:
    """What the request asked for."""

    model: Optional[str] = None
    stream: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    """``gen_ai.request.*`` attributes (temperature, max_tokens, top_p, ...)."""
    input_messages: Optional[list[dict[str, Any]]] = None
    system_instructions: Optional[list[dict[str, Any]]] = None


@dataclass
class LLMResult:
    """What came back, filled from a JSON body or from stream events as they pass."""

    response_id: Optional[str] = None
    response_model: Optional[str] = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cache_read_tokens: Optional[int] = None
    cache_creation_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    output_text: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    error_type: Optional[str] = None
    events: int = 0
    """Stream events seen."""
    ended: bool = False
    """The stream's own end event was seen ([DONE], message_stop, response.completed)."""

    def add_output(self, parts: list[dict[str, Any]]) -> None:
        """GenAI parts of the answer: text to ``output_text``, tool calls to ``tool_calls``."""
        for part in parts:
            if part["type"] == "text":
                self.output_text.append(part["content"])
            elif part["type"] == "tool_call":
                self.tool_calls.append({k: part.get(k) for k in ("id", "name", "arguments") if k in part})

    def add_cached_usage(
        self, fresh: Optional[int], cache_read: Optional[int], cache_write: Optional[int], output: Optional[int]
    ) -> None:
        """Usage of an API that counts cached input apart from fresh input (Anthropic, Bedrock
        Converse): the GenAI conventions count all input tokens."""
        if cache_read is not None:
            self.cache_read_tokens = cache_read
        if cache_write is not None:
            self.cache_creation_tokens = cache_write
        if fresh is not None:
            self.input_tokens = fresh + (cache_read or 0) + (cache_write or 0)
        if output is not None:
            self.output_tokens = output

    def output_messages(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if self.output_text:
            parts.append({"type": "text", "content": "".join(self.output_text)})
        parts.extend(
            tool_call_part(call.get("id"), call.get("name"), call.get("arguments")) for call in self.tool_calls
        )
        message: dict[str, Any] = {"role": "assistant", "parts": parts}
        if self.finish_reasons:
            message["finish_reason"] = self.finish_reasons[0]
        return [message]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def request_basics(body: Any, params: Mapping[str, str], stop_key: str) -> tuple[dict[str, Any], LLMRequest]:
    """The body as a dict, and a request with the model, stream flag, the numeric parameters
    named in ``params`` (body key -> attribute) and the stop sequences under ``stop_key``."""
    body = as_dict(body)
    request = LLMRequest(model=body.get("model") if isinstance(body.get("model"), str) else None)
    request.stream = body.get("stream") is True
    numeric_params(request, body, params)
    stop = body.get(stop_key)
    if isinstance(stop, str):
        request.params[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        request.params[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
    return body, request


def numeric_params(request: LLMRequest, source: Mapping[str, Any], params: Mapping[str, str]) -> None:
    """The numbers of ``source`` named in ``params`` (key -> attribute) onto ``request.params``."""
    for key, attribute in params.items():
        value = source.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            request.params[attribute] = value


def function_call_parts(calls: Any) -> list[dict[str, Any]]:
    """Tool calls of the ``{"id", "function": {"name", "arguments"}}`` shape (OpenAI chat,
    Cohere v2, Ollama) as GenAI ``tool_call`` parts."""
    out = []
    for call in as_list(calls):
        call = as_dict(call)
        function = as_dict(call.get("function"))
        out.append(tool_call_part(call.get("id"), function.get("name"), function.get("arguments")))
    return out


def chat_message(message: dict[str, Any], keep_empty_text: bool = True) -> dict[str, Any]:
    """A chat message (``role``, ``content``, ``tool_calls``; a ``tool`` message with its
    ``tool_call_id``) as a GenAI message. Without ``keep_empty_text``, empty content is no part."""
    role = str(message.get("role", "user"))
    if role == "tool":
        parts = [tool_response_part(message.get("tool_call_id"), message.get("content"))]
    else:
        content = message.get("content")
        parts = text_parts(content) if content or keep_empty_text else []
        parts += function_call_parts(message.get("tool_calls"))
    return {"role": role, "parts": parts}


def role_messages(items: list[Any]) -> list[dict[str, Any]]:
    """Messages of the ``{"role": ..., "content": ...}`` shape (OpenAI chat and Responses input,
    Anthropic messages) as GenAI semconv messages."""
    return [
        {"role": str(m.get("role", "user")), "parts": text_parts(m.get("content"))}
        for m in items
        if isinstance(m, dict)
    ]


def arguments_value(arguments: Any) -> Any:
    """A tool call's arguments as the GenAI schema has them: the JSON object when the text is
    one (OpenAI sends a string of JSON, possibly cut short in a stream), else as given."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def tool_call_part(call_id: Any, name: Any, arguments: Any = None) -> dict[str, Any]:
    """A GenAI ``tool_call`` part: the model asks for a tool, with its id, name and arguments."""
    part: dict[str, Any] = {"type": "tool_call", "id": call_id, "name": name}
    if arguments is not None:
        part["arguments"] = arguments_value(arguments)
    return part


def tool_response_part(call_id: Any, response: Any) -> dict[str, Any]:
    """A GenAI ``tool_call_response`` part: what the tool answered, with the call's id."""
    if isinstance(response, list):  # content blocks: their text
        texts = [p.get("content") for p in text_parts(response) if p.get("type") == "text"]
        response = "".join(str(t) for t in texts) if texts else response
    return {"type": "tool_call_response", "id": call_id, "response": response}


def text_parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string, or a list of typed parts) as GenAI semconv parts."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for item in content:
            if isinstance(item, str):
                parts.append({"type": "text", "content": item})
            elif isinstance(item, dict):
                kind = str(item.get("type", "unknown"))
                if kind in ("text", "input_text", "output_text") and isinstance(item.get("text"), str):
                    parts.append({"type": "text", "content": item["text"]})
                else:
                    parts.append({"type": kind})  # images, files, tool results: the kind only
    return parts


# -- what every LLM span says, whoever made it ------------------------------------------------------
def is_llm_span(attributes: Mapping[str, Any]) -> bool:
    """Whether a span (of sessionkit or any other tracer) stands for a call to a model: a GenAI
    model operation, or, without a GenAI operation, an OpenInference LLM span or a provider name."""
    operation = attributes.get(semconv.GEN_AI_OPERATION_NAME)
    if operation is not None:
        return operation in semconv.LLM_OPERATIONS
    return attributes.get(semconv.OPENINFERENCE_SPAN_KIND) == "LLM" or semconv.GEN_AI_PROVIDER_NAME in attributes


def counts_as_llm_call(attributes: Mapping[str, Any]) -> bool:
    """Whether a session counts this span as one of its LLM calls: an LLM span whose call was not
    also seen on the wire below it (then the wire-level child is the one counted)."""
    return is_llm_span(attributes) and not attributes.get(semconv.LLM_COUNTED_IN_CHILD)


def cost_attributes(cost: tuple[float, float, float]) -> dict[str, float]:
    """A call's cost (input, output, total, USD) in OpenInference's names."""
    return {semconv.LLM_COST_PROMPT: cost[0], semconv.LLM_COST_COMPLETION: cost[1], semconv.LLM_COST_TOTAL: cost[2]}


def usage_attributes(input_tokens: Optional[int], output_tokens: Optional[int]) -> dict[str, int]:
    """Token usage in the GenAI and the OpenInference names (the total when either is known)."""
    attrs: dict[str, int] = {}
    if input_tokens is not None:
        attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        attrs[semconv.LLM_TOKEN_COUNT_PROMPT] = input_tokens
    if output_tokens is not None:
        attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        attrs[semconv.LLM_TOKEN_COUNT_COMPLETION] = output_tokens
    if input_tokens is not None or output_tokens is not None:
        attrs[semconv.LLM_TOKEN_COUNT_TOTAL] = (input_tokens or 0) + (output_tokens or 0)
    return attrs


class EventReader:
    """The stream reader of an API whose events are JSON objects (one per SSE event or NDJSON
    line): ``event`` decodes one and hands it to ``take``, which fills ``result``."""

    def __init__(self, api: str, keep_text: bool = True) -> None:
        self.api = api
        self.keep_text = keep_text
        self.result = LLMResult()

    def skim(self, chunk: bytes) -> bool:
        """No fast path: every chunk is parsed."""
        return False

    def event(self, name: str, data: str) -> None:
        if not data or data == "[DONE]":
            return
        try:
            payload = json.loads(data)
        except ValueError:
            return
        self.take(payload)

    def take(self, payload: Any) -> None:
        """One decoded event; never raises on unexpected shapes."""
        raise NotImplementedError

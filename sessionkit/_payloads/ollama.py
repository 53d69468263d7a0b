"""Ollama's own API (the ``ollama`` package and plain HTTP): ``/api/chat``, ``/api/generate``,
``/api/embed``; streams are newline-delimited JSON, and they are the API's default.

Usage comes with the last chunk (``done: true``): ``prompt_eval_count`` input tokens,
``eval_count`` output tokens. Pure functions over decoded JSON; nothing here raises.
"""

from __future__ import annotations

from typing import Any

from .. import semconv
from .._values import as_count
from .llm import (
    EventReader,
    LLMRequest,
    LLMResult,
    as_dict,
    as_list,
    function_call_parts,
    numeric_params,
    text_parts,
    tool_response_part,
)

_OPTIONS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "top_k": semconv.GEN_AI_REQUEST_TOP_K,
    "num_predict": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "seed": semconv.GEN_AI_REQUEST_SEED,
    "frequency_penalty": semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": semconv.GEN_AI_REQUEST_PRESENCE_PENALTY,
}

ARRAY_FIELDS = {"ollama.chat": "messages"}
"""The field that holds the conversation, the part of a request that grows every turn."""


def convert_messages(api: str, items: list[Any]) -> list[dict[str, Any]]:
    """Chat messages as GenAI semconv messages; a ``tool`` message is a tool result (Ollama
    names the tool, not a call id)."""
    out: list[dict[str, Any]] = []
    for message in items:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", "user"))
        if role == "tool":
            part = tool_response_part(message.get("tool_call_id"), message.get("content"))
            if message.get("tool_name") is not None:
                part["name"] = message.get("tool_name")
            parts = [part]
        else:
            parts = text_parts(message.get("content")) if message.get("content") else []
            parts += [{"type": "image"} for _ in as_list(message.get("images"))]
            parts += function_call_parts(message.get("tool_calls"))
        out.append({"role": role, "parts": parts})
    return out


def parse_request(api: str, body: Any, messages: bool = True) -> LLMRequest:
    body = as_dict(body)
    model = body.get("model")
    # Ollama streams unless told not to.
    request = LLMRequest(model=model if isinstance(model, str) else None, stream=body.get("stream") is not False)
    if api == "ollama.embed":
        request.stream = False
    options = as_dict(body.get("options"))
    numeric_params(request, options, _OPTIONS)
    stop = options.get("stop")
    if isinstance(stop, list) and stop and all(isinstance(s, str) for s in stop):
        request.params[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
    if not messages:
        return request
    if api == "ollama.chat":
        request.input_messages = convert_messages(api, as_list(body.get("messages")))
    elif api == "ollama.generate" and isinstance(body.get("prompt"), str):
        request.input_messages = [{"role": "user", "parts": text_parts(body["prompt"])}]
    if isinstance(body.get("system"), str) and body["system"]:
        request.system_instructions = text_parts(body["system"])
    return request


def _chunk(result: LLMResult, body: dict[str, Any], keep_text: bool = True) -> None:
    if isinstance(body.get("model"), str):
        result.response_model = body["model"]
    if isinstance(body.get("error"), str):
        result.error_type = "error"
        return
    message = as_dict(body.get("message"))
    text = message.get("content") if message else body.get("response")
    if keep_text and isinstance(text, str) and text:
        result.output_text.append(text)
    result.add_output(function_call_parts(message.get("tool_calls")))
    if body.get("done") is True:
        result.ended = True
        if isinstance(body.get("done_reason"), str):
            result.finish_reasons = [body["done_reason"]]
        prompt = as_count(body.get("prompt_eval_count"))
        if prompt is not None:
            result.input_tokens = prompt
        output = as_count(body.get("eval_count"))
        if output is not None:
            result.output_tokens = output


def parse_response(api: str, body: Any, result: LLMResult) -> None:
    body = as_dict(body)
    if api == "ollama.embed":
        if isinstance(body.get("model"), str):
            result.response_model = body["model"]
        prompt = as_count(body.get("prompt_eval_count"))
        if prompt is not None:
            result.input_tokens = prompt
        if isinstance(body.get("error"), str):
            result.error_type = "error"
        return
    _chunk(result, body)


class StreamReader(EventReader):
    """An NDJSON stream: each line is a chunk; the last (``done: true``) carries the counts."""

    def skim(self, chunk: bytes) -> bool:
        """With content capture off, a chunk that is exactly one line of text only (not done, no
        tool calls, no error) is counted, not decoded. The first line is always decoded."""
        if self.keep_text or not self.result.events or not chunk.endswith(b"\n"):
            return False
        text = chunk.decode("latin-1")
        if (
            text.count("\n") == 1
            and ('"done":false' in text or '"done": false' in text)
            and '"tool_calls"' not in text
            and '"error"' not in text
        ):
            self.result.events += 1
            return True
        return False

    def take(self, payload: Any) -> None:
        self.result.events += 1
        if isinstance(payload, dict):
            _chunk(self.result, payload, self.keep_text)

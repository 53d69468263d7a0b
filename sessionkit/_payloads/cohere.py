"""Cohere v2 payloads (the ``cohere`` SDK's ``ClientV2``): ``/v2/chat`` plain and streamed
(SSE events ``message-start``, ``content-delta``, ``tool-call-*``, ``message-end``), and
``/v2/embed``. Pure functions over decoded JSON; nothing here raises on unexpected shapes.
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
    chat_message,
    function_call_parts,
    request_basics,
    text_parts,
)

_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "p": semconv.GEN_AI_REQUEST_TOP_P,
    "k": semconv.GEN_AI_REQUEST_TOP_K,
    "max_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "seed": semconv.GEN_AI_REQUEST_SEED,
    "frequency_penalty": semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": semconv.GEN_AI_REQUEST_PRESENCE_PENALTY,
}

ARRAY_FIELDS = {"cohere.chat": "messages"}
"""The field that holds the conversation, the part of a request that grows every turn."""


def convert_messages(api: str, items: list[Any]) -> list[dict[str, Any]]:
    """v2 chat messages as GenAI semconv messages, tool calls and tool results with their ids."""
    return [chat_message(message, keep_empty_text=False) for message in items if isinstance(message, dict)]


def parse_request(api: str, body: Any, messages: bool = True) -> LLMRequest:
    body, request = request_basics(body, _PARAMS, "stop_sequences")
    if not messages or api != "cohere.chat":
        return request
    converted = convert_messages(api, as_list(body.get("messages")))
    system = [m for m in converted if m["role"] == "system"]
    request.input_messages = [m for m in converted if m["role"] != "system"]
    if system:
        request.system_instructions = [part for m in system for part in m["parts"]]
    return request


def _usage(result: LLMResult, usage: Any) -> None:
    """``usage.tokens`` are the tokens the model saw; ``billed_units`` (what is charged) when
    those are not sent."""
    usage = as_dict(usage)
    for source in (as_dict(usage.get("billed_units")), as_dict(usage.get("tokens"))):  # tokens win
        found_in = as_count(source.get("input_tokens"))
        found_out = as_count(source.get("output_tokens"))
        if found_in is not None:
            result.input_tokens = found_in
        if found_out is not None:
            result.output_tokens = found_out


def _message(result: LLMResult, message: Any) -> None:
    message = as_dict(message)
    result.add_output(text_parts(message.get("content")) + function_call_parts(message.get("tool_calls")))


def parse_response(api: str, body: Any, result: LLMResult) -> None:
    body = as_dict(body)
    if isinstance(body.get("id"), str):
        result.response_id = body["id"]
    if api == "cohere.embed":
        _usage(result, body.get("meta"))
        return
    if isinstance(body.get("finish_reason"), str):
        result.finish_reasons = [body["finish_reason"].lower()]
    _usage(result, body.get("usage"))
    _message(result, body.get("message"))


class StreamReader(EventReader):
    """v2 chat stream events, each with its ``type``; tool-call arguments arrive in pieces."""

    def __init__(self, api: str, keep_text: bool = True) -> None:
        super().__init__(api, keep_text)
        self._calls: dict[int, dict[str, Any]] = {}

    def take(self, payload: Any) -> None:
        result = self.result
        result.events += 1
        payload = as_dict(payload)
        kind = payload.get("type")
        message = as_dict(as_dict(payload.get("delta")).get("message"))
        index = as_count(payload.get("index")) or 0
        if kind == "message-start":
            if isinstance(payload.get("id"), str):
                result.response_id = payload["id"]
        elif kind == "content-delta":
            text = as_dict(message.get("content")).get("text")
            if self.keep_text and isinstance(text, str):
                result.output_text.append(text)
        elif kind == "tool-call-start":
            call = as_dict(message.get("tool_calls"))
            function = as_dict(call.get("function"))
            found = {"id": call.get("id"), "name": function.get("name"), "arguments": function.get("arguments") or ""}
            result.tool_calls.append(found)
            self._calls[index] = found
        elif kind == "tool-call-delta":
            piece = as_dict(as_dict(message.get("tool_calls")).get("function")).get("arguments")
            pending = self._calls.get(index)
            if pending is not None and isinstance(piece, str):
                pending["arguments"] = str(pending.get("arguments") or "") + piece
        elif kind == "message-end":
            delta = as_dict(payload.get("delta"))
            if isinstance(delta.get("finish_reason"), str):
                result.finish_reasons = [delta["finish_reason"].lower()]
            _usage(result, delta.get("usage"))
            result.ended = True

"""Anthropic Messages API payloads. Pure functions over decoded JSON; nothing here raises."""

from __future__ import annotations

import json
from typing import Any

from .. import semconv
from .._values import as_count
from .llm import (
    LLMRequest,
    LLMResult,
    as_dict,
    as_list,
    request_basics,
    role_messages,
    text_parts,
    tool_call_part,
    tool_response_part,
)

_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "top_k": semconv.GEN_AI_REQUEST_TOP_K,
    "max_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
}


ARRAY_FIELDS = {"anthropic.messages": "messages"}
"""The field that holds the conversation, the part of a request that grows every turn."""


def convert_messages(api: str, items: list[Any]) -> list[dict[str, Any]]:
    """Messages API messages as GenAI semconv messages, ``tool_use`` and ``tool_result`` blocks
    as tool calls and tool results with their ids."""
    out: list[dict[str, Any]] = []
    for message in items:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if not isinstance(content, list):
            out.extend(role_messages([message]))
            continue
        parts: list[dict[str, Any]] = []
        for block in content:
            block = as_dict(block)
            kind = block.get("type")
            if kind == "tool_use":
                parts.append(tool_call_part(block.get("id"), block.get("name"), block.get("input")))
            elif kind == "tool_result":
                parts.append(tool_response_part(block.get("tool_use_id"), block.get("content")))
            else:
                parts.extend(text_parts([block]))
        out.append({"role": str(message.get("role", "user")), "parts": parts})
    return out


def parse_request(api: str, body: Any, messages: bool = True) -> LLMRequest:
    """The request's model and parameters; with ``messages``, its input and system prompt too."""
    body, request = request_basics(body, _PARAMS, "stop_sequences")
    if not messages:
        return request
    request.input_messages = convert_messages(api, as_list(body.get("messages")))
    system = body.get("system")
    if system:
        request.system_instructions = text_parts(system)
    return request


def _usage(result: LLMResult, usage: Any) -> None:
    usage = as_dict(usage)
    if not usage:
        return
    result.add_cached_usage(
        as_count(usage.get("input_tokens")),
        as_count(usage.get("cache_read_input_tokens")),
        as_count(usage.get("cache_creation_input_tokens")),
        as_count(usage.get("output_tokens")),
    )


def _content(result: LLMResult, blocks: Any) -> None:
    for block in as_list(blocks):
        block = as_dict(block)
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            result.output_text.append(block["text"])
        elif block.get("type") == "tool_use":
            found = {"id": block.get("id"), "name": block.get("name")}
            if block.get("input"):  # (a streamed block starts with {}; its input arrives in deltas)
                found["arguments"] = block["input"]
            result.tool_calls.append(found)


def parse_response(api: str, body: Any, result: LLMResult) -> None:
    body = as_dict(body)
    if body.get("type") == "error":
        result.error_type = str(as_dict(body.get("error")).get("type") or "error")
        return
    if isinstance(body.get("id"), str):
        result.response_id = body["id"]
    if isinstance(body.get("model"), str):
        result.response_model = body["model"]
    if isinstance(body.get("stop_reason"), str):
        result.finish_reasons = [body["stop_reason"]]
    _usage(result, body.get("usage"))
    _content(result, body.get("content"))


class StreamReader:
    """Reads Anthropic stream events (message_start, content_block_*, message_delta, ...).

    With ``keep_text`` False (content capture off), text deltas and pings are counted, not
    decoded: usage and stop reasons come in message_start and message_delta."""

    def __init__(self, api: str, keep_text: bool = True) -> None:
        self.api = api
        self.keep_text = keep_text
        self.result = LLMResult()
        self._calls: dict[int, dict[str, Any]] = {}  # tool_use blocks by index, their input arriving

    def skim(self, chunk: bytes) -> bool:
        """The per-chunk fast path, on raw bytes: True (and counted) when ``chunk`` is exactly
        one text-delta event (with content capture off) or ping; anything else, False."""
        if not chunk.startswith(b"event: "):
            return False
        text = chunk.decode("latin-1")  # str search is much cheaper than bytes search (see openai.py)
        if (
            (
                (text.startswith("event: content_block_delta\n") and not self.keep_text)
                or text.startswith("event: ping\n")
            )
            and text.count("\n") == 3
            and text.endswith("\n\n")
            and "\r" not in text
        ):
            self.result.events += 1
            return True
        return False

    def event(self, name: str, data: str) -> None:
        if name == "ping" or (not self.keep_text and name == "content_block_delta"):
            self.result.events += 1
            return
        try:
            payload = as_dict(json.loads(data))
        except ValueError:
            return
        self.result.events += 1
        kind = payload.get("type") or name
        result = self.result
        if kind == "message_start":
            message = as_dict(payload.get("message"))
            if isinstance(message.get("id"), str):
                result.response_id = message["id"]
            if isinstance(message.get("model"), str):
                result.response_model = message["model"]
            _usage(result, message.get("usage"))
        elif kind == "content_block_start":
            _content(result, [payload.get("content_block")])
            if as_dict(payload.get("content_block")).get("type") == "tool_use" and result.tool_calls:
                self._calls[as_count(payload.get("index")) or 0] = result.tool_calls[-1]
        elif kind == "content_block_delta":
            delta = as_dict(payload.get("delta"))
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                result.output_text.append(delta["text"])
            elif delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
                call = self._calls.get(as_count(payload.get("index")) or 0)
                if call is not None:
                    call["arguments"] = str(call.get("arguments") or "") + delta["partial_json"]
        elif kind == "message_delta":
            delta = as_dict(payload.get("delta"))
            if isinstance(delta.get("stop_reason"), str):
                result.finish_reasons = [delta["stop_reason"]]
            usage = as_dict(payload.get("usage"))
            # message_delta carries the cumulative output count (and input counts, when sent)
            output = as_count(usage.get("output_tokens"))
            if output is not None:
                result.output_tokens = output
            if as_count(usage.get("input_tokens")) is not None:
                _usage(result, {k: v for k, v in usage.items() if k != "output_tokens"})
        elif kind == "message_stop":
            result.ended = True
        elif kind == "error":
            result.error_type = str(as_dict(payload.get("error")).get("type") or "error")

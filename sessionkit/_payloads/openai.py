"""OpenAI and OpenAI-compatible payloads: chat completions, completions, responses, embeddings.

Pure functions over decoded JSON; nothing here raises on unexpected shapes.
"""

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
    chat_message,
    request_basics,
    role_messages,
    text_parts,
    tool_call_part,
    tool_response_part,
)

_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "max_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "max_output_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "frequency_penalty": semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": semconv.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": semconv.GEN_AI_REQUEST_SEED,
    "n": semconv.GEN_AI_REQUEST_CHOICE_COUNT,
}


ARRAY_FIELDS = {"openai.chat": "messages", "openai.responses": "input"}
"""The field that holds each API's conversation, the part of a request that grows every turn."""


def convert_messages(api: str, items: list[Any]) -> list[dict[str, Any]]:
    """Chat messages or Responses input items as GenAI semconv messages, tool calls and tool
    results included (with their call ids)."""
    if api == "openai.responses":
        return [_input_item(item) for item in items if isinstance(item, dict)]
    return [chat_message(message) for message in items if isinstance(message, dict)]


def _input_item(item: dict[str, Any]) -> dict[str, Any]:
    """One Responses input item as a GenAI message."""
    kind = item.get("type")
    if kind == "function_call":
        return {
            "role": "assistant",
            "parts": [tool_call_part(item.get("call_id"), item.get("name"), item.get("arguments"))],
        }
    if kind == "function_call_output":
        return {"role": "tool", "parts": [tool_response_part(item.get("call_id"), item.get("output"))]}
    if kind in (None, "message") or "role" in item:
        return role_messages([item])[0]
    if kind == "reasoning":
        return {"role": "assistant", "parts": [{"type": "reasoning"}]}
    return {"role": "user", "parts": [{"type": str(kind)}]}  # images, files, references: the kind only


def parse_request(api: str, body: Any, messages: bool = True) -> LLMRequest:
    """The request's model and parameters; with ``messages``, its input too (only needed when
    content is captured: building it walks the whole conversation history on every call)."""
    body, request = request_basics(body, _PARAMS, "stop")
    if not messages:
        return request
    if api == "openai.chat":
        request.input_messages = convert_messages(api, as_list(body.get("messages")))
    elif api == "openai.completions":
        prompt = body.get("prompt")
        request.input_messages = [
            {"role": "user", "parts": text_parts(prompt if isinstance(prompt, (str, list)) else "")}
        ]
    elif api == "openai.responses":
        items = body.get("input")
        if isinstance(items, str):
            request.input_messages = [{"role": "user", "parts": text_parts(items)}]
        elif isinstance(items, list):
            request.input_messages = convert_messages(api, items)
        if isinstance(body.get("instructions"), str):
            request.system_instructions = [{"type": "text", "content": body["instructions"]}]
    return request


def _usage(result: LLMResult, usage: Any) -> None:
    usage = as_dict(usage)
    if not usage:
        return
    # chat/completions/embeddings say prompt/completion; responses says input/output
    input_tokens = as_count(usage.get("prompt_tokens", usage.get("input_tokens")))
    output_tokens = as_count(usage.get("completion_tokens", usage.get("output_tokens")))
    if input_tokens is not None:
        result.input_tokens = input_tokens
    if output_tokens is not None:
        result.output_tokens = output_tokens
    details_in = as_dict(usage.get("prompt_tokens_details") or usage.get("input_tokens_details"))
    details_out = as_dict(usage.get("completion_tokens_details") or usage.get("output_tokens_details"))
    if as_count(details_in.get("cached_tokens")) is not None:
        result.cache_read_tokens = details_in["cached_tokens"]
    if as_count(details_out.get("reasoning_tokens")) is not None:
        result.reasoning_tokens = details_out["reasoning_tokens"]


def _tool_call(call: Any) -> dict[str, Any]:
    call = as_dict(call)
    function = as_dict(call.get("function"))
    found = {"id": call.get("id"), "name": function.get("name") or call.get("name")}
    if isinstance(function.get("arguments"), str):
        found["arguments"] = function["arguments"]
    return found


def parse_response(api: str, body: Any, result: LLMResult) -> None:
    body = as_dict(body)
    if isinstance(body.get("id"), str):
        result.response_id = body["id"]
    if isinstance(body.get("model"), str):
        result.response_model = body["model"]
    _usage(result, body.get("usage"))
    if api in ("openai.chat", "openai.completions"):
        for choice in as_list(body.get("choices")):
            choice = as_dict(choice)
            if isinstance(choice.get("finish_reason"), str):
                result.finish_reasons.append(choice["finish_reason"])
            message = as_dict(choice.get("message"))
            text = message.get("content") if message else choice.get("text")
            if isinstance(text, str):
                result.output_text.append(text)
            for call in as_list(message.get("tool_calls")):
                result.tool_calls.append(_tool_call(call))
    elif api == "openai.responses":
        if isinstance(body.get("status"), str):
            result.finish_reasons.append(body["status"])
        for item in as_list(body.get("output")):
            item = as_dict(item)
            if item.get("type") == "message":
                for part in as_list(item.get("content")):
                    part = as_dict(part)
                    if isinstance(part.get("text"), str):
                        result.output_text.append(part["text"])
            elif item.get("type") == "function_call":
                result.tool_calls.append(
                    {"id": item.get("call_id"), "name": item.get("name"), "arguments": item.get("arguments")}
                )
    error = as_dict(body.get("error"))
    if error:
        result.error_type = str(error.get("type") or error.get("code") or "error")


def _count_only(data: str) -> bool:
    """A chat chunk that only carries more text, or more of a tool call's arguments (the call's
    id and name came in an earlier chunk): no usage, no finish reason, no error. Reading it
    needs no JSON decoding unless content is kept."""
    if '"finish_reason":null' not in data and '"finish_reason": null' not in data:
        return False
    if '"usage":{' in data or '"usage": {' in data or '"error"' in data:
        return False
    at = data.find('"tool_calls"')
    if at < 0:
        return True
    calls = data[at:]
    return '"id"' not in calls and '"name"' not in calls


class StreamReader:
    """Reads OpenAI SSE events as they pass; ``result`` holds what was seen so far.

    With ``keep_text`` False (content capture off), chunks that only add text are counted, not
    decoded: usage, ids and finish reasons are in other chunks."""

    def __init__(self, api: str, keep_text: bool = True) -> None:
        self.api = api
        self.keep_text = keep_text
        self.result = LLMResult()
        self._finish: dict[int, str] = {}
        self._calls: dict[int, dict[str, Any]] = {}  # streamed tool calls by index
        self._skims = api == "openai.chat" and not keep_text

    def skim(self, chunk: bytes) -> bool:
        """The per-chunk fast path: True (and counted) when ``chunk`` is exactly one SSE event
        holding a text-only chat delta, after the first chunk gave the ids. Anything else
        (False) goes through the SSE parser and :meth:`event`.

        The tests run on the chunk decoded as latin-1 (one C call that cannot fail): substring
        search on ``str`` costs a fraction of the same search on ``bytes``."""
        if not self._skims or self.result.response_id is None:
            return False
        text = chunk.decode("latin-1")
        if (
            text.startswith("data: {")
            and text.find("\n") == len(text) - 2  # one line, then the blank line ending the event
            and text.endswith("\n\n")
            and "\r" not in text
            and _count_only(text)
        ):
            self.result.events += 1
            return True
        return False

    def event(self, name: str, data: str) -> None:
        if data == "[DONE]":
            self.result.ended = True
            return
        if not self.keep_text and self.result.response_id is not None:
            if self.api == "openai.chat" and _count_only(data):
                self.result.events += 1
                return
            if self.api == "openai.responses" and (
                '"response.output_text.delta"' in data or '"response.function_call_arguments.delta"' in data
            ):
                self.result.events += 1
                return
        try:
            payload = json.loads(data)
        except ValueError:
            return
        payload = as_dict(payload)
        self.result.events += 1
        if self.api == "openai.responses":
            self._responses_event(payload)
            return
        result = self.result
        if isinstance(payload.get("id"), str):
            result.response_id = payload["id"]
        if isinstance(payload.get("model"), str):
            result.response_model = payload["model"]
        _usage(result, payload.get("usage"))  # the final chunk with stream_options.include_usage
        for choice in as_list(payload.get("choices")):
            choice = as_dict(choice)
            delta = as_dict(choice.get("delta"))
            text = delta.get("content") if delta else choice.get("text")
            if isinstance(text, str):
                result.output_text.append(text)
            for call in as_list(delta.get("tool_calls")):
                call = as_dict(call)
                index = as_count(call.get("index")) or 0
                found = self._calls.get(index)
                if call.get("id"):
                    found = self._calls[index] = _tool_call(call)
                    result.tool_calls.append(found)
                elif found is not None and self.keep_text:  # more of its arguments
                    more = as_dict(call.get("function")).get("arguments")
                    if isinstance(more, str):
                        found["arguments"] = found.get("arguments", "") + more
            if isinstance(choice.get("finish_reason"), str):
                self._finish[as_count(choice.get("index")) or 0] = choice["finish_reason"]
        result.finish_reasons = [self._finish[i] for i in sorted(self._finish)]
        error = as_dict(payload.get("error"))
        if error:
            result.error_type = str(error.get("type") or error.get("code") or "error")

    def _responses_event(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if kind == "response.output_text.delta" and isinstance(payload.get("delta"), str):
            self.result.output_text.append(payload["delta"])
        elif kind in ("response.created", "response.completed", "response.incomplete", "response.failed"):
            self.result.ended = kind != "response.created"
            response = as_dict(payload.get("response"))
            text = list(self.result.output_text)
            self.result.finish_reasons = []
            self.result.tool_calls = []  # the final response lists every function call, arguments whole
            parse_response("openai.responses", response, self.result)
            if text:  # the text as it streamed (the same as the response's, which is not added twice)
                self.result.output_text = text
        elif kind == "error":
            self.result.error_type = str(payload.get("code") or "error")

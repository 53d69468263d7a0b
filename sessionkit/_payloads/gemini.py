"""Gemini and Vertex AI payloads (``google-genai`` and the REST API): ``generateContent``,
``streamGenerateContent`` (SSE events, or one JSON array), ``embedContent``.

The model is named in the URL (``models/{model}:generateContent``), not in the body. Pure
functions over decoded JSON; nothing here raises on unexpected shapes.
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
    numeric_params,
    tool_call_part,
    tool_response_part,
)

_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "topP": semconv.GEN_AI_REQUEST_TOP_P,
    "topK": semconv.GEN_AI_REQUEST_TOP_K,
    "maxOutputTokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "candidateCount": semconv.GEN_AI_REQUEST_CHOICE_COUNT,
    "presencePenalty": semconv.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "frequencyPenalty": semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "seed": semconv.GEN_AI_REQUEST_SEED,
}

ARRAY_FIELDS = {"gemini.generate": "contents", "gemini.stream": "contents"}
"""The field that holds the conversation, the part of a request that grows every turn."""


def _parts(parts: Any) -> list[dict[str, Any]]:
    """Gemini parts as GenAI parts: text, thoughts, function calls and responses (with their
    ids when the API sent one), and the kind of anything else (inline data, files, code)."""
    out: list[dict[str, Any]] = []
    for part in as_list(parts):
        part = as_dict(part)
        if isinstance(part.get("text"), str):
            kind = "reasoning" if part.get("thought") is True else "text"
            out.append({"type": kind, "content": part["text"]})
        elif "functionCall" in part:
            call = as_dict(part["functionCall"])
            out.append(tool_call_part(call.get("id"), call.get("name"), call.get("args")))
        elif "functionResponse" in part:
            response = as_dict(part["functionResponse"])
            found = tool_response_part(response.get("id"), response.get("response"))
            found["name"] = response.get("name")
            out.append(found)
        elif part:
            out.append({"type": next(iter(part))})  # inlineData, fileData, executableCode, ...
    return out


def _role(role: Any, parts: list[dict[str, Any]]) -> str:
    if role == "model":
        return "assistant"
    if parts and all(p.get("type") == "tool_call_response" for p in parts):
        return "tool"
    return str(role or "user")


def convert_messages(api: str, items: list[Any]) -> list[dict[str, Any]]:
    """``contents`` as GenAI semconv messages (``model`` is the assistant)."""
    out = []
    for content in items:
        if isinstance(content, dict):
            parts = _parts(content.get("parts"))
            out.append({"role": _role(content.get("role"), parts), "parts": parts})
    return out


def parse_request(api: str, body: Any, messages: bool = True) -> LLMRequest:
    """The request's parameters (``generationConfig``) and, with ``messages``, its contents and
    system instruction. The stream flag is the API's: ``streamGenerateContent`` streams."""
    body = as_dict(body)
    request = LLMRequest(stream=api == "gemini.stream")
    config = as_dict(body.get("generationConfig"))
    numeric_params(request, config, _PARAMS)
    stop = config.get("stopSequences")
    if isinstance(stop, list) and stop and all(isinstance(s, str) for s in stop):
        request.params[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
    if not messages:
        return request
    contents = body.get("contents")
    if isinstance(contents, dict):  # a single content is allowed
        contents = [contents]
    request.input_messages = convert_messages(api, as_list(contents))
    system = as_dict(body.get("systemInstruction") or body.get("system_instruction"))
    if system:
        request.system_instructions = _parts(system.get("parts"))
    return request


def _usage(result: LLMResult, usage: Any) -> None:
    """``usageMetadata``: prompt tokens include the cached ones; output counts the candidates'
    tokens and the thinking tokens (as OpenAI's completion tokens include reasoning)."""
    usage = as_dict(usage)
    if not usage:
        return
    prompt = as_count(usage.get("promptTokenCount"))
    tool_prompt = as_count(usage.get("toolUsePromptTokenCount"))
    if prompt is not None:
        result.input_tokens = prompt + (tool_prompt or 0)
    candidates = as_count(usage.get("candidatesTokenCount"))
    thoughts = as_count(usage.get("thoughtsTokenCount"))
    if candidates is not None or thoughts is not None:
        result.output_tokens = (candidates or 0) + (thoughts or 0)
    if thoughts is not None:
        result.reasoning_tokens = thoughts
    cached = as_count(usage.get("cachedContentTokenCount"))
    if cached is not None:
        result.cache_read_tokens = cached


def _chunk(result: LLMResult, body: dict[str, Any]) -> None:
    """One response (or stream chunk): its candidates' content, finish reasons and usage."""
    if isinstance(body.get("responseId"), str):
        result.response_id = body["responseId"]
    if isinstance(body.get("modelVersion"), str):
        result.response_model = body["modelVersion"]
    for candidate in as_list(body.get("candidates")):
        candidate = as_dict(candidate)
        if candidate.get("index", 0) != 0:
            continue  # the first candidate is the answer; others are alternatives
        result.add_output(_parts(as_dict(candidate.get("content")).get("parts")))
        reason = candidate.get("finishReason")
        if isinstance(reason, str):
            result.finish_reasons = [reason.lower()]
            result.ended = True
    _usage(result, body.get("usageMetadata"))
    if "error" in body:
        error = as_dict(body.get("error"))
        result.error_type = str(error.get("status") or error.get("code") or "error")


def parse_response(api: str, body: Any, result: LLMResult) -> None:
    """A response body; a list is a whole stream sent as one JSON array."""
    if isinstance(body, list):
        result.events += len(body)
        for chunk in body:
            if isinstance(chunk, dict):
                _chunk(result, chunk)
        return
    body = as_dict(body)
    if api == "gemini.embed":
        _usage(result, body.get("usageMetadata"))
        metadata = as_dict(body.get("metadata"))  # Vertex AI: billable characters, sometimes tokens
        if result.input_tokens is None and as_count(metadata.get("tokenCount")) is not None:
            result.input_tokens = as_count(metadata.get("tokenCount"))
        if "error" in body:
            result.error_type = str(as_dict(body.get("error")).get("status") or "error")
        return
    _chunk(result, body)


class StreamReader(EventReader):
    """``streamGenerateContent?alt=sse``: each event is a whole response chunk; usage in each
    chunk is the running total, so the last one counts."""

    def skim(self, chunk: bytes) -> bool:
        """With content capture off, a chunk that is exactly one event of text only (no finish
        reason, function call or error) is counted, not decoded: the last chunk carries the
        usage and finish reason. The first event is always decoded (time to first chunk)."""
        if self.keep_text or not self.result.events or not chunk.startswith(b"data: "):
            return False
        text = chunk.decode("latin-1")  # str search is much cheaper than bytes search
        if (
            text.count("\n") == 2
            and (text.endswith("\n\n") or text.endswith("\r\n\r\n"))
            and '"finishReason"' not in text
            and '"functionCall"' not in text
            and '"error"' not in text
        ):
            self.result.events += 1
            return True
        return False

    def take(self, payload: Any) -> None:
        self.result.events += 1
        if isinstance(payload, dict):
            _chunk(self.result, payload)

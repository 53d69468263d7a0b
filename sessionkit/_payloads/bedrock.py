"""AWS Bedrock Runtime payloads: Converse and ConverseStream (one shape for every model), and
InvokeModel / InvokeModelWithResponseStream (each model family's own body: Anthropic's
Messages API, Amazon Nova's messages, or a prompt and its generation).

botocore decodes the responses: ``parse_response`` and ``StreamReader.take`` get Python objects
(InvokeModel's as ``{"body": ..., "input_tokens": ..., "output_tokens": ...}``, the counts from
Bedrock's headers). Pure functions; nothing here raises on unexpected shapes.
"""

from __future__ import annotations

import json
from typing import Any

from .. import semconv
from .._values import as_count
from . import anthropic
from .llm import (
    EventReader,
    LLMRequest,
    LLMResult,
    as_dict,
    as_list,
    numeric_params,
    text_parts,
    tool_call_part,
    tool_response_part,
)

_INFERENCE = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "topP": semconv.GEN_AI_REQUEST_TOP_P,
    "maxTokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "max_new_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "maxTokenCount": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "max_gen_len": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
}

ARRAY_FIELDS = {"bedrock.converse": "messages", "bedrock.converse_stream": "messages"}
"""The field that holds the conversation, the part of a request that grows every turn."""


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Converse content blocks as GenAI parts."""
    out: list[dict[str, Any]] = []
    for block in as_list(content):
        block = as_dict(block)
        if isinstance(block.get("text"), str):
            out.append({"type": "text", "content": block["text"]})
        elif "toolUse" in block:
            use = as_dict(block["toolUse"])
            out.append(tool_call_part(use.get("toolUseId"), use.get("name"), use.get("input")))
        elif "toolResult" in block:
            found = as_dict(block["toolResult"])
            response: Any = [
                {"type": "text", "text": c["text"]} if isinstance(c.get("text"), str) else c.get("json")
                for c in (as_dict(c) for c in as_list(found.get("content")))
            ]
            if len(response) == 1 and not isinstance(response[0], dict):
                response = response[0]
            out.append(tool_response_part(found.get("toolUseId"), response))
        elif "reasoningContent" in block:
            out.append({"type": "reasoning"})
        elif block:
            out.append({"type": next(iter(block))})  # image, document, video, cachePoint, ...
    return out


def convert_messages(api: str, items: list[Any]) -> list[dict[str, Any]]:
    """Converse messages as GenAI semconv messages; a user message of tool results only is the
    tool's."""
    out = []
    for message in items:
        if not isinstance(message, dict):
            continue
        parts = _blocks(message.get("content"))
        role = str(message.get("role", "user"))
        if role == "user" and parts and all(p["type"] == "tool_call_response" for p in parts):
            role = "tool"
        out.append({"role": role, "parts": parts})
    return out


def _params(request: LLMRequest, config: dict[str, Any]) -> None:
    numeric_params(request, config, _INFERENCE)
    stop = config.get("stopSequences") or config.get("stop_sequences") or config.get("stop")
    if isinstance(stop, list) and stop and all(isinstance(s, str) for s in stop):
        request.params[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)


def _is_anthropic(body: dict[str, Any]) -> bool:
    return "anthropic_version" in body


def parse_request(api: str, body: Any, messages: bool = True) -> LLMRequest:
    """Converse's request, or an InvokeModel body of the model's own shape."""
    body = as_dict(body)
    if api.startswith("bedrock.invoke") and _is_anthropic(body):
        request = anthropic.parse_request("anthropic.messages", body, messages)
        request.stream = api == "bedrock.invoke_stream"
        return request
    request = LLMRequest(stream=api in ("bedrock.converse_stream", "bedrock.invoke_stream"))
    _params(request, as_dict(body.get("inferenceConfig") or body.get("textGenerationConfig")))
    _params(request, body)
    if not messages:
        return request
    if isinstance(body.get("messages"), list):
        request.input_messages = convert_messages(api, body["messages"])
    else:
        prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else body.get("inputText")
        if isinstance(prompt, str):
            request.input_messages = [{"role": "user", "parts": text_parts(prompt)}]
    system = body.get("system")
    if isinstance(system, list):
        request.system_instructions = _blocks(system)
    elif isinstance(system, str) and system:
        request.system_instructions = text_parts(system)
    return request


def _usage(result: LLMResult, usage: Any) -> None:
    """Converse usage: ``inputTokens`` excludes the cached ones, counted apart (as Anthropic
    does); the GenAI conventions count all input tokens."""
    usage = as_dict(usage)
    result.add_cached_usage(
        as_count(usage.get("inputTokens")),
        as_count(usage.get("cacheReadInputTokens")),
        as_count(usage.get("cacheWriteInputTokens")),
        as_count(usage.get("outputTokens")),
    )


def _output(result: LLMResult, message: Any) -> None:
    result.add_output(_blocks(as_dict(message).get("content")))


def _count(value: Any) -> Any:
    """A header's count (a string of digits), or None."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return as_count(value)


def _invoke_body(result: LLMResult, body: dict[str, Any]) -> None:
    if _is_anthropic_response(body):
        anthropic.parse_response("anthropic.messages", body, result)
        return
    if "output" in body:  # Amazon Nova
        _output(result, as_dict(body.get("output")).get("message"))
        if isinstance(body.get("stopReason"), str):
            result.finish_reasons = [body["stopReason"]]
        _usage(result, body.get("usage"))
        return
    results = as_list(body.get("results"))  # Amazon Titan
    if results:
        first = as_dict(results[0])
        if isinstance(first.get("outputText"), str):
            result.output_text.append(first["outputText"])
        if isinstance(first.get("completionReason"), str):
            result.finish_reasons = [first["completionReason"].lower()]
        result.input_tokens = as_count(body.get("inputTextTokenCount"))
        result.output_tokens = as_count(first.get("tokenCount"))
        return
    text = body.get("generation") if isinstance(body.get("generation"), str) else body.get("outputs")
    if isinstance(text, str):  # Meta Llama
        result.output_text.append(text)
    if isinstance(body.get("stop_reason"), str):
        result.finish_reasons = [body["stop_reason"]]
    result.input_tokens = as_count(body.get("prompt_token_count"))
    result.output_tokens = as_count(body.get("generation_token_count"))


def _is_anthropic_response(body: dict[str, Any]) -> bool:
    return body.get("type") == "error" or (body.get("type") == "message" and "content" in body)


def parse_response(api: str, body: Any, result: LLMResult) -> None:
    body = as_dict(body)
    if api == "bedrock.invoke":
        if not isinstance(body.get("body"), dict):  # the model's own body, read over HTTP
            _invoke_body(result, body)
            return
        _invoke_body(result, as_dict(body.get("body")))
        # Bedrock's own counts, in the response headers, for every model
        input_tokens, output_tokens = _count(body.get("input_tokens")), _count(body.get("output_tokens"))
        if input_tokens is not None:
            result.input_tokens = input_tokens
        if output_tokens is not None:
            result.output_tokens = output_tokens
        return
    _output(result, as_dict(body.get("output")).get("message"))
    if isinstance(body.get("stopReason"), str):
        result.finish_reasons = [body["stopReason"]]
    _usage(result, body.get("usage"))


class StreamReader(EventReader):
    """ConverseStream events as botocore decodes them (``{"contentBlockDelta": {...}}``), or
    InvokeModelWithResponseStream chunks (``{"chunk": {"bytes": ...}}``, each the model's own
    stream event; the last carries Bedrock's invocation metrics)."""

    def __init__(self, api: str, keep_text: bool = True) -> None:
        super().__init__(api, keep_text)
        self._calls: dict[int, dict[str, Any]] = {}
        self._anthropic = anthropic.StreamReader("anthropic.messages", keep_text)
        self._anthropic.result = self.result

    def take(self, payload: Any) -> None:
        result = self.result
        payload = as_dict(payload)
        if "chunk" in payload:
            self._chunk(as_dict(payload["chunk"]).get("bytes"))
            return
        result.events += 1
        if "contentBlockStart" in payload:
            event = as_dict(payload["contentBlockStart"])
            use = as_dict(as_dict(event.get("start")).get("toolUse"))
            if use:
                found = {"id": use.get("toolUseId"), "name": use.get("name"), "arguments": ""}
                result.tool_calls.append(found)
                self._calls[as_count(event.get("contentBlockIndex")) or 0] = found
        elif "contentBlockDelta" in payload:
            event = as_dict(payload["contentBlockDelta"])
            delta = as_dict(event.get("delta"))
            if isinstance(delta.get("text"), str):
                if self.keep_text:
                    result.output_text.append(delta["text"])
            elif "toolUse" in delta:
                piece = as_dict(delta["toolUse"]).get("input")
                pending = self._calls.get(as_count(event.get("contentBlockIndex")) or 0)
                if pending is not None and isinstance(piece, str):
                    pending["arguments"] = str(pending.get("arguments") or "") + piece
        elif "messageStop" in payload:
            reason = as_dict(payload["messageStop"]).get("stopReason")
            if isinstance(reason, str):
                result.finish_reasons = [reason]
        elif "metadata" in payload:
            _usage(result, as_dict(payload["metadata"]).get("usage"))
            result.ended = True
        elif any(key.endswith("Exception") for key in payload):
            result.error_type = next(key for key in payload if key.endswith("Exception"))

    def _chunk(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, str)):
            return
        try:
            event = as_dict(json.loads(data))
        except ValueError:
            return
        metrics = as_dict(event.get("amazon-bedrock-invocationMetrics"))
        if isinstance(event.get("type"), str):
            self._anthropic.event(str(event["type"]), json.dumps(event))
        else:
            self.result.events += 1
            _invoke_body(self.result, event)
        if metrics:
            self.result.input_tokens = as_count(metrics.get("inputTokenCount"))
            self.result.output_tokens = as_count(metrics.get("outputTokenCount"))
            self.result.ended = True

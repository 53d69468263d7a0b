"""A fake server on 127.0.0.1 for the native provider APIs, speaking each one's wire format, so
the real SDKs (google-genai, ollama, cohere, mistralai, boto3) talk to it unchanged:

- Gemini: ``POST .../models/{model}:generateContent`` / ``:streamGenerateContent`` (SSE with
  ``alt=sse``, else one JSON array) / ``:embedContent``
- Ollama: ``/api/chat``, ``/api/generate`` (NDJSON streams), ``/api/embed``
- Cohere v2: ``/v2/chat`` (JSON, or SSE events), ``/v2/embed``
- Mistral: ``/v1/chat/completions`` (JSON, or SSE with usage in the last chunk)
- Bedrock Runtime: ``/model/{id}/converse``, ``/converse-stream`` (AWS event stream frames),
  ``/invoke``

A request that offers tools and has no tool result yet is answered with a call of the first
tool (``{"city": "Paris"}``); otherwise with text. Each answer's token counts are kept in
``reported`` (input, output), in order.
"""

from __future__ import annotations

import binascii
import json
import struct
from typing import Any
from urllib.parse import unquote, urlsplit

from ._loopback import LoopbackServer

__all__ = ["FakeProviderServer"]

REPLY = ["The ", "weather ", "is ", "sunny ", "today"]
ARGS = {"city": "Paris"}


def _words(body: Any) -> int:
    return len(json.dumps(body).split()) // 4 + 3


def _frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event stream message (application/vnd.amazon.eventstream)."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        raw = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers + body
    return message + struct.pack(">I", binascii.crc32(message))


class FakeProviderServer(LoopbackServer):
    """``with FakeProviderServer() as server:`` then point an SDK at ``server.url``: Gemini,
    Ollama, Cohere, Mistral, Anthropic (messages) and Bedrock (Converse, InvokeModel, streams)."""

    thread_name = "fake-providers"

    def __init__(self) -> None:
        super().__init__()
        self.reported: list[tuple[int, int]] = []

    def _report(self, tokens_in: int, tokens_out: int) -> None:
        with self._lock:
            self.reported.append((tokens_in, tokens_out))

    # -- the wire ---------------------------------------------------------------------------------
    @staticmethod
    def _chunks(handler: Any, content_type: str, pieces: list[bytes]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for piece in pieces:
            handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

    def _sse(self, handler: Any, events: list[tuple[str, Any]], done: bool = False) -> None:
        pieces = [((f"event: {n}\n" if n else "") + f"data: {json.dumps(d)}\n\n").encode() for n, d in events]
        if done:
            pieces.append(b"data: [DONE]\n\n")
        self._chunks(handler, "text/event-stream", pieces)

    # -- the answers ------------------------------------------------------------------------------
    def answer(self, handler: Any, body: Any) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        if ":" in path.rsplit("/", 1)[-1]:
            model, _, method = path.rsplit("/", 1)[-1].partition(":")
            self._gemini(handler, body, unquote(model), method, "alt=sse" in parts.query)
        elif path.startswith("/api/"):
            self._ollama(handler, body, path)
        elif path.startswith("/v2/"):
            self._cohere(handler, body, path)
        elif path == "/v1/chat/completions":
            self._mistral(handler, body)
        elif path.startswith("/model/"):
            model, _, operation = path[len("/model/") :].rpartition("/")
            self._bedrock(handler, body, unquote(model), operation)
        else:
            self.send_json(handler, {"error": f"unknown path {path}"}, 404)

    # Gemini ----------------------------------------------------------------------------------------
    def _gemini(self, handler: Any, body: dict[str, Any], model: str, method: str, sse: bool) -> None:
        if method == "rawPredict":  # Anthropic's models on Vertex AI: the Messages API
            self._anthropic(handler, body, model)
            return
        tokens_in = _words(body.get("contents"))
        if method == "embedContent":
            self._report(tokens_in, 0)
            self.send_json(handler, {"embedding": {"values": [0.1, 0.2, 0.3]}})
            return
        contents = body.get("contents") or []
        answered = any("functionResponse" in p for c in contents for p in c.get("parts", []))
        if body.get("tools") and not answered:
            name = body["tools"][0]["functionDeclarations"][0]["name"]
            chunks: list[list[dict[str, Any]]] = [[{"functionCall": {"name": name, "args": ARGS}}]]
            finish = "STOP"
        else:
            chunks = (
                [[{"text": w}] for w in REPLY] if method == "streamGenerateContent" else [[{"text": "".join(REPLY)}]]
            )
            finish = "STOP"
        out, thoughts = len(REPLY), 2
        self._report(tokens_in, out + thoughts)

        def chunk(parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if last:
                candidate["finishReason"] = finish
            usage = {"promptTokenCount": tokens_in, "totalTokenCount": tokens_in + out + thoughts}
            if last:
                usage.update(
                    {"candidatesTokenCount": out, "thoughtsTokenCount": thoughts, "cachedContentTokenCount": 1}
                )
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "gem-1"}

        answers = [chunk(p, i == len(chunks) - 1) for i, p in enumerate(chunks)]
        if method == "generateContent":
            self.send_json(handler, answers[0])
        elif sse:
            self._sse(handler, [("", a) for a in answers])
        else:
            self.send_json(handler, answers)

    # Ollama ----------------------------------------------------------------------------------------
    def _ollama(self, handler: Any, body: dict[str, Any], path: str) -> None:
        model = body.get("model", "llama3.2")
        tokens_in = _words(body.get("messages") or body.get("prompt") or body.get("input"))
        if path == "/api/embed":
            self._report(tokens_in, 0)
            self.send_json(handler, {"model": model, "embeddings": [[0.1, 0.2]], "prompt_eval_count": tokens_in})
            return
        messages = body.get("messages") or []
        answered = any(m.get("role") == "tool" for m in messages)
        call = body.get("tools") and not answered
        self._report(tokens_in, len(REPLY))
        base = {"model": model, "created_at": "2026-12-02T10:00:00Z"}
        final = {
            **base,
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000,
            "load_duration": 10,
            "prompt_eval_count": tokens_in,
            "prompt_eval_duration": 100,
            "eval_count": len(REPLY),
            "eval_duration": 500,
        }

        def piece(text: str, tool: bool = False) -> dict[str, Any]:
            if path == "/api/generate":
                return {"response": text}
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if tool:
                name = body["tools"][0]["function"]["name"]
                message["tool_calls"] = [{"function": {"name": name, "arguments": ARGS}}]
            return {"message": message}

        if body.get("stream") is False:
            self.send_json(handler, {**final, **piece("" if call else "".join(REPLY), bool(call))})
            return
        lines = [{**base, "done": False, **piece(w)} for w in ([] if call else REPLY)]
        lines.append({**final, **piece("", bool(call))})
        self._chunks(handler, "application/x-ndjson", [json.dumps(line).encode() + b"\n" for line in lines])

    # Cohere ----------------------------------------------------------------------------------------
    def _cohere(self, handler: Any, body: dict[str, Any], path: str) -> None:
        tokens_in = _words(body.get("messages") or body.get("texts"))
        if path == "/v2/embed":
            self._report(tokens_in, 0)
            self.send_json(
                handler,
                {
                    "id": "emb-1",
                    "embeddings": {"float": [[0.1, 0.2]]},
                    "texts": body.get("texts") or [],
                    "meta": {"billed_units": {"input_tokens": tokens_in}},
                    "response_type": "embeddings_by_type",
                },
            )
            return
        answered = any(m.get("role") == "tool" for m in body.get("messages") or [])
        call = bool(body.get("tools")) and not answered
        self._report(tokens_in, len(REPLY))
        usage = {
            "billed_units": {"input_tokens": tokens_in, "output_tokens": len(REPLY)},
            "tokens": {"input_tokens": tokens_in + 10, "output_tokens": len(REPLY)},
        }
        name = body["tools"][0]["function"]["name"] if call else None
        tool_call = {"id": "call_c1", "type": "function", "function": {"name": name, "arguments": json.dumps(ARGS)}}
        reason = "TOOL_CALL" if call else "COMPLETE"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant"}
            if call:
                message["tool_plan"] = "I will look it up."
                message["tool_calls"] = [tool_call]
            else:
                message["content"] = [{"type": "text", "text": "".join(REPLY)}]
            self.send_json(handler, {"id": "chat-1", "finish_reason": reason, "message": message, "usage": usage})
            return
        events: list[tuple[str, Any]] = [
            ("message-start", {"type": "message-start", "id": "chat-1", "delta": {"message": {"role": "assistant"}}})
        ]
        if call:
            arguments = json.dumps(ARGS)
            events += [
                (
                    "tool-call-start",
                    {
                        "type": "tool-call-start",
                        "index": 0,
                        "delta": {
                            "message": {"tool_calls": {**tool_call, "function": {"name": name, "arguments": ""}}}
                        },
                    },
                ),
                *[
                    (
                        "tool-call-delta",
                        {
                            "type": "tool-call-delta",
                            "index": 0,
                            "delta": {"message": {"tool_calls": {"function": {"arguments": arguments[i : i + 5]}}}},
                        },
                    )
                    for i in range(0, len(arguments), 5)
                ],
                ("tool-call-end", {"type": "tool-call-end", "index": 0}),
            ]
        else:
            events.append(
                (
                    "content-start",
                    {
                        "type": "content-start",
                        "index": 0,
                        "delta": {"message": {"content": {"type": "text", "text": ""}}},
                    },
                )
            )
            events += [
                ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": w}}}})
                for w in REPLY
            ]
            events.append(("content-end", {"type": "content-end", "index": 0}))
        events.append(("message-end", {"type": "message-end", "delta": {"finish_reason": reason, "usage": usage}}))
        self._sse(handler, events)

    # Mistral ---------------------------------------------------------------------------------------
    def _mistral(self, handler: Any, body: dict[str, Any]) -> None:
        model = body.get("model", "mistral-small-latest")
        tokens_in = _words(body.get("messages"))
        answered = any(m.get("role") == "tool" for m in body.get("messages") or [])
        call = bool(body.get("tools")) and not answered
        self._report(tokens_in, len(REPLY))
        usage = {"prompt_tokens": tokens_in, "completion_tokens": len(REPLY), "total_tokens": tokens_in + len(REPLY)}
        name = body["tools"][0]["function"]["name"] if call else None
        tool_calls = [{"id": "call_m1", "type": "function", "function": {"name": name, "arguments": json.dumps(ARGS)}}]
        head = {"id": "cmpl-m1", "object": "chat.completion", "model": model, "created": 1764669600}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "" if call else "".join(REPLY)}
            if call:
                message["tool_calls"] = tool_calls
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}
            self.send_json(handler, {**head, "choices": [choice], "usage": usage})
            return
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"tool_calls": [{**tool_calls[0], "index": 0}]}] if call else [{"content": w} for w in REPLY]
        events = [("", {**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}) for d in deltas]
        last = {"index": 0, "delta": {"content": ""}, "finish_reason": "tool_calls" if call else "stop"}
        events.append(("", {**head, "choices": [last], "usage": usage}))
        self._sse(handler, events, done=True)

    # Anthropic's Messages API on Vertex AI and Bedrock ------------------------------------------------
    @staticmethod
    def _anthropic_message(model: str, tokens_in: int) -> dict[str, Any]:
        return {
            "id": "msg_b1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "".join(REPLY)}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": tokens_in, "output_tokens": len(REPLY)},
        }

    def _anthropic(self, handler: Any, body: dict[str, Any], model: str) -> None:
        tokens_in = _words(body.get("messages"))
        self._report(tokens_in, len(REPLY))
        self.send_json(handler, self._anthropic_message(model, tokens_in))

    # Bedrock ---------------------------------------------------------------------------------------
    def _bedrock(self, handler: Any, body: dict[str, Any], model: str, operation: str) -> None:
        tokens_in = _words(body.get("messages") or body.get("prompt"))
        self._report(tokens_in, len(REPLY))
        usage = {"inputTokens": tokens_in, "outputTokens": len(REPLY), "totalTokens": tokens_in + len(REPLY)}
        messages = body.get("messages") or []
        answered = any("toolResult" in block for m in messages for block in m.get("content", []))
        call = bool(body.get("toolConfig")) and not answered
        name = body["toolConfig"]["tools"][0]["toolSpec"]["name"] if call else None
        if operation == "converse":
            content = (
                [{"toolUse": {"toolUseId": "tu-1", "name": name, "input": ARGS}}]
                if call
                else [{"text": "".join(REPLY)}]
            )
            self.send_json(
                handler,
                {
                    "output": {"message": {"role": "assistant", "content": content}},
                    "stopReason": "tool_use" if call else "end_turn",
                    "usage": usage,
                    "metrics": {"latencyMs": 5},
                },
            )
        elif operation == "converse-stream":
            frames = [_frame("messageStart", {"role": "assistant"})]
            if call:
                arguments = json.dumps(ARGS)
                frames.append(
                    _frame(
                        "contentBlockStart",
                        {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tu-1", "name": name}}},
                    )
                )
                frames += [
                    _frame(
                        "contentBlockDelta",
                        {"contentBlockIndex": 0, "delta": {"toolUse": {"input": arguments[i : i + 6]}}},
                    )
                    for i in range(0, len(arguments), 6)
                ]
            else:
                frames += [_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w}}) for w in REPLY]
            frames.append(_frame("contentBlockStop", {"contentBlockIndex": 0}))
            frames.append(_frame("messageStop", {"stopReason": "tool_use" if call else "end_turn"}))
            frames.append(_frame("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}))
            self._chunks(handler, "application/vnd.amazon.eventstream", frames)
        elif operation == "invoke":
            counts = {
                "X-Amzn-Bedrock-Input-Token-Count": str(tokens_in),
                "X-Amzn-Bedrock-Output-Token-Count": str(len(REPLY)),
            }
            self.send_json(handler, self._anthropic_message(model, tokens_in), headers=counts)
        else:
            self.send_json(handler, {"message": f"unknown operation {operation}"}, 404)

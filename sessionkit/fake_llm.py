"""Fake LLM servers on 127.0.0.1, for tests and demos: ``FakeLLMServer`` speaks the OpenAI and
Anthropic wire formats; ``FakeProviderServer`` the native APIs of Gemini, Ollama, Cohere,
Mistral and Bedrock. ``LoopbackHandler`` is their request handler, for servers of your own.

For the demo and for tests: the real ``openai`` and ``anthropic`` SDKs (or plain httpx) talk to
it through ``base_url``. It answers JSON or SSE streams with usage, and misbehaves on request:
a model named ``error-500`` / ``error-429`` / ``error-400`` answers that status (and
``fail_next(3, 429)`` makes the next three answers that status, a burst a client retries), ``cut``
breaks the stream in the middle, ``slow`` waits between chunks. Every answer's token counts are
kept in ``reported``, so a test can compare what a span says with what the server said.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Optional

from ._fake_providers import FakeProviderServer
from ._loopback import LoopbackHandler, LoopbackServer

__all__ = ["FakeLLMServer", "FakeProviderServer", "LoopbackHandler", "Reported"]


@dataclass
class Reported:
    """What the server told a client about one call."""

    path: str
    model: str
    stream: bool
    input_tokens: int
    output_tokens: int
    status: int = 200


def _words(text: str, count: int) -> list[str]:
    base = (text or "ok").split() or ["ok"]
    return [base[i % len(base)] + " " for i in range(count)]


def _prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [c.get("text", "") for c in content if isinstance(c, dict)]
    for key in ("prompt", "input", "system", "instructions"):
        value = body.get(key)
        if isinstance(value, str):
            parts.append(value)
    return " ".join(parts)


def _tool_to_call(body: dict[str, Any]) -> Optional[tuple[str, str]]:
    """``(name, arguments JSON)`` of the first tool offered, when the request offers tools and
    holds no tool result yet (the model asks for a tool once, then answers)."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    messages = body.get("messages")
    items: list[Any] = (messages if isinstance(messages, list) else []) + (
        body["input"] if isinstance(body.get("input"), list) else []
    )
    for item in items:
        if isinstance(item, dict) and (item.get("role") == "tool" or item.get("type") == "function_call_output"):
            return None
    tool: dict[str, Any] = tools[0] if isinstance(tools[0], dict) else {}
    function: dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
    schema: dict[str, Any] = function["parameters"] if isinstance(function.get("parameters"), dict) else {}
    examples = {"string": "Paris", "integer": 1, "number": 1, "boolean": True}
    arguments = {
        key: examples.get(str(prop.get("type")), "x") if isinstance(prop, dict) else "x"
        for key, prop in (schema.get("properties") or {}).items()
    }
    return str(function.get("name") or "tool"), json.dumps(arguments)


class FakeLLMServer(LoopbackServer):
    """``with FakeLLMServer() as server:`` then ``OpenAI(base_url=server.openai_base_url)``."""

    thread_name = "fake-llm"

    def __init__(self, chunks: int = 8, chunk_delay: float = 0.0, reply: str = "Your order has shipped today") -> None:
        super().__init__()
        self.chunks = chunks
        self.chunk_delay = chunk_delay
        self.reply = reply
        self.reported: list[Reported] = []
        self.sent: list[bytes] = []
        """The exact body bytes of each SSE answer (without the chunked framing)."""
        self._failing: list[int] = []

    def fail_next(self, count: int, status: int = 429) -> None:
        """The next ``count`` LLM requests are answered with ``status`` (429: with
        ``retry-after: 0``), whatever their model."""
        with self._lock:
            self._failing.extend([status] * count)

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # -- answers ---------------------------------------------------------------------------------
    def _record(self, path: str, model: str, stream: bool, tokens_in: int, tokens_out: int, status: int = 200) -> None:
        with self._lock:
            self.reported.append(Reported(path, model, stream, tokens_in, tokens_out, status))

    def answer(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        path = handler.path.split("?")[0].rstrip("/")
        model = str(body.get("model") or "fake-model")
        stream = body.get("stream") is True
        with self._lock:
            failing = self._failing.pop(0) if self._failing else None
        if failing is not None or model.startswith("error-"):
            status = failing if failing is not None else int(model.split("-", 1)[1])
            self._record(path, model, stream, 0, 0, status)
            anthropic = path.endswith("/messages")
            error = (
                {"type": "error", "error": {"type": "api_error", "message": "fake failure"}}
                if anthropic
                else {"error": {"message": "fake failure", "type": "server_error", "code": None}}
            )
            self.send_json(handler, error, status, headers={"retry-after": "0"} if status == 429 else None)
            return
        tokens_in = 7 + len(_prompt_text(body).split())
        words = _words(self.reply, self.chunks)
        tokens_out = 0 if path.endswith("/embeddings") else len(words)
        known = ("/chat/completions", "/completions", "/responses", "/embeddings", "/messages")
        if path.endswith(known):
            self._record(path, model, stream, tokens_in, tokens_out)  # before answering: no race with readers
        call = _tool_to_call(body)
        if path.endswith("/chat/completions"):
            if stream:
                self._stream_openai_chat(handler, model, words, tokens_in, body)
            else:
                answer = self._openai_chat(model, "".join(words), tokens_in, tokens_out)
                if call is not None:
                    answer["choices"][0]["message"] = {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_fake1",
                                "type": "function",
                                "function": {"name": call[0], "arguments": call[1]},
                            }
                        ],
                    }
                    answer["choices"][0]["finish_reason"] = "tool_calls"
                self.send_json(handler, answer)
        elif path.endswith("/completions"):
            self.send_json(
                handler,
                {
                    "id": "cmpl-" + uuid.uuid4().hex[:12],
                    "object": "text_completion",
                    "model": model,
                    "choices": [{"index": 0, "text": "".join(words), "finish_reason": "stop"}],
                    "usage": {
                        "prompt_tokens": tokens_in,
                        "completion_tokens": tokens_out,
                        "total_tokens": tokens_in + tokens_out,
                    },
                },
            )
        elif path.endswith("/responses"):
            response = {
                "id": "resp_" + uuid.uuid4().hex[:12],
                "object": "response",
                "model": model,
                "status": "completed",
                "output": [
                    {
                        "type": "function_call",
                        "id": "fc_fake1",
                        "call_id": "call_fake1",
                        "name": call[0],
                        "arguments": call[1],
                        "status": "completed",
                    }
                    if call is not None
                    else {
                        "type": "message",
                        "id": "msg_fake1",
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "".join(words), "annotations": []}],
                    }
                ],
                "usage": {
                    "input_tokens": tokens_in,
                    "output_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            }
            if stream:
                events: list[tuple[str, dict[str, Any]]] = [
                    (
                        "response.created",
                        {
                            "type": "response.created",
                            "response": {**response, "status": "in_progress", "usage": None, "output": []},
                        },
                    )
                ]
                if call is None:
                    events += [
                        (
                            "response.output_text.delta",
                            {
                                "type": "response.output_text.delta",
                                "item_id": "msg_fake1",
                                "output_index": 0,
                                "content_index": 0,
                                "delta": w,
                            },
                        )
                        for w in words
                    ]
                events.append(("response.completed", {"type": "response.completed", "response": response}))
                self._sse(handler, events, model)
            else:
                self.send_json(handler, response)
        elif path.endswith("/embeddings"):
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            self.send_json(
                handler,
                {
                    "object": "list",
                    "model": model,
                    "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(count)],
                    "usage": {"prompt_tokens": tokens_in, "total_tokens": tokens_in},
                },
            )
        elif path.endswith("/messages"):
            if stream:
                self._stream_anthropic(handler, model, words, tokens_in)
            else:
                self.send_json(
                    handler,
                    {
                        "id": "msg_" + uuid.uuid4().hex[:12],
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [{"type": "text", "text": "".join(words)}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": tokens_in,
                            "output_tokens": tokens_out,
                            "cache_read_input_tokens": 0,
                            "cache_creation_input_tokens": 0,
                        },
                    },
                )
        else:
            self.send_json(handler, {"error": {"message": f"unknown path {path}"}}, 404)

    @staticmethod
    def _openai_chat(model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:12],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }

    def _stream_openai_chat(
        self, handler: Any, model: str, words: list[str], tokens_in: int, body: dict[str, Any]
    ) -> None:
        chat_id = "chatcmpl-" + uuid.uuid4().hex[:12]
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: Optional[str] = None, usage: Any = None) -> tuple[str, dict[str, Any]]:
            choices = (
                [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
            )
            payload = {
                "id": chat_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if usage is not None:
                payload["usage"] = usage
            return ("", payload)

        events = [chunk({"role": "assistant", "content": ""})]
        call = _tool_to_call(body)
        if call is not None:
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_fake1",
                                "type": "function",
                                "function": {"name": call[0], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": call[1]}}]}))
            events.append(chunk({}, "tool_calls"))
        else:
            events += [chunk({"content": w}) for w in words]
            events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                chunk(
                    {},
                    usage={
                        "prompt_tokens": tokens_in,
                        "completion_tokens": len(words),
                        "total_tokens": tokens_in + len(words),
                    },
                )
            )
        self._sse(handler, events, model, done=True)

    def _stream_anthropic(self, handler: Any, model: str, words: list[str], tokens_in: int) -> None:
        msg_id = "msg_" + uuid.uuid4().hex[:12]
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": tokens_in,
                            "output_tokens": 1,
                            "cache_read_input_tokens": 0,
                            "cache_creation_input_tokens": 0,
                        },
                    },
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]
        events += [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
            )
            for w in words
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": len(words)},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._sse(handler, events, model)

    # -- the wire -----------------------------------------------------------------------------------
    def _sse(self, handler: Any, events: list[tuple[str, Any]], model: str, done: bool = False) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        cut_at = len(events) // 2 if model == "cut" else None
        delay = self.chunk_delay or (0.02 if model == "slow" else 0.0)
        lines = [(f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n" for name, data in events]
        if done:
            lines.append("data: [DONE]\n\n")
        sent = bytearray()
        with self._lock:
            self.sent.append(b"")
            slot = len(self.sent) - 1
        for index, line in enumerate(lines):
            with self._lock:
                self.sent[slot] = bytes(sent)
            if cut_at is not None and index == cut_at:
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(2)  # the network drops: no terminating chunk
                return
            data = line.encode()
            sent.extend(data)
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()
            if delay:
                time.sleep(delay)
        with self._lock:
            self.sent[slot] = bytes(sent)
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

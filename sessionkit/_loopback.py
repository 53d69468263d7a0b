"""Small HTTP servers on 127.0.0.1 for tests and demos: the request handler, a server that stays
quiet about clients that hang up, and ``LoopbackServer``, the base of the fake LLM servers (it
records every POST and hands it to the subclass's ``answer``)."""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from typing_extensions import Self

__all__ = ["LoopbackHandler", "LoopbackServer", "QuietServer"]


class LoopbackHandler(BaseHTTPRequestHandler):
    """A request handler for small servers on 127.0.0.1: HTTP/1.1, no access log, and
    TCP_NODELAY (headers and body go out in separate writes; without it, Nagle's algorithm and
    delayed ACKs add ~40 ms to every answer)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            return  # a client that closed a stream early, or a stream this server cut on purpose
        super().handle_error(request, client_address)


class LoopbackServer:
    """A server on 127.0.0.1 (a free port) that records each POST in ``requests`` (path,
    headers, JSON body) and answers it with :meth:`answer`. ``with Server() as server:`` or
    ``server = Server().start()`` ... ``server.stop()``."""

    thread_name = "loopback"

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(LoopbackHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                with server._lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                server.answer(self, body)

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)

    def answer(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        """Answer one POST (``handler.path``, ``handler.headers``; ``body`` decoded)."""
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @staticmethod
    def send_json(handler: Any, payload: Any, status: int = 200, headers: Optional[dict[str, str]] = None) -> None:
        """A JSON answer with its length."""
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

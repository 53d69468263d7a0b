"""A real OTLP/HTTP receiver for tests: decodes the protobuf requests it is sent.

``mode`` decides how it answers, and can be changed while it runs: ``ok``; ``hang`` (accept,
never answer until stopped); ``slow:SECONDS`` (answer, late); ``status:503`` (any status code;
429 comes with ``Retry-After: 1``); ``reset`` (drop the connection); ``garbage`` (bytes that are
not HTTP). Every decoded span is kept in ``spans`` as a ``ReceivedSpan``; log records posted to
``/v1/logs`` in ``logs`` as ``ReceivedLog``.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from sessionkit.fake_llm import LoopbackHandler


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int
    kind: int
    events: list[str] = field(default_factory=list)
    event_attributes: list[dict[str, Any]] = field(default_factory=list)
    """Each event's attributes, in the order of ``events``."""


@dataclass
class ReceivedLog:
    event_name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


def decode_logs(body: bytes) -> list[ReceivedLog]:
    request = ExportLogsServiceRequest()
    request.ParseFromString(body)
    return [
        ReceivedLog(record.event_name, {kv.key: any_value(kv.value) for kv in record.attributes}, resource)
        for rl in request.resource_logs
        for resource in [{kv.key: any_value(kv.value) for kv in rl.resource.attributes}]
        for sl in rl.scope_logs
        for record in sl.log_records
    ]


def decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes={kv.key: any_value(kv.value) for kv in span.attributes},
                        resource=resource,
                        status_code=span.status.code,
                        kind=span.kind,
                        events=[e.name for e in span.events],
                        event_attributes=[{kv.key: any_value(kv.value) for kv in e.attributes} for e in span.events],
                    )
                )
    return out


class OtlpReceiver:
    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.spans: list[ReceivedSpan] = []
        self.logs: list[ReceivedLog] = []
        self.requests = 0
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        receiver = self

        class Handler(LoopbackHandler):
            def do_GET(self) -> None:  # what it decoded, for a test in another process
                with receiver._lock:
                    body = json.dumps([dataclasses.asdict(s) for s in receiver.spans]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests += 1
                    receiver.headers.append(dict(self.headers))
                mode = receiver.mode
                if mode == "hang":
                    receiver._stop.wait(60)
                    return
                if mode.startswith("slow:"):
                    receiver._stop.wait(float(mode.split(":", 1)[1]))
                if mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if mode == "garbage":
                    self.wfile.write(b"\x00\xffnot http at all\r\n\r\n")
                    self.close_connection = True
                    return
                if mode.startswith("status:"):
                    code = int(mode.split(":", 1)[1])
                    self.send_response(code)
                    if code == 429:
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path.endswith("/v1/logs"):
                    logs = decode_logs(body)
                    with receiver._lock:
                        receiver.logs.extend(logs)
                    answer = ExportLogsServiceResponse().SerializeToString()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                spans = decode(body)
                with receiver._lock:
                    receiver.raw.append(body)
                    receiver.spans.extend(spans)
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(list(self.spans)):
                    return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class OtlpReceiverProcess:
    """The receiver in a process of its own (``python tests/otlp_receiver.py``), as a collector
    is: what an agent exports crosses a process boundary over real OTLP/HTTP. ``spans()`` reads
    what it decoded."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def __enter__(self) -> OtlpReceiverProcess:
        self._process = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        port = int(self._process.stdout.readline())
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def spans(self) -> list[ReceivedSpan]:
        with urllib.request.urlopen(self.endpoint + "/spans", timeout=10) as answer:
            return [ReceivedSpan(**row) for row in json.load(answer)]

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.spans()):
                return True
            time.sleep(0.1)
        return False

    def __exit__(self, *exc: Any) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            if self._process.stdout is not None:
                self._process.stdout.close()


if __name__ == "__main__":
    served = OtlpReceiver().start()
    print(served.port, flush=True)
    threading.Event().wait()  # until terminated

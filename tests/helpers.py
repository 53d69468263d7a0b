"""Helpers shared by the tests."""

from __future__ import annotations

import os
import sys

import sessionkit


def spans_of(client: sessionkit.Client) -> list:
    return list(client.exporter.get_finished_spans())  # type: ignore[union-attr]


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str, float]:
    """Run ``code`` in a fresh interpreter; return (exit code, stdout, stderr, seconds)."""
    import subprocess
    import time

    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    full_env.update(env or {})
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started


def session_id_of(span) -> object:
    """The session a span belongs to: ``session.id``, or on a session's record ``sessionkit.session.id``."""
    return span.attributes.get("session.id") or span.attributes.get("sessionkit.session.id")


def root_of(client: sessionkit.Client, session: sessionkit.Session):
    """The exported root span of an ended ``session`` (the memory exporter's copy)."""
    (root,) = [
        s
        for s in spans_of(client)
        if s.attributes.get("sessionkit.span.type") == "session"
        and session.id in (s.attributes.get("session.id"), s.attributes.get("sessionkit.session.id"))
    ]
    return root


def record_of(client: sessionkit.Client, session: sessionkit.Session):
    """The exported record of an ended ``session`` (with ``trace_per="turn"``, its own trace)."""
    return root_of(client, session)


def turns_of(client: sessionkit.Client, session: sessionkit.Session) -> list:
    """The root spans of ``session``'s turns, by turn index (the rule Capture.turns uses)."""
    from sessionkit._capture import turn_roots

    return turn_roots([s for s in spans_of(client) if s.attributes.get("session.id") == session.id])


def read_sessions(folder):
    """Every session of the local store in ``folder``, oldest first, with its spans grouped
    by turn (what ``sessionkit show`` prints)."""
    from sessionkit._store.query import Store, stored_session

    with Store(folder) as store:
        found = [stored_session(store, s.session_id) for s in reversed(store.sessions(limit=None))]
    return [s for s in found if s is not None]


class Outsider:
    """A loopback HTTP server that records the headers of every request it gets (GET and POST),
    names in lower case: what a host that is not a propagation target would see."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen: list[dict[str, str]] = []
        self.headers = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def llm_spans(client):
    """The client's LLM spans (OpenInference kind LLM), in the order they ended."""
    return [s for s in spans_of(client) if s.attributes.get("openinference.span.kind") == "LLM"]


def until(condition, timeout: float = 10.0, every: float = 0.02) -> bool:
    """Wait for ``condition()`` to be true, at most ``timeout`` seconds: True when it was."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True

"""Arize Phoenix for the end-to-end tests: installed into its own virtualenv, started on
127.0.0.1 with a fresh working directory and free ports, stopped by PID.

Phoenix pins its own versions of several packages, so it never goes into the project's
environment. The virtualenv lives in ``.venv-phoenix`` at the top of the checkout (or where
``SESSIONKIT_PHOENIX_VENV`` says) and is reused while it still imports Phoenix.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().parent / "phoenix_launcher.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def phoenix_python() -> Path:
    """The Python of a virtualenv with arize-phoenix, creating it if needed."""
    venv = Path(os.environ.get("SESSIONKIT_PHOENIX_VENV", ROOT / ".venv-phoenix"))
    python = venv / "bin" / "python"
    if (
        python.exists()
        and subprocess.run([python, "-c", "import phoenix.server.main"], capture_output=True).returncode == 0
    ):
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "arize-phoenix"], check=True, timeout=1200
    )
    return python


class Phoenix:
    def __init__(self) -> None:
        self.http_port = _free_port()
        self.grpc_port = _free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc_url = f"http://127.0.0.1:{self.grpc_port}"
        self._workdir = tempfile.TemporaryDirectory(prefix="phoenix-")
        self._process: subprocess.Popen[bytes] | None = None
        self.log = Path(self._workdir.name) / "phoenix.log"

    def start(self, timeout: float = 180) -> Phoenix:
        python = phoenix_python()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
        env.update(
            {
                "PHOENIX_WORKING_DIR": self._workdir.name,
                "PHOENIX_HOST": "127.0.0.1",
                "PHOENIX_PORT": str(self.http_port),
                "PHOENIX_GRPC_PORT": str(self.grpc_port),
                "PHOENIX_TELEMETRY_ENABLED": "false",
            }
        )
        with open(self.log, "wb") as log:
            self._process = subprocess.Popen(
                [python, str(LAUNCHER)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Phoenix exited at start:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Phoenix did not become healthy in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._workdir.cleanup()

    def get(self, path: str, **params: object) -> dict:
        response = httpx.get(self.url + path, params=params, timeout=20)
        response.raise_for_status()
        return response.json()

    def all(self, path: str) -> list[dict]:
        """Every item of a paginated list endpoint."""
        items: list[dict] = []
        cursor = None
        while True:
            params: dict[str, object] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self.get(path, **params)
            items += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def listening_addresses(self) -> list[str]:
        """Local addresses of Phoenix's listening TCP sockets (from /proc, no extra tools)."""
        assert self._process is not None
        inodes = set()
        fd_dir = Path(f"/proc/{self._process.pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        found = []
        for table, _width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    address, port = local.split(":")
                    found.append(f"{address}:{int(port, 16)}")
        return found

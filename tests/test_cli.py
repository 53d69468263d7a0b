"""The ``sessionkit`` command: sessions, show, doctor, demo, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import sessionkit


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionkit", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_show_unknown_session_fails_clearly(tmp_path):
    proc = run_cli("show", "nope", "--dir", str(tmp_path))
    assert proc.returncode == 1 and "no session has an id starting 'nope'" in proc.stderr


def test_doctor_masks_secrets_and_checks_the_collector(receiver, dead_port):
    env = {**os.environ, "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20sk-live-abc123,x-team=core"}
    ok = subprocess.run(
        [sys.executable, "-m", "sessionkit", "doctor", "--endpoint", receiver.endpoint],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "sk-live-abc123" not in ok.stdout + ok.stderr
    assert "authorization" in ok.stdout and "***" in ok.stdout
    assert "accepted an empty OTLP request" in ok.stdout
    assert receiver.headers[-1]["authorization"] == "Bearer sk-live-abc123"  # used, though never shown
    assert receiver.spans == []  # the check sends no spans
    bad = subprocess.run(
        [sys.executable, "-m", "sessionkit", "doctor", "--endpoint", f"http://127.0.0.1:{dead_port}"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and "not reachable" in bad.stdout


def test_help_lists_every_command():
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert all(command in proc.stdout for command in ("demo", "sessions", "show", "doctor"))


def test_sessions_on_an_empty_store_says_how_to_fill_it(tmp_path):
    proc = run_cli("sessions", "--dir", str(tmp_path))
    assert proc.returncode == 0 and "No sessions in" in proc.stdout and "sessionkit demo" in proc.stdout


def test_sessions_lists_the_newest_within_the_limit(tmp_path):
    client = sessionkit.Client(file_dir=str(tmp_path))
    names = [f"s{i}" for i in range(5)]
    for name in names:
        with client.session(name):
            pass
    client.shutdown(timeout=5)
    proc = run_cli("sessions", "--dir", str(tmp_path), "--limit", "2")
    assert proc.returncode == 0
    rows = [line.split()[1] for line in proc.stdout.splitlines()[2:4]]
    assert rows == ["s4", "s3"] and "1-2 of 5 sessions (newest first)" in proc.stdout
    assert "the next page: --offset 2" in proc.stdout


def test_doctor_reports_a_bad_setting_by_name():
    proc = run_cli("doctor", env={"SESSIONKIT_EXPORT_TIMEOUT": "soon"})
    assert proc.returncode == 1 and "export_timeout" in proc.stdout
    assert json.dumps("soon") in proc.stdout or "soon" in proc.stdout

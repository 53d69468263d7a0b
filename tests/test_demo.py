from __future__ import annotations

import os
import subprocess
import sys

from sessionkit.export.reader import read_sessions


def test_demo_runs_offline_prints_a_summary_and_fills_the_local_store(tmp_path):
    store = tmp_path / "demo-store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "sessionkit", "demo", "--users", "3", "--turns", "2", "--dir", str(store)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 sessions in" in out
    assert "spans went to" in out and str(store) in out
    rows = [line for line in out.splitlines() if line.split()[:1] and "conv-" in line]
    assert len(rows) == 3
    stored = read_sessions(store)
    assert len(stored) == 3
    assert {s.thread_id for s in stored} == {"conv-1", "conv-2", "conv-3"}
    for s in stored:
        # 2 turns x (agent + 2 tools + llm) spans, and every one stamped with its own session
        assert len(s.work_spans) == 8 and len(s.llm_spans) == 2 and s.state == "success"
    failing = next(s for s in stored if s.thread_id == "conv-1")
    assert failing.errors == 2  # user 1 asks about an order that does not exist

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sessionkit

from helpers import read_sessions


def test_demo_runs_offline_prints_a_summary_and_fills_the_local_store(tmp_path):
    store = tmp_path / "demo-store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKIT_", "OTEL_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "sessionkit", "demo", "--users", "4", "--turns", "4", "--dir", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "4 sessions in" in out
    assert "spans went to" in out and str(store) in out
    rows = [line for line in out.splitlines() if line.split()[1:2] and line.split()[1].startswith("user-")]
    assert len(rows) == 4
    # What sessionkit found is printed per session: user 3's last channel leaks ...
    assert "Findings (docs/insights.md):" in out
    assert "user-3  warning channel_leaked: discord channel" in out and "still open when its session ended" in out
    # ... the reloading agents (odd users) reload their history; the caching ones do not.
    assert "user-1  warning history_redundant: history reloaded 4 times without a cache" in out
    assert "user-2  warning history_redundant" not in out
    assert "Other warnings" not in out  # (every warning of the demo is a finding now)

    stored = {s.user_id: s for s in read_sessions(store)}
    assert set(stored) == {"user-1", "user-2", "user-3", "user-4"}
    for user, s in stored.items():
        assert s.state == "success" and s.thread_id == f"conv-{user[-1]}"
        assert len(s.llm_spans) == 4
        assert all(
            span.attributes.get("session.id", span.attributes.get("sessionkit.session.id")) == s.id for span in s.spans
        )
        # Each of the four turns is a trace holding the user's message and the agent's answer.
        assert [t.index for t in s.turns] == [1, 2, 3, 4]
        assert len({t.root.trace_id for t in s.turns}) == 4 and s.root.trace_id not in {
            t.root.trace_id for t in s.turns
        }
        for t in s.turns:
            assert (
                t.root.name == f"turn {t.index}: {t.input}" and t.input.endswith("?") and t.output
            )  # the message, the answer
            assert len(t.llm_spans) == 1 and t.cost is not None and t.cost > 0  # gpt-4o-mini has a price
        assert s.cost == pytest.approx(sum(t.cost for t in s.turns))
    leaked = [span for span in stored["user-3"].spans if span.attributes.get("sessionkit.channel.leaked") is True]
    assert len(leaked) == 1
    # The findings are in the store too, the leak's evidence its channel span
    with sessionkit.open_store(store) as opened:
        (leak,) = opened.findings(stored["user-3"].id, kind="channel_leaked")
        assert leak.evidence == (leaked[0].span_id,)
        assert {s.session_id for s in opened.sessions(finding="history_redundant")} == {
            stored["user-1"].id,
            stored["user-3"].id,
        }
    assert not any(span.attributes.get("sessionkit.channel.leaked") for span in stored["user-2"].spans)

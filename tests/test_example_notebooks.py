"""The notebooks in notebooks/, executed in a real Jupyter kernel, with the init cell re-run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from helpers import read_sessions, session_id_of

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_notebook(name: str, tmp_path: Path) -> tuple[nbformat.NotebookNode, list[str]]:
    """Execute the notebook as a user would, running each init cell twice. Returns the executed
    notebook and the output of a check cell appended at its end."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(
        new_code_cell(
            "import sessionkit as _sk\n"
            "_c = _sk.get_client()\n"
            "_before = _c.stats().spans_started\n"
            "with _c.tracer.start_as_current_span('probe'):\n"
            "    pass\n"
            "print(_c.stats().spans_started - _before, _c.stats().sessions_started)\n"
            "_c.flush(timeout=10)"
        )
    )
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if "init" in cell.metadata.get("tags", []):
                client.execute_cell(cell, index)  # re-run, as users do
    check = [o["text"] for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    return nb, check


def html_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [
        o["data"]["text/html"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "data" in o and "text/html" in o["data"]
    ]


def test_quickstart_notebook_in_a_real_kernel(tmp_path):
    nb, check = run_notebook("quickstart.ipynb", tmp_path)
    processors, sessions_started = check[0].split()
    assert processors == "1"  # re-running init added no second processor
    stored = {s.name: s for s in read_sessions(tmp_path / "store")}
    assert set(stored) == {"default", "triage", "follow-up"}  # one auto session, not two
    assert int(sessions_started) == 3
    for name in ("triage", "follow-up"):
        session = stored[name]
        names = Counter(span.name for span in session.work_spans)
        # one span per operation: nothing doubled by the second init
        assert names == Counter(
            {"invoke_agent support_agent": 1, "execute_tool lookup_order": 1, "chat gpt-4.1-mini": 1}
        )
        assert all(session_id_of(span) == session.id for span in session.spans)
        assert len(session.llm_spans) == 1 and session.input_tokens > 0
        (turn,) = session.turns  # one turn: a turn block in the first, the agent call itself in the second
        assert turn.root.name == ("turn 1: Where is my order?" if name == "triage" else "invoke_agent support_agent")
        assert turn.cost is not None and turn.cost > 0  # gpt-4.1-mini has a price
    # the session started in one cell and ended in another ended cleanly
    assert stored["follow-up"].state == "success"
    assert stored["triage"].thread_id == "conv-1" and stored["triage"].user_id == "u-7"
    tables = html_outputs(nb)
    # Session's display in a kernel: its figures and the waterfall of its spans
    assert any("triage" in t and "LLM calls" in t and 'data-name="chat gpt-4.1-mini"' in t for t in tables)
    assert any("sessionkit client" in t for t in tables)  # Client._repr_html_


def test_multi_user_notebook_keeps_every_conversation_in_its_own_session(tmp_path):
    nb, check = run_notebook("multi_user.ipynb", tmp_path)
    assert check[0].split()[0] == "1"
    stored = read_sessions(tmp_path / "store")
    assert len(stored) == 8
    users = set()
    for session in stored:
        users.add(session.user_id)
        assert session.thread_id == f"conv-{session.user_id}"
        names = Counter(span.name for span in session.work_spans)
        assert names == Counter({"execute_tool load_profile": 3, "chat gpt-4.1-mini": 3})
        for span in session.spans:
            assert session_id_of(span) == session.id
            assert span.attributes["user.id"] == session.user_id
        assert [t.index for t in session.turns] == [1, 2, 3]
        assert all(t.root.name.startswith(f"turn {t.index}: ") and len(t.llm_spans) == 1 for t in session.turns)
    assert users == {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
    side_by_side = [t for t in html_outputs(nb) if "alice" in t and "heidi" in t]
    assert side_by_side, "SessionsTable did not render the sessions side by side"

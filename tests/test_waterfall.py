"""A session's waterfall: kept spans within their bounds, the HTML a notebook shows (executed in
a real kernel, exported by nbconvert, rendered by headless Chromium), and the terminal's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import sessionkit
from nbclient import NotebookClient
from sessionkit._waterfall import from_stored, waterfall_text

from helpers import read_sessions
from test_dashboard import CHROMIUM_FLAGS, chromium

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def agent_session(client: sessionkit.Client, name: str = "support") -> sessionkit.Session:
    tracer = client.tracer
    with client.session(name, user_id="ada") as s:
        with s.turn("question"):
            with tracer.start_as_current_span(
                "invoke_agent helper", attributes={"gen_ai.operation.name": "invoke_agent"}
            ):
                with tracer.start_as_current_span(
                    "chat m1",
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "m1",
                        "gen_ai.usage.input_tokens": 11,
                        "gen_ai.usage.output_tokens": 4,
                    },
                ):
                    pass
                with pytest.raises(KeyError):
                    with tracer.start_as_current_span("execute_tool lookup", attributes={"gen_ai.tool.name": "lookup"}):
                        raise KeyError("order 404 not found")
        with s.turn("again"):
            with tracer.start_as_current_span("history.load", attributes={"sessionkit.history.messages": 8}):
                pass
    return s


# -- what is kept -----------------------------------------------------------------------------------
def test_outside_a_notebook_kernel_nothing_is_kept_and_the_display_says_so():
    client = sessionkit.Client(exporter="memory")
    try:
        assert client.config.keeps_spans_for_display is False  # display_spans="auto", no kernel here
        s = agent_session(client)
        page = s._repr_html_()
        assert "spans are not kept for display here" in page and "display_spans=True" in page
        assert "support" in page and "LLM calls" in page  # the figures are still there
        assert 'class="skw-row' not in page
        stats = client.stats()
        assert (stats.display_spans_kept, stats.display_spans_dropped) == (0, 0)
    finally:
        client.shutdown(timeout=2)


def test_kept_spans_draw_every_span_nested_with_the_error_marked():
    client = sessionkit.Client(exporter="memory", display_spans=True)
    try:
        s = agent_session(client)
        page = s.html()
        names = re.findall(r'data-name="([^"]+)"', page)
        assert names == [
            "turn 1: question",
            "invoke_agent helper",
            "chat m1",
            "execute_tool lookup",
            "turn 2: again",
            "history.load",
        ]
        depths = [int(d) for d in re.findall(r'data-depth="(\d+)"', page)]
        assert depths == [0, 1, 2, 2, 0, 1]
        (error_row,) = re.findall(r'<div class="skw-row skw-span skw-err"[^>]*>.*?</div></div>', page)
        assert 'data-name="execute_tool lookup"' in error_row and "order 404 not found" in error_row
        assert "model=m1" in page and "tokens=11/4" in page and "messages=8" in page
        assert "cost" in page and "turn 1" in page and "turn 2" in page
        assert not re.search(r"(src|href)=\"?(https?:)?//", page)  # nothing fetched from the network
        assert "prefers-color-scheme:dark" in page and "data-jp-theme-light=false" in page
        assert client.stats().display_spans_kept == 6
    finally:
        client.shutdown(timeout=2)


def test_a_turn_displays_its_own_spans():
    client = sessionkit.Client(exporter="memory", display_spans=True)
    try:
        with client.session("s") as s:
            with s.turn("one"):
                with client.tracer.start_as_current_span("first-work"):
                    pass
            with s.turn("two") as second:
                with client.tracer.start_as_current_span("second-work"):
                    pass
        page = second._repr_html_()
        assert re.findall(r'data-name="([^"]+)"', page) == ["turn 2: two", "second-work"]
        assert "<b>turn</b> 2" in page
    finally:
        client.shutdown(timeout=2)


def test_bounds_on_spans_and_sessions_are_counted_and_said():
    client = sessionkit.Client(exporter="memory", display_spans=True, display_max_spans=3, display_max_sessions=2)
    try:
        first = agent_session(client, "first")
        assert "3 earlier spans are not shown" in first.html() and "display_max_spans" in first.html()
        assert client.stats().display_spans_dropped == 3
        agent_session(client, "second")
        third = agent_session(client, "third")
        page = first.html()
        assert "no longer kept" in page and "display_max_sessions" in page and 'class="skw-row' not in page
        assert "first" in page  # its figures are still shown
        assert third.html().count('class="skw-row') == 3
        stats = client.stats()
        assert stats.display_spans_kept == 6  # two sessions of 3
        assert stats.display_spans_dropped == 6 + 3 + 3  # first's 6, second's and third's 3 each
    finally:
        client.shutdown(timeout=2)


def test_bad_display_settings_are_named():
    with pytest.raises(sessionkit.ConfigError) as info:
        sessionkit.Client(exporter="memory", display_max_spans=0)
    assert info.value.field == "display_max_spans"
    with pytest.raises(sessionkit.ConfigError) as info:
        sessionkit.Client(exporter="memory", display_spans="sometimes")  # type: ignore[arg-type]
    assert info.value.field == "display_spans"


# -- the terminal --------------------------------------------------------------------------------
@pytest.fixture
def stored_session(tmp_path):
    client = sessionkit.Client(file_dir=tmp_path)
    s = agent_session(client)
    client.shutdown(timeout=5)
    (stored,) = read_sessions(tmp_path)
    return tmp_path, s, stored


@pytest.mark.parametrize("width", [40, 72, 120, 200])
def test_the_terminal_waterfall_fits_the_width(stored_session, width):
    _, _, stored = stored_session
    text = waterfall_text([from_stored(x) for x in stored.work_spans_and_turns], width=width, colour=False)
    bars = [line for line in text.splitlines() if "|" in line]
    assert len(bars) == 6 and all(len(line) <= max(width, 40) for line in bars)
    assert "\x1b" not in text
    tracks = [line.split("|")[1] for line in bars]
    assert len({len(t) for t in tracks}) == 1  # one time axis for every row
    starts = [len(t) - len(t.lstrip()) for t in tracks]
    assert starts[:4] == sorted(starts[:4]) and starts[4] >= starts[3]  # bars in start order
    assert "ERROR KeyError" in text and "order 404 not found" in text


def test_colours_only_when_asked_or_on_a_terminal(stored_session):
    folder, s, _ = stored_session

    def show(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "sessionkit", "show", s.id, "--dir", str(folder), *args],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    plain = show("--width", "80")  # stdout is a pipe: no colours
    assert "\x1b" not in plain and "execute_tool lookup" in plain and "turn 2" in plain
    coloured = show("--width", "80", "--color", "always")
    assert "\x1b[31m" in coloured  # the error in red
    assert ANSI.sub("", coloured) == plain
    assert all(len(line) <= 80 for line in plain.splitlines() if "|" in line)
    tree = show("--tree")
    assert "|" not in tree and "execute_tool lookup" in tree


# -- a real notebook, exported and rendered ---------------------------------------------------------
def test_the_waterfall_notebook_renders_live_and_static(tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / "waterfall.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = nb.cells[6].outputs[0]["data"]["text/html"]  # displayed before the session did anything
    names = re.findall(r'data-name="([^"]+)"', shown)
    work = ["invoke_agent support_agent", "history.load", "execute_tool lookup_order", "chat gpt-4.1-mini"]
    expected = ["turn 1: where is order 404?", *work]
    assert names == expected + [
        "turn 2: and order 7?",
        *work,
    ]  # the display followed the session through the next cells
    assert "<b>state</b> success" in shown  # and shows how it ended
    turn_only = nb.cells[10].outputs[0]["data"]["text/html"]
    assert re.findall(r'data-name="([^"]+)"', turn_only) == ["turn 2: and order 7?", *work]

    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    page = tmp_path / "waterfall.html"
    page.write_text(f"<!doctype html><html><body style='margin:16px'>{body}</body></html>", encoding="utf-8")
    browser = chromium()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    waterfalls = dom.split('<div class="skw">')[1:]
    assert len(waterfalls) == 2
    first = waterfalls[0]
    for name in set(expected):
        assert f'data-name="{name}"' in first
    errors = re.findall(r'<div class="skw-row skw-span skw-err"[^>]*data-name="([^"]+)"', first)
    assert errors == ["execute_tool lookup_order"]  # order 404 fails, order 7 does not
    assert first.count("order 404 not found") >= 1
    for turn in first.split('<details class="skw-turn"')[1:]:
        starts = [int(x) for x in re.findall(r'data-start="(\d+)"', turn)]
        lefts = [float(x) for x in re.findall(r"left:([0-9.]+)%", turn)]
        assert starts == sorted(starts) and lefts == sorted(lefts) and len(starts) == 5
    # The screenshot (docs/images, shown in README.md): the outputs alone, the session's first.
    outputs, _ = HTMLExporter(template_name="basic", exclude_input=True, exclude_markdown=True).from_notebook_node(nb)
    view = tmp_path / "outputs.html"
    view.write_text(f"<!doctype html><html><body style='margin:16px'>{outputs}</body></html>", encoding="utf-8")
    shot = tmp_path / "waterfall.png"
    subprocess.run(
        [browser, *flags, "--window-size=1100,400", f"--screenshot={shot}", view.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SESSIONKIT_UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, ROOT / "docs" / "images" / "waterfall.png")


@pytest.mark.parametrize("name", ["quickstart.ipynb", "multi_user.ipynb"])
def test_every_notebook_renders_its_sessions_waterfalls_in_a_browser(name, tmp_path):
    from nbconvert import HTMLExporter

    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><html><body>{body}</body></html>", encoding="utf-8")
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND"]
    dom = subprocess.run(
        [chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    waterfalls = dom.split('<div class="skw">')[1:]
    assert waterfalls, "no session display in the rendered notebook"
    for waterfall in waterfalls:
        names = re.findall(r'data-name="([^"]+)"', waterfall)
        assert "chat gpt-4.1-mini" in names  # every displayed session shows its LLM call
        for turn in waterfall.split('<details class="skw-turn"')[1:]:
            starts = [int(x) for x in re.findall(r'data-start="(\d+)"', turn)]
            assert starts == sorted(starts)

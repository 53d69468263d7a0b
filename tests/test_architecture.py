"""The house rules that tools can check: no module uses another module's private names, the
package facade only re-exports, and every public name is documented.

The import layers themselves are checked by import-linter (the contract in pyproject.toml);
ruff and mypy run in CI before the tests.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import sessionkit

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sessionkit"
DOCS = ROOT / "docs"

# Private names of other projects that sessionkit reads on purpose, each in one place:
# the OpenTelemetry SDK's span internals (all in _spans.py, with a public-API fallback), and
# wrapt's wrapper attribute (the patch's marker).
EXTERNAL = {
    "sessionkit/_spans.py": {"_attributes", "_dict", "_lock", "_immutable", "_status", "_end_time"},
    "sessionkit/_wire/patching.py": {"_self_wrapper"},
    # aiohttp's StreamReader reads every chunk of a body through this method: the hook's
    # subclass of it sees the chunks (aiohttp_hook.py says why this way); ClientSession keeps its
    # base_url only as _base_url, which a relative request URL is joined to
    "sessionkit/_wire/aiohttp_hook.py": {"_read_nowait_chunk", "_base_url"},
    # wrapt's import-hook lock, made anew in a forked child (_context.py says why)
    "sessionkit/_context.py": {"_post_import_hooks_lock"},
    # os._exit: documented and public despite its name; the SIGTERM watcher's last resort
    "sessionkit/_exits.py": {"_exit"},
    # the batch processor's queue, looked at only after a Ctrl-C inside the hand-off (pipeline.py says why)
    "sessionkit/_export/pipeline.py": {"_batch_processor", "_queue"},
    # ModuleSpec._initializing: whether a module is still being imported (importlib's own flag),
    # so that unpatching skips a module mid-import
    "sessionkit/_wire/__init__.py": {"_initializing"},
}
# Protocols of other projects whose names start with an underscore: IPython's rich display.
PROTOCOLS = {"_repr_html_"}
# Standard-library internals the tests read: the exit hooks registered, a crash without atexit.
TESTS_EXTERNAL = {"_ncallbacks", "_exit"} | PROTOCOLS


def own_private_names(tree: ast.AST) -> set[str]:
    """The private names a module defines: its functions, classes, assigned names, the
    attributes it sets on ``self`` / ``cls``, its arguments, and its ``__slots__`` entries.
    Nothing else: an attribute set on another object, or a string, defines no name."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[-1])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__slots__" for t in node.targets):
            names.update(
                e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
    return names


def _string_reaches(tree: ast.AST, own: set[str]) -> list[tuple[int, str]]:
    """``setattr(x, "_name", ...)``, ``getattr(x, "_name")``, ``monkeypatch.setattr(x, "_name", ...)``:
    a private name reached through a string."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or len(node.args) < 2:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        name = node.args[1]
        if (
            called in ("setattr", "getattr", "hasattr", "delattr")
            and isinstance(name, ast.Constant)
            and isinstance(name.value, str)
            and name.value.startswith("_")
            and not name.value.startswith("__")
            and name.value not in own
        ):
            found.append((node.lineno, name.value))
    return found


def private_reaches(path: Path, allowed: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    own = own_private_names(tree) | allowed | PROTOCOLS
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if not name.startswith("_") or name.startswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if name not in own:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{name}")
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.lstrip(".").startswith(("sessionkit", "_"))
        ):
            for alias in node.names:
                if alias.name.startswith("_") and not _is_module(node, alias.name, path):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name}")
    found += [f"{path.relative_to(ROOT)}:{line} names {name!r}" for line, name in _string_reaches(tree, own)]
    return found


def _is_module(node: ast.ImportFrom, name: str, path: Path) -> bool:
    """``from X import _name`` is fine when ``_name`` is a (private) module of the package."""
    base = PACKAGE if node.level == 0 else path.parent
    for _ in range(max(node.level - 1, 0)):
        base = base.parent
    parts = [p for p in (node.module or "").split(".") if p and p != "sessionkit"]
    where = base.joinpath(*parts) if parts else base
    return (where / f"{name}.py").exists() or (where / name / "__init__.py").exists()


def test_no_module_reads_another_modules_private_names():
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += private_reaches(path, EXTERNAL.get(str(path.relative_to(ROOT)), set()))
    assert found == []


def test_no_test_reads_private_names_of_sessionkit():
    found: list[str] = []
    for path in sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")):
        found += private_reaches(path, TESTS_EXTERNAL)
    assert found == []


def test_the_checker_finds_a_private_reach_through_a_string(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(monkeypatch, history):\n    monkeypatch.setattr(history, '_clock', None)\n")
    assert _string_reaches(ast.parse(bad.read_text()), set()) == [(2, "_clock")]


def test_the_checker_finds_a_private_reach(tmp_path):
    # The scan above can fail: a module that reads another object's private attribute is caught.
    bad = tmp_path / "bad.py"
    bad.write_text("def f(session):\n    return session._root\n")
    assert [line.split()[-1] for line in private_reaches_outside(bad)] == ["._root"]


def private_reaches_outside(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    own = own_private_names(tree)
    return [
        f"x .{n.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__") and n.attr not in own
    ]


def test_the_package_facade_only_re_exports():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    functions = sorted(n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    assert functions == ["__dir__", "__getattr__"]  # the lazy loader of the names; no logic of its own
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert all(a.name != "sessionkit" for a in node.names), f"{path} imports the facade"
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
                assert all(
                    (path.parent / f"{a.name}.py").exists() or (path.parent / a.name).is_dir() for a in node.names
                ), f"{path} imports names from the facade"


def test_implementation_modules_are_private():
    def dotted(path: Path) -> str:
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        return ".".join(["sessionkit", *(parts[:-1] if parts[-1] == "__init__" else parts)])

    public = sorted(
        d for d in map(dotted, PACKAGE.rglob("*.py")) if not any(p.startswith("_") for p in d.split(".")[1:])
    )
    assert public == [
        "sessionkit",
        "sessionkit.api",
        "sessionkit.fake_llm",
        "sessionkit.instrumentation",
        "sessionkit.integrations",
        "sessionkit.integrations.a2a",
        "sessionkit.integrations.asgi",
        "sessionkit.integrations.google_adk",
        "sessionkit.integrations.langchain",
        "sessionkit.integrations.litellm",
        "sessionkit.integrations.mcp",
        "sessionkit.integrations.openai_agents",
        "sessionkit.integrations.wsgi",
        "sessionkit.semconv",
        "sessionkit.testing",
    ]


def test_sessionkit_session_is_the_helper_and_no_submodule_shadows_it():
    import sessionkit.api

    assert sessionkit.session is sessionkit.api.session
    assert not (PACKAGE / "session.py").exists()
    assert importlib.import_module("sessionkit.api").session is sessionkit.session


@pytest.mark.parametrize("name", sessionkit.__all__)
def test_every_public_name_is_documented_in_the_api_reference(name):
    api = (DOCS / "api.md").read_text()
    assert f"`{name}" in api or f"sessionkit.{name}" in api or f"{name}(" in api, name


def test_every_public_name_has_a_docstring():
    missing = []
    for name in sessionkit.__all__:
        if name == "__version__":
            continue
        obj = getattr(sessionkit, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
            missing.append(name)
    assert missing == []


@pytest.mark.parametrize(
    "name", ["Client", "Config", "Session", "SessionScope", "Channel", "HistoryLoad", "SpanDecorator"]
)
def test_the_annotations_of_public_classes_resolve(name):
    # Frameworks read them (typing.get_type_hints); they resolve in the module that defines them.
    import typing

    typing.get_type_hints(getattr(sessionkit, name))


def test_the_facade_loads_each_name_when_asked_and_type_checkers_see_each():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    typed = {
        (a.asname or a.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for imp in node.body
        if isinstance(imp, ast.ImportFrom)
        for a in imp.names
    }
    assert typed == set(sessionkit.__all__)
    assert all(getattr(sessionkit, name) is not None for name in sessionkit.__all__)


def test_importing_sessionkit_and_its_pytest_plugin_loads_no_opentelemetry():
    # Every pytest run of every project with sessionkit installed loads the plugin.
    code = (
        "import sys, sessionkit, sessionkit.testing\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'pydantic', 'sessionkit._'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


_MUTABLE_CALLS = {
    "dict",
    "list",
    "set",
    "OrderedDict",
    "defaultdict",
    "deque",
    "WeakSet",
    "WeakValueDictionary",
    "WeakKeyDictionary",
    "ContextVar",
    "ClientSet",
    "_Histories",
    "_Registry",
}


def _module_state(tree: ast.Module) -> set[str]:
    """A module's process-global state: the names its functions rebind (``global``) and the
    module-level containers it fills (lower-case names: UPPER_CASE ones are constants)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        made = (
            getattr(value.func, "id", None) or getattr(value.func, "attr", None)
            if isinstance(value, ast.Call)
            else None
        )
        if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or (
            made in _MUTABLE_CALLS
        ):
            found.update(t.id for t in targets if isinstance(t, ast.Name) and not t.id.isupper() and t.id != "__all__")
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.update(node.names)
    return found


def test_every_module_level_mutable_is_in_the_process_global_table():
    text = (DOCS / "architecture.md").read_text()
    table = text[text.index("## Process-global state") : text.index("## The export pipeline")]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for name in sorted(_module_state(ast.parse(path.read_text()))):
            qualified = f"`{module}.{name}`"
            if not any(qualified in row or (f"`{module}." in row and f"`{name}`" in row) for row in rows):
                missing.append(f"{module}.{name}")
    assert missing == []

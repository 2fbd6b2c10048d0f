"""One door into the loader: the update agent and the application (device/) import no loader
module but loader.api, never reach the Loader object behind it (api.loader()), use only names
loader.api defines, and write the journal's states, components and flags by those names, never
as bare numbers. Each check is shown to fail on a source that breaks its rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEVICE = REPO / "device"
API = REPO / "loader" / "loader" / "api.py"
_RECORD_ATTRS = {"state", "component", "flags"}


def device_sources() -> dict[str, str]:
    return {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(DEVICE.rglob("*.py"))}


def loader_imports(source: str) -> list[str]:
    """Every import of a loader module other than loader.api."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] == "loader" and a.name != "loader.api"]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == "loader":
                found += [f"line {node.lineno}: from loader import {a.name}"
                          for a in node.names if a.name != "api"]
            elif node.module.split(".")[0] == "loader" and node.module != "loader.api":
                found.append(f"line {node.lineno}: from {node.module} import ...")
    return found


def api_names() -> set[str]:
    """The public names loader/loader/api.py defines (functions, imports, assignments)."""
    names: set[str] = set()
    for stmt in ast.parse(API.read_text(encoding="utf-8")).body:
        if isinstance(stmt, ast.FunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.ImportFrom):
            names.update(a.asname or a.name for a in stmt.names)
        elif isinstance(stmt, ast.Assign):
            names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def api_misuse(source: str, allowed: set[str]) -> list[str]:
    """Uses of the module bound to `api` (from loader import api) beyond its door: a name it
    does not define, or api.loader (the Loader object itself)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "api":
            if node.attr == "loader":
                found.append(f"line {node.lineno}: api.loader reaches past the door")
            elif node.attr not in allowed:
                found.append(f"line {node.lineno}: api.{node.attr} is not in loader.api")
        elif isinstance(node, ast.ImportFrom) and node.module == "loader.api":
            found += [f"line {node.lineno}: loader.api has no {a.name}"
                      for a in node.names if a.name not in allowed or a.name == "loader"]
    return found


def bare_journal_numbers(source: str) -> list[str]:
    """Integers compared with, or masked from, a record's state/component/flags, and integer
    keys of a table of states: journal values written as numbers instead of loader.api names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        parts: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
            parts = [node.left, node.right]
        if any(isinstance(p, ast.Attribute) and p.attr in _RECORD_ATTRS for p in parts):
            for p in parts:
                for leaf in [p, *(p.elts if isinstance(p, ast.Tuple) else [])]:
                    if isinstance(leaf, ast.Constant) and type(leaf.value) is int:
                        found.append(f"line {leaf.lineno}: {leaf.value}")
        if isinstance(node, ast.Dict) and any(
                isinstance(k, ast.Constant) and type(k.value) is int for k in node.keys):
            found.append(f"line {node.lineno}: a table keyed by bare numbers")
    return found


def test_device_code_enters_the_loader_by_its_one_door() -> None:
    sources = device_sources()
    assert "device/agent/runner.py" in sources
    assert "device/app/main.py" in sources
    allowed = api_names()
    assert {"current", "begin_staging", "abandon", "reset", "confirm", "TRIAL",
            "FLAG_INSTALL_REQUESTED", "COMPONENT_LOADER", "LoaderError"} <= allowed
    problems = {path: loader_imports(src) + api_misuse(src, allowed)
                + bare_journal_numbers(src) for path, src in sources.items()}
    assert {p: v for p, v in problems.items() if v} == {}
    used = {path for path, src in sources.items() if "from loader import api" in src}
    assert len(used) >= 6  # the door is really the way in, not an unused module


@pytest.mark.parametrize(("line", "found"), [
    ("from loader import journal as J", "from loader import journal"),
    ("from loader.staging import Stager", "from loader.staging import"),
    ("import loader.core", "import loader.core"),
    ("from loader import api, errors", "from loader import errors"),
])
def test_an_import_past_the_door_is_found(line: str, found: str) -> None:
    source = (DEVICE / "agent" / "actions.py").read_text(encoding="utf-8")
    assert loader_imports(source) == []
    problems = loader_imports(source.replace("from loader import api\n", line + "\n", 1))
    assert any(found in p for p in problems), problems


@pytest.mark.parametrize(("old", "new", "found"), [
    ("api.current()", "api.loader().journal.current", "api.loader reaches past the door"),
    ("api.request_install()", "api.request_instal()", "api.request_instal is not"),
])
def test_a_reach_past_the_api_is_found(old: str, new: str, found: str) -> None:
    source = (DEVICE / "agent" / "actions.py").read_text(encoding="utf-8")
    allowed = api_names()
    assert api_misuse(source, allowed) == []
    again = source.replace(old, new, 1)
    assert again != source
    assert any(found in p for p in api_misuse(again, allowed))


@pytest.mark.parametrize(("path", "old", "new"), [
    ("device/agent/actions.py", "r.state == api.STAGED", "r.state == 3"),
    ("device/agent/actions.py", "r.flags & api.FLAG_INSTALL_REQUESTED", "r.flags & 2"),
    ("device/agent/reports.py", 'api.IDLE: "idle"', '1: "idle"'),
    ("device/agent/actions.py", "r.state == api.TRIAL", "r.state == 6"),
    ("device/agent/actions.py", "r.component == api.COMPONENT_APP", "r.component == 0"),
])
def test_a_bare_journal_number_is_found(path: str, old: str, new: str) -> None:
    source = (REPO / path).read_text(encoding="utf-8")
    assert bare_journal_numbers(source) == []
    again = source.replace(old, new, 1)
    assert again != source
    assert bare_journal_numbers(again)

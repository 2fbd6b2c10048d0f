"""The freeze manifest (loader/manifest.py) holds every loader module the firmware can import:
a frozen module that imports a loader module left out of the manifest would fail on the board
with ImportError while every test on the unix port (which compiles the whole package) passes."""

from __future__ import annotations

import ast
from pathlib import Path

LOADER = Path(__file__).resolve().parents[2] / "loader"


def _frozen() -> set[str]:
    tree = ast.parse((LOADER / "manifest.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "package":
            files = next(k.value for k in node.keywords if k.arg == "files")
            assert isinstance(files, ast.Tuple)
            return {str(ast.literal_eval(e)) for e in files.elts}
    raise AssertionError("no package() in loader/manifest.py")


def _module_file(name: str) -> str | None:
    """``loader.x.y`` -> ``x/y.py`` (or ``x/y/__init__.py``) when it is a loader module."""
    parts = name.split(".")
    if parts[0] != "loader":
        return None
    rel = "/".join(parts[1:])
    if not rel:
        return "__init__.py"
    if (LOADER / "loader" / f"{rel}.py").is_file():
        return f"{rel}.py"
    if (LOADER / "loader" / rel / "__init__.py").is_file():
        return f"{rel}/__init__.py"
    return None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def missing_from_manifest(frozen: set[str]) -> dict[str, set[str]]:
    """Frozen module -> the loader modules it imports that are not frozen."""
    sim_only = {"hal/sim.py", "hal/simflash.py", "simcli.py"}
    out: dict[str, set[str]] = {}
    for name in sorted(frozen):
        for imported in _imports(LOADER / "loader" / name):
            target = _module_file(imported)
            if target is not None and target not in frozen and target not in sim_only:
                out.setdefault(name, set()).add(target)
    return out


def test_every_module_a_frozen_module_imports_is_frozen() -> None:
    assert missing_from_manifest(_frozen()) == {}


def test_the_check_sees_a_module_left_out() -> None:
    frozen = _frozen()
    assert "trust.py" in frozen
    assert "trust.py" in {m for ms in missing_from_manifest(frozen - {"trust.py"}).values()
                          for m in ms}

"""The loader's modules keep to their own: no module uses another object's private names
(`ld._fail(...)`), and staging has one path: only loader/staging.py opens a DOWNLOADING record
or records STAGED, whoever brings the payload (the agent, a local link, the simulator)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOADER = REPO / "loader" / "loader"
DEVICE = REPO / "device"


def sources(root: Path) -> dict[str, str]:
    return {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*.py"))}


def private_reaches(source: str) -> list[str]:
    """`x._name` where x is not self or cls: another object's private attribute."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def staging_writes(source: str) -> list[str]:
    """Records given the state DOWNLOADING or STAGED (state=J.STAGED, state=DOWNLOADING ...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "state":
            v = node.value
            name = v.attr if isinstance(v, ast.Attribute) else getattr(v, "id", None)
            if name in ("DOWNLOADING", "STAGED"):
                found.append(f"line {node.value.lineno}: state={name}")
    return found


def test_no_module_uses_another_objects_private_names() -> None:
    found = {path: private_reaches(src)
             for path, src in {**sources(LOADER), **sources(DEVICE)}.items()}
    assert {p: v for p, v in found.items() if v} == {}


def test_staging_has_one_path() -> None:
    found = {path: staging_writes(src) for path, src in sources(LOADER).items()}
    writers = {p for p, v in found.items() if v}
    assert writers == {"loader/loader/staging.py"}, found
    assert len(found["loader/loader/staging.py"]) >= 3  # both records, STAGED by finish()


@pytest.mark.parametrize(("old", "new"), [
    ("self.ld.fail(self.rec, err.code)", "self.ld._fail(self.rec, err)"),
    ("ld.fail(r, code)", "ld._resume_trial(ld.journal.append(r.copy(state=J.FAILED)))"),
])
def test_a_private_reach_is_found(old: str, new: str) -> None:
    source = (LOADER / "staging.py").read_text(encoding="utf-8")
    assert private_reaches(source) == []
    again = source.replace(old, new, 1)
    assert again != source
    assert private_reaches(again)


def test_a_second_staging_path_is_found() -> None:
    source = (LOADER / "core.py").read_text(encoding="utf-8")
    assert staging_writes(source) == []
    again = source.replace("self.journal.append(r.copy(flags=r.flags | J.FLAG_INSTALL_REQUESTED))",
                           "self.journal.append(r.copy(state=J.STAGED, progress=r.size))", 1)
    assert again != source
    assert staging_writes(again)

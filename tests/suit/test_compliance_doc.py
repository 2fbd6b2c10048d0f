"""docs/compliance.md names only tests that exist: each `tests/…py::test_name` is a file with
that test function."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compliance.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _references() -> list[tuple[str, str]]:
    return sorted(set(REF.findall(DOC.read_text())))


def test_the_page_names_tests() -> None:
    assert len(_references()) >= 25


@pytest.mark.parametrize(("path", "name"), _references())
def test_every_named_test_exists(path: str, name: str) -> None:
    source = ROOT / path
    assert source.is_file(), path
    tree = ast.parse(source.read_text())
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert name in names, f"{path} has no {name}"

"""docs/compliance.md names only tests that exist: each `tests/…py::test_name` is a file with
that test function at its top level (where pytest collects it), and every mention of a test in
the page is in that form, so none escapes the check."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compliance.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
MENTION = re.compile(r"`(tests/[^`]*::[^`]*)`")


def _references(text: str) -> list[tuple[str, str]]:
    return sorted(set(REF.findall(text)))


def missing(text: str) -> list[str]:
    """The page's test ids that name no collected test, and its test mentions that are no
    `file::function` id."""
    problems = [f"`{m}` is not a `tests/FILE.py::test_name` id" for m in MENTION.findall(text)
                if not REF.fullmatch(f"`{m}`")]
    for path, name in _references(text):
        source = ROOT / path
        if not source.is_file():
            problems.append(f"{path}: no such file")
            continue
        top = {n.name for n in ast.parse(source.read_text()).body
               if isinstance(n, ast.FunctionDef)}
        if name not in top:
            problems.append(f"{path} has no test {name}")
    return problems


def test_the_page_names_tests() -> None:
    assert len(_references(DOC.read_text())) >= 30


def test_every_named_test_exists() -> None:
    assert missing(DOC.read_text()) == []


@pytest.mark.parametrize(("change", "found"), [
    (("::test_install_trial_confirm`", "::test_install_trial_confirms`"),
     "tests/sim/test_update_flow.py has no test test_install_trial_confirms"),
    (("`tests/sim/test_update_flow.py::", "`tests/sim/test_update_flows.py::"),
     "tests/sim/test_update_flows.py: no such file"),
    (("`tests/sim/test_update_flow.py::test_install_trial_confirm`",
      "`tests/sim/test_update_flow.py::test_install_trial_confirm[sqlite]`"),
     "is not a `tests/FILE.py::test_name` id"),
    (("`tests/sim/test_update_flow.py::test_install_trial_confirm`",
      "`tests/sim/test_update_flow.py::_make_device`"),
     "is not a `tests/FILE.py::test_name` id"),
])
def test_a_wrong_id_is_found(change: tuple[str, str], found: str) -> None:
    text = DOC.read_text()
    assert change[0] in text
    problems = missing(text.replace(change[0], change[1], 1))
    assert len(problems) == 1
    assert found in problems[0]

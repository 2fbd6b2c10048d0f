"""Mutation tests of a format's hand-written copies: each copy's check passes on the file as it
is and names what changed once one line of it is edited."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Mutation = tuple[str, Callable[[str], str], str]  # (copy's path, the edit, what must be named)


def sub(pattern: str, repl: str) -> Callable[[str], str]:
    """An edit of the first line matching ``pattern`` (multi-line mode); fails when none does."""

    def mutate(text: str) -> str:
        out, n = re.subn(pattern, repl, text, count=1, flags=re.M)
        assert n == 1, f"the mutation {pattern!r} does not apply any more"
        return out

    return mutate


def mutation_ids(mutations: Sequence[Mutation]) -> list[str]:
    """Test ids: the copy's file name and what the check must name."""
    return [f"{copy.rsplit('/', 1)[-1]}-{named}" for copy, _, named in mutations]


def assert_noticed(check: Callable[[Any, str], list[str]], description: Any, repo_root: Path,
                   copy: str, mutate: Callable[[str], str], named: str) -> None:
    """``check`` finds nothing in ``copy`` as it is, and names ``named`` once it is mutated."""
    text = (repo_root / copy).read_text(encoding="utf-8")
    assert check(description, text) == []
    problems = check(description, mutate(text))
    assert problems, "the check did not notice the change"
    assert any(named in p for p in problems), problems

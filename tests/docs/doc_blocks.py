"""The shell blocks of the documentation and what the docs test does with each.

Every fenced ``sh`` block in ``docs/**/*.md`` and ``README.md`` is preceded by a marker, an HTML
comment that readers do not see::

    <!-- doc-test: run
    setup: head -c 4096 /dev/urandom > firmware.bin
    expect: valid
    -->

- ``run``: the block runs as written (``bash -euo pipefail``) in a scratch folder of its page,
  after the page's earlier ``run`` blocks and after its own ``setup:`` lines; it must exit 0 and
  print every ``expect:`` line.
- ``parse``: the block needs a board, a server that never ends or the whole suite; each command
  in it is checked without running it: ``suture`` command lines parse against the CLI,
  ``pytest`` collects, ``make -n`` accepts the target, ``python -m bench NAME`` names a
  benchmark, scripts exist.
- ``tested-by PATH``: a named test runs the block (the test file must name the page).
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^\s*```(sh|bash|shell|console)\s*$")
MODES = ("run", "parse", "tested-by")


@dataclass(frozen=True)
class Block:
    """One fenced shell block and its marker."""

    page: Path
    line: int
    text: str
    mode: str = ""
    argument: str = ""
    setup: tuple[str, ...] = field(default=())
    expect: tuple[str, ...] = field(default=())

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


def _marker(lines: list[str], fence: int) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """The ``doc-test`` comment that ends on the line before ``fence`` (or a blank one after)."""
    end = fence - 1
    while end >= 0 and not lines[end].strip():
        end -= 1
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        return "", "", (), ()
    start = end
    while start >= 0 and "<!--" not in lines[start]:
        start -= 1
    if start < 0:
        return "", "", (), ()
    body = "\n".join(lines[start:end + 1])
    body = body[body.index("<!--") + 4 : body.rindex("-->")].strip()
    head, *rest = body.splitlines()
    match = re.fullmatch(r"doc-test:\s*(\S+)\s*(.*)", head.strip())
    if match is None:
        return "", "", (), ()
    setup = tuple(r.strip()[len("setup:"):].strip() for r in rest if r.strip().startswith("setup:"))
    expect = tuple(r.strip()[len("expect:"):].strip() for r in rest
                   if r.strip().startswith("expect:"))
    return match.group(1), match.group(2).strip(), setup, expect


def blocks(page: Path) -> list[Block]:
    """Every fenced shell block of ``page``, in order, with its marker."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            end = index + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            mode, argument, setup, expect = _marker(lines, index)
            found.append(Block(page, index + 1,
                               textwrap.dedent("\n".join(lines[index + 1 : end]) + "\n"),
                               mode, argument, setup, expect))
            index = end
        index += 1
    return found


_OPERATORS = {"&&", "||", "|", ";", "&"}
_REDIRECTS = {">", ">>", "<", "2>", "2>&1"}


def commands(text: str) -> list[list[str]]:
    """The simple commands of a shell block: continuations joined, comments, heredoc bodies and
    redirections dropped, pipelines and lists split."""
    joined = text.replace("\\\n", " ")
    out: list[list[str]] = []
    lines = joined.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)", line)
        if heredoc:
            line = line[: heredoc.start()]
            while index < len(lines) and lines[index].strip() != heredoc.group(1):
                index += 1
            index += 1
        line = re.sub(r"<([A-Za-z][A-Za-z0-9 _-]*)>",  # a <placeholder> is one argument
                      lambda m: m.group(1).replace(" ", "-"), line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        skip_next = False
        for token in lexer:
            if skip_next:
                skip_next = False
                continue
            if token in _OPERATORS:
                if current:
                    out.append(current)
                current = []
            elif token in _REDIRECTS or token in {">&", "<&"}:
                skip_next = True
            else:
                current.append(token)
        if current:
            out.append(current)
    return out

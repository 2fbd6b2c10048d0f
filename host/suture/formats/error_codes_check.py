"""Check every hand-written copy of the error-code table against its description, both ways.

Each copy must define every code of its layer with the same value, and no code the table does
not have (a code added by hand to one copy is reported):

- ``stage0/include/suture/errors.h``: the enumerators ``SUTURE_E<NAME> = N`` of its enum (and
  ``SUTURE_OK = 0``);
- ``loader/loader/errors.py`` and ``device/agent/errors.py`` (MicroPython, read with
  :mod:`ast`): the ``code`` of every exception class (each error class must have its own:
  an inherited code would make two errors one), and every module-level integer constant;
- ``docs/formats/error-codes.md``: the rows of its ranges table and of its codes table.

Every ``check_*`` function takes the table and the copy's text and returns the problems found
(empty: the copy agrees), so a test can hand it an altered copy.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from suture.formats.error_codes import ErrorCodes
from suture.formats.journal_check import compare, md_tables, module_values, strip_c_comments

DOC = "docs/formats/error-codes.md"
_C_PREFIX = "SUTURE_"


# ---- stage0's C header ---------------------------------------------------------------------
def c_expected(table: ErrorCodes) -> dict[str, object]:
    out: dict[str, object] = {f"{_C_PREFIX}OK": table.none}
    out.update({_C_PREFIX + name: e.code for name, e in table.layers["stage0"].codes.items()})
    return out


def check_c_header(table: ErrorCodes, text: str) -> list[str]:
    copy = table.layers["stage0"].copy
    code = strip_c_comments(text)
    found: dict[str, object] = {}
    problems: list[str] = []
    enums = re.findall(r"\benum\b[^{;]*\{(.*?)\}", code, re.S)
    if not enums:
        return [f"{copy}: no enum of error codes"]
    for body in enums:
        for item in (i.strip() for i in body.split(",")):
            if not item:
                continue
            m = re.fullmatch(r"(\w+)\s*=\s*(0[xX][0-9A-Fa-f]+|\d+)[uU]?", item)
            if m is None:
                problems.append(f"{copy}: enumerator {item!r} has no explicit value")
                continue
            found[m.group(1)] = int(m.group(2), 0)
    guard = re.search(r"#ifndef\s+(\w+)", code)
    for m in re.finditer(r"^\s*#\s*define\s+(SUTURE_E\w+)", code, re.M):
        if guard is None or m.group(1) != guard.group(1):
            problems.append(f"{copy}: {m.group(1)} is a #define: error codes are the enum's")
    return compare(copy, c_expected(table), found) + problems


# ---- the loader's and the agent's Python copies (MicroPython: read with ast) -----------------
def python_codes(source: str) -> tuple[dict[str, object], list[str]]:
    """The error codes a module defines: each exception class's own ``code`` and every
    module-level integer; and the problems of its shape (a class without a code of its own)."""
    tree = ast.parse(source)
    found: dict[str, object] = {
        k: v for k, v in module_values(tree).items() if type(v) is int}
    problems: list[str] = []
    coded: set[str] = set()
    for stmt in tree.body:
        if not isinstance(stmt, ast.ClassDef):
            continue
        own = {k: v for k, v in module_values(ast.Module(stmt.body, [])).items()
               if k == "code"}
        bases = {b.id for b in stmt.bases if isinstance(b, ast.Name)}
        if "code" in own:
            if type(own["code"]) is not int:
                problems.append(f"{stmt.name}.code is not an integer")
            found[stmt.name] = own["code"]
            coded.add(stmt.name)
        elif bases & coded:
            problems.append(f"{stmt.name} has no code of its own (it would share its base's)")
    return found, problems


def check_python(table: ErrorCodes, layer: str, source: str) -> list[str]:
    copy = table.layers[layer].copy
    found, shape = python_codes(source)
    expected = {name: e.code for name, e in table.layers[layer].codes.items()}
    return compare(copy, expected, found) + [f"{copy}: {p}" for p in shape]


def check_loader(table: ErrorCodes, source: str) -> list[str]:
    return check_python(table, "loader", source)


def check_agent(table: ErrorCodes, source: str) -> list[str]:
    return check_python(table, "agent", source)


# ---- the doc page's tables ------------------------------------------------------------------
def doc_expected(table: ErrorCodes) -> dict[str, object]:
    out: dict[str, object] = {}
    for layer in table.layers.values():
        out[f"range {layer.name}"] = (layer.first, layer.last)
        for name, e in layer.codes.items():
            out[f"{layer.name} {name}"] = e.code
    return out


def _int(cell: str) -> object:
    try:
        return int(cell, 0)
    except ValueError:
        return cell


def check_doc(table: ErrorCodes, text: str) -> list[str]:
    """The ranges table (``| layer | first | last | ...``) and the codes table (``| code |
    layer | name | ...``)."""
    found: dict[str, object] = {}
    for rows in md_tables(text):
        head = tuple(rows[0][:3])
        if head == ("layer", "first", "last"):
            for row in rows[1:]:
                found[f"range {row[0]}"] = (_int(row[1]), _int(row[2]))
        elif head == ("code", "layer", "name"):
            for row in rows[1:]:
                found[f"{row[1]} {row[2]}"] = _int(row[0])
    return compare(DOC, doc_expected(table), found)


def check_all(table: ErrorCodes, repo: Path) -> list[str]:
    """Every problem of every copy in the repository at ``repo``."""
    def read(rel: str) -> str:
        return (repo / rel).read_text(encoding="utf-8")

    layers = table.layers
    return (check_c_header(table, read(layers["stage0"].copy))
            + check_loader(table, read(layers["loader"].copy))
            + check_agent(table, read(layers["agent"].copy))
            + check_doc(table, read(DOC)))

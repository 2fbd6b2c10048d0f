"""Check every hand-written copy of the journal format against its description, both ways.

Each copy must define every constant of the description with the same value, and no constant
the description does not have (a constant added by hand to one copy is reported):

- ``stage0/include/suture/journal.h``: every ``#define`` (but the include guard), the struct's
  fields and sizes, and its ``offsetof`` assertions;
- ``loader/loader/journal.py`` (MicroPython, read with :mod:`ast`): every module-level integer
  (``const()`` or plain), ``_FMT``, ``STATE_NAMES``, ``COMPONENT_NAMES`` and ``CLOSED``;
- ``host/suture/sim/journal.py`` (read with :mod:`ast`): every module-level integer,
  ``RECORD_FORMAT`` and the members of every enum class;
- ``docs/formats/journal.md``: the rows of its constants, record, components, states and flags
  tables.

Every ``check_*`` function takes the copy's text and returns the problems found (empty: the
copy agrees), so a test can hand it an altered copy.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

from suture.formats.journal import JournalFormat

C_HEADER = "stage0/include/suture/journal.h"
LOADER = "loader/loader/journal.py"
HOST = "host/suture/sim/journal.py"
DOC = "docs/formats/journal.md"

_C_INT = re.compile(r"^(0[xX][0-9A-Fa-f]+|\d+)[uU]?$")
_C_TYPES = {"uint8_t": 1, "uint32_t": 4}


def compare(copy: str, expected: Mapping[str, object], found: Mapping[str, object]) -> list[str]:
    """The differences between a copy's constants and the description's, both ways."""
    problems = []
    for name, value in expected.items():
        if name not in found:
            problems.append(f"{copy}: {name} is missing (the description has {value!r})")
        elif found[name] != value:
            problems.append(f"{copy}: {name} = {found[name]!r}, the description has {value!r}")
    for name, value in found.items():
        if name not in expected:
            problems.append(f"{copy}: {name} = {value!r} is not in the description")
    return problems


# ---- stage0's C header ---------------------------------------------------------------------
def c_expected(fmt: JournalFormat) -> dict[str, int]:
    out = {
        "SUTURE_JOURNAL_MAGIC": fmt.magic,
        "SUTURE_JOURNAL_RECORD_SIZE": fmt.record_size,
        "SUTURE_JOURNAL_CRC_SPAN": fmt.crc_span,
        "SUTURE_JOURNAL_SECTORS": fmt.sectors,
    }
    out.update({f"SUTURE_COMPONENT_{k}": v for k, v in fmt.components.items()})
    out.update({f"SUTURE_STATE_{k}": v for k, v in fmt.states.items()})
    out.update({f"SUTURE_FLAG_{k}": v for k, v in fmt.flags.items()})
    out["SUTURE_FLAG_MASK"] = fmt.flag_mask
    return out


def strip_c_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def check_c_header(fmt: JournalFormat, text: str) -> list[str]:
    copy = C_HEADER
    code = strip_c_comments(text)
    problems: list[str] = []
    guard = re.search(r"#ifndef\s+(\w+)", code)
    defines: dict[str, object] = {}
    for m in re.finditer(r"^\s*#\s*define\s+(\w+)[ \t]*([^\n]*)$", code, re.M):
        name, value = m.group(1), m.group(2).strip()
        if guard and name == guard.group(1) and not value:
            continue
        defines[name] = int(value.rstrip("uU"), 0) if _C_INT.match(value) else value
    problems += compare(copy, c_expected(fmt), defines)

    body = re.search(r"typedef\s+struct[^{]*\{(.*?)\}\s*suture_journal_record_t\s*;", code, re.S)
    if body is None:
        return [*problems, f"{copy}: no suture_journal_record_t struct"]
    members: dict[str, object] = {}
    order: list[str] = []
    for m in re.finditer(r"(\w+)\s+(\w+)\s*(?:\[\s*(\d+)\s*\])?\s*;", body.group(1)):
        ctype, name, count = m.group(1), m.group(2), m.group(3)
        size = _C_TYPES.get(ctype, 0) * (int(count) if count else 1)
        members[name] = size if size else f"{ctype} (unknown type)"
        order.append(name)
    problems += compare(f"{copy} struct", {f.name: f.size for f in fmt.fields}, members)
    if order != [f.name for f in fmt.fields] and set(order) == {f.name for f in fmt.fields}:
        problems.append(f"{copy}: struct fields in the order {order}")

    offsets: dict[str, object] = {}
    for m in re.finditer(r"offsetof\(\s*suture_journal_record_t\s*,\s*(\w+)\s*\)\s*==\s*(\w+)",
                         code):
        value = m.group(2)
        offsets[m.group(1)] = (int(value.rstrip("uU"), 0) if _C_INT.match(value)
                               else defines.get(value, value))
    problems += compare(f"{copy} offsetof", {f.name: f.offset for f in fmt.fields}, offsets)
    return problems


# ---- Python copies (read with ast: the loader is MicroPython) ------------------------------
def _eval_int(node: ast.expr, known: Mapping[str, object]) -> int | None:
    """The value of an integer expression: a literal, const(...), a known name, | << + -."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "const" and len(node.args) == 1):
        return _eval_int(node.args[0], known)
    if isinstance(node, ast.Name):
        value = known.get(node.id)
        return value if type(value) is int else None
    if isinstance(node, ast.BinOp):
        a, b = _eval_int(node.left, known), _eval_int(node.right, known)
        if a is None or b is None:
            return None
        ops = {ast.BitOr: a | b, ast.Add: a + b, ast.Sub: a - b, ast.BitAnd: a & b}
        if isinstance(node.op, ast.LShift):
            return a << b
        return ops.get(type(node.op))
    return None


def module_values(tree: ast.Module) -> dict[str, object]:
    """Module-level names bound to an integer or a literal (str, dict, tuple of names)."""
    values: dict[str, object] = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            continue
        name, node = stmt.targets[0].id, stmt.value
        number = _eval_int(node, values)
        if number is not None:
            values[name] = number
        elif isinstance(node, ast.Tuple) and all(isinstance(e, ast.Name) for e in node.elts):
            values[name] = tuple(e.id for e in node.elts if isinstance(e, ast.Name))
        else:
            try:
                values[name] = ast.literal_eval(node)
            except ValueError:
                continue
    return values


def _ints(values: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if type(v) is int}


def loader_expected(fmt: JournalFormat) -> dict[str, int]:
    """Every integer constant of loader/loader/journal.py, by name."""
    out = {"MAGIC": fmt.magic, "RECORD_SIZE": fmt.record_size, "CRC_OFFSET": fmt.crc_span}
    for f in fmt.fields:
        out["OFF_CRC" if f.name == fmt.crc_field else f"OFF_{f.name.upper()}"] = f.offset
    out.update({f"COMPONENT_{k}": v for k, v in fmt.components.items()})
    out.update(fmt.states)
    out.update({f"FLAG_{k}": v for k, v in fmt.flags.items()})
    return out


def check_loader(fmt: JournalFormat, source: str) -> list[str]:
    copy = LOADER
    values = module_values(ast.parse(source))
    problems = compare(copy, loader_expected(fmt), _ints(values))
    tables: dict[str, object] = {
        "_FMT": fmt.struct_format(),
        "STATE_NAMES": {v: k for k, v in fmt.states.items()},
        "COMPONENT_NAMES": {fmt.components[k]: v for k, v in fmt.component_labels.items()},
        "CLOSED": fmt.closing_states,
    }
    found = {k: values[k] for k in tables if k in values}
    return problems + compare(copy, tables, found)


def host_expected(fmt: JournalFormat) -> dict[str, int]:
    """Every integer of host/suture/sim/journal.py: module constants and enum members."""
    out = {"MAGIC": fmt.magic, "RECORD_SIZE": fmt.record_size, "CRC_OFFSET": fmt.crc_span}
    out.update({f"State.{k}": v for k, v in fmt.states.items()})
    out.update({f"Component.{k}": v for k, v in fmt.components.items()})
    out.update({f"Flag.{k}": v for k, v in fmt.flags.items()})
    return out


def check_host(fmt: JournalFormat, source: str) -> list[str]:
    copy = HOST
    tree = ast.parse(source)
    values = module_values(tree)
    found = _ints(values)
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef):
            for name, value in _ints(module_values(ast.Module(stmt.body, []))).items():
                found[f"{stmt.name}.{name}"] = value
    problems = compare(copy, host_expected(fmt), found)
    fmts = {"RECORD_FORMAT": values["RECORD_FORMAT"]} if "RECORD_FORMAT" in values else {}
    return problems + compare(copy, {"RECORD_FORMAT": fmt.struct_format()}, fmts)


# ---- the doc page's tables ------------------------------------------------------------------
def md_tables(text: str) -> list[list[list[str]]]:
    """Every markdown table: its rows (header first, the |---| line left out) of cells."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            cells = [c.strip().strip("`").strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _doc_int(cell: str) -> object:
    try:
        return int(cell, 0)
    except ValueError:
        return cell


def doc_expected(fmt: JournalFormat) -> dict[str, object]:
    """The doc's table rows: constants by name, fields as offset/size, values by kind."""
    out: dict[str, object] = {
        "constant MAGIC": fmt.magic,
        "constant RECORD_SIZE": fmt.record_size,
        "constant CRC_SPAN": fmt.crc_span,
        "constant SECTORS": fmt.sectors,
    }
    for f in fmt.fields:
        out[f"field {f.name}"] = (f.offset, f.size)
    out.update({f"component {k}": v for k, v in fmt.components.items()})
    out.update({f"state {k}": v for k, v in fmt.states.items()})
    out.update({f"flag {k}": v for k, v in fmt.flags.items()})
    return out


def check_doc(fmt: JournalFormat, text: str) -> list[str]:
    found: dict[str, object] = {}
    problems: list[str] = []
    kinds = {("constant", "value"): "constant", ("value", "component"): "component",
             ("value", "state"): "state", ("bit", "value"): "flag", ("offset", "size"): "field"}
    for table in md_tables(text):
        kind = kinds.get((table[0][0], table[0][1]) if len(table[0]) > 1 else ("", ""))
        if kind is None:
            continue
        for row in table[1:]:
            if kind == "constant":
                found[f"constant {row[0]}"] = _doc_int(row[1])
            elif kind == "field":
                found[f"field {row[2]}"] = (_doc_int(row[0]), _doc_int(row[1]))
            elif kind == "flag":
                found[f"flag {row[2]}"] = _doc_int(row[1])
                if type(found[f"flag {row[2]}"]) is int and 1 << int(row[0]) != found[
                        f"flag {row[2]}"]:
                    problems.append(f"{DOC}: flag {row[2]} is bit {row[0]} but {row[1]}")
            else:
                found[f"{kind} {row[1]}"] = _doc_int(row[0])
    return compare(DOC, doc_expected(fmt), found) + problems


def check_all(fmt: JournalFormat, repo: Path) -> list[str]:
    """Every problem of every copy in the repository at ``repo``."""
    def read(rel: str) -> str:
        return (repo / rel).read_text(encoding="utf-8")

    return (check_c_header(fmt, read(C_HEADER)) + check_loader(fmt, read(LOADER))
            + check_host(fmt, read(HOST)) + check_doc(fmt, read(DOC)))

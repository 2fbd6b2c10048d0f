"""docs/formats/backup-header.md matches the loader's backup slot header byte for byte: its
example is built here with the loader's own format (``_BK_FMT``, ``_BK_MAGIC``, ``BACKUP_DATA``
read from loader/loader/core.py) and compared with the page's hex; its tables with the
format's field sizes."""

from __future__ import annotations

import ast
import re
import struct
import zlib
from pathlib import Path

import pytest
from suture.formats.journal_check import md_tables, module_values

CORE = "loader/loader/core.py"
DOC = "docs/formats/backup-header.md"
# The page's example: application version 7, a 4660-byte bundle, digest 00 01 .. 1f.
EXAMPLE = (7, 0x1234, bytes(range(32)))
FIELDS = ("magic", "version", "size", "digest")


def doc_hex(text: str) -> bytes:
    """The bytes of the hex dump under the page's "## Example" heading."""
    example = text.split("## Example", 1)[1]
    block = re.search(r"```text\n(.*?)```", example, re.S)
    assert block is not None, "no hex dump under ## Example"
    out = bytearray()
    for line in block.group(1).splitlines():
        offset, _, data = line.partition("  ")
        assert int(offset, 16) == len(out), f"hex dump offset {offset}"
        out += bytes.fromhex(data)
    return bytes(out)


def check_backup_doc(core_source: str, doc: str) -> list[str]:
    values = module_values(ast.parse(core_source))
    fmt, magic, data_at = values["_BK_FMT"], values["_BK_MAGIC"], values["BACKUP_DATA"]
    assert isinstance(fmt, str)
    assert isinstance(magic, bytes)
    assert isinstance(data_at, int)
    body = struct.pack(fmt, magic, *EXAMPLE)
    header = body + struct.pack("<I", zlib.crc32(body))
    problems = []
    if doc_hex(doc) != header:
        problems.append(f"the example's hex is not {header.hex(' ')}")
    if f'struct.pack("{fmt}", b"{magic.decode()}"' not in doc:
        problems.append(f"the page does not give the format {fmt!r}")

    expected: list[list[str]] = []
    at = 0
    for name, code in zip(FIELDS, re.findall(r"\d*[a-zA-Z]", fmt.lstrip("<")), strict=True):
        size = struct.calcsize("<" + code)
        expected.append([str(at), str(size), name])
        at += size
    expected.append([str(at), "4", "crc32"])
    tables = md_tables(doc)
    fields = next((t for t in tables if t[0][:3] == ["offset", "size", "field"]), [])
    if [row[:3] for row in fields[1:]] != expected:
        problems.append(f"the header table is not {expected}")
    layout = next((t for t in tables if t[0][:3] == ["offset", "size", "content"]), [])
    want = [["0", str(len(header))], [str(len(header)), str(data_at - len(header))],
            [str(data_at), "size"]]
    if [row[:2] for row in layout[1:]] != want:
        problems.append(f"the slot layout table is not {want}")
    return problems


def test_backup_header_page_matches_the_loader(repo_root: Path) -> None:
    core = (repo_root / CORE).read_text(encoding="utf-8")
    assert check_backup_doc(core, (repo_root / DOC).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(("where", "old", "new"), [
    (DOC, "34 12 00 00", "35 12 00 00"),  # the example's size
    (DOC, "5e 04 35 45", "5e 04 35 46"),  # its CRC
    (DOC, "| 44     | 4    | `crc32`", "| 40     | 4    | `crc32`"),
    (DOC, "| 256    | `size` |", "| 512    | `size` |"),
    (CORE, 'BACKUP_DATA = const(256)', 'BACKUP_DATA = const(512)'),
    (CORE, '_BK_FMT = "<4sII32s"', '_BK_FMT = "<4sIII32s"'),
    (CORE, '_BK_MAGIC = b"SUBK"', '_BK_MAGIC = b"SUBX"'),
])
def test_a_change_on_either_side_fails_the_check(
    repo_root: Path, where: str, old: str, new: str
) -> None:
    texts = {p: (repo_root / p).read_text(encoding="utf-8") for p in (CORE, DOC)}
    assert old in texts[where]
    texts[where] = texts[where].replace(old, new, 1)
    try:
        problems = check_backup_doc(texts[CORE], texts[DOC])
    except struct.error as e:  # a format the example's four values no longer fit
        problems = [str(e)]
    assert problems

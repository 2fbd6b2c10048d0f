"""The loader's journal constants agree with the C definition (stage0/include/suture/journal.h)
and with the CPython reader; records written on the device decode on the host."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suture.sim.journal import Flag, JournalRecord, State

CONSTANTS = """
import json
from loader import journal as J
names = [n for n in dir(J) if n.isupper() and isinstance(getattr(J, n), int)]
rec = J.Record(seq=7, component=2, state=J.TRIAL, boot_count=3, flags=5, progress=11, size=12,
               version=13, digest=bytes(range(32)))
print("RESULT " + json.dumps({"c": {n: getattr(J, n) for n in names}, "rec": rec.encode().hex()}))
"""

C_TO_LOADER = {
    "SUTURE_JOURNAL_MAGIC": "MAGIC",
    "SUTURE_JOURNAL_RECORD_SIZE": "RECORD_SIZE",
    "SUTURE_JOURNAL_CRC_SPAN": "CRC_OFFSET",
    "SUTURE_COMPONENT_APPLICATION": "COMPONENT_APP",
    "SUTURE_COMPONENT_LOADER": "COMPONENT_LOADER",
    "SUTURE_COMPONENT_NVM": "COMPONENT_NVM",
}


def _c_header(repo: Path) -> tuple[dict[str, int], dict[str, int]]:
    text = (repo / "stage0/include/suture/journal.h").read_text()
    defines = {
        m.group(1): int(m.group(2), 0)
        for m in re.finditer(r"#define\s+(SUTURE_\w+)\s+(0x[0-9A-Fa-f]+|\d+)u?\b", text)
    }
    offsets = {
        m.group(1): int(m.group(2)) if m.group(2).isdigit() else defines[m.group(2)]
        for m in re.finditer(
            r"offsetof\(suture_journal_record_t,\s*(\w+)\)\s*==\s*(\w+)", text
        )
    }
    return defines, offsets


def _prefixed(defines: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: v for k, v in defines.items() if k.startswith(prefix)}


def test_loader_matches_c_header(repo_root: Path, run_mpy: Callable[..., dict[str, Any]]) -> None:
    defines, offsets = _c_header(repo_root)
    got = run_mpy(CONSTANTS)
    loader = got["c"]
    for c_name, py_name in C_TO_LOADER.items():
        assert loader[py_name] == defines[c_name], c_name
    states = _prefixed(defines, "SUTURE_STATE_")
    assert len(states) == 10
    for name, value in states.items():
        assert loader[name] == value, name
        assert State[name] == value
    flags = _prefixed(defines, "SUTURE_FLAG_")
    for name, value in flags.items():
        if name != "MASK":
            assert loader[f"FLAG_{name}"] == value, name
            assert Flag[name] == value
    for field, off in offsets.items():
        name = "OFF_CRC" if field == "crc32" else f"OFF_{field.upper()}"
        assert loader[name] == off, field
    assert len(offsets) == 12


def test_device_record_decodes_on_host(run_mpy: Callable[..., dict[str, Any]]) -> None:
    raw = bytes.fromhex(run_mpy(CONSTANTS)["rec"])
    assert len(raw) == 64
    assert struct.unpack_from("<I", raw, 60)[0] == zlib.crc32(raw[:60])
    rec = JournalRecord.decode(raw)
    assert rec is not None
    assert (rec.seq, rec.component, rec.state, rec.boot_count) == (7, 2, State.TRIAL, 3)
    assert rec.flags == Flag.REVERT_REQUESTED | Flag.KEEP_BACKUP
    assert (rec.progress, rec.size, rec.version, rec.digest) == (11, 12, 13, bytes(range(32)))
    torn = raw[:40] + b"\xff" * 24
    assert JournalRecord.decode(torn) is None

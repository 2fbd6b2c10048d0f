"""The loader's journal constants, as the device runs them, agree with the format's description
(host/suture/formats/journal.toml); records written on the device decode on the host."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any

from suture.formats import journal as journal_format
from suture.formats.journal_check import compare, loader_expected
from suture.sim.journal import Flag, JournalRecord, State

CONSTANTS = """
import json
from loader import journal as J
names = [n for n in dir(J) if n.isupper() and isinstance(getattr(J, n), int)]
rec = J.Record(seq=7, component=2, state=J.TRIAL, boot_count=3, flags=5, progress=11, size=12,
               version=13, digest=bytes(range(32)))
print("RESULT " + json.dumps({"c": {n: getattr(J, n) for n in names}, "rec": rec.encode().hex()}))
"""


def test_loader_at_runtime_matches_description(
    run_mpy: Callable[..., dict[str, Any]]
) -> None:
    """The compiled loader's journal integers, as MicroPython sees them, are exactly those of
    the description (tests/formats/ checks the source text; this checks what const() made)."""
    fmt = journal_format.load()
    assert compare("loader at runtime", loader_expected(fmt), run_mpy(CONSTANTS)["c"]) == []


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

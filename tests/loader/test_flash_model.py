"""The NOR flash model: erase to 0xFF, program only clears bits, page limits, erase counters,
and power cuts that stop every later write."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from suture.sim.device import PowerCut
from suture.sim.testing import Provisioned

SCRIPT = """
from loader.errors import FlashError, FlashProgramError
r = board.region("staging")
r.erase(0)
r.program(0, b"\\x0f\\xf0")
res = {}
try:
    r.program(0, b"\\xff\\x0f")  # needs 0 -> 1 on the first byte's high nibble
    res["over"] = "accepted"
except FlashProgramError:
    res["over"] = "FlashProgramError"
r.program(0, b"\\x0f\\x00")  # only clears bits: allowed
try:
    board.external.program(r.offset + 250, bytes(10))
    res["cross"] = "accepted"
except FlashError:
    res["cross"] = "FlashError"
try:
    r.read(r.size - 1, bytearray(2))
    res["outside"] = "accepted"
except FlashError:
    res["outside"] = "FlashError"
b = bytearray(3)
r.read(0, b)
res["bytes"] = b.hex()
r.program(300, b"\\x00" * 600)  # split into page programs
out["flash"] = res
"""


def test_nor_semantics(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    staging = p.board.board.regions["staging"]
    sector = p.board.board.external.sector
    before = p.board.erase_counters()[staging.offset // sector]
    r = p.device.run(["exec", p.board.put_file("t.py", SCRIPT.encode())])
    assert r.ok, r.stdout + r.stderr
    assert r.result["flash"] == {
        "over": "FlashProgramError",
        "cross": "FlashError",
        "outside": "FlashError",
        "bytes": "0f00ff",
    }
    assert p.board.erase_counters()[staging.offset // sector] == before + 1
    assert r.ops_count == 1 + 1 + 1 + 3  # erase, two programs, 600 bytes from 300: 3 pages
    image = p.board.region_bytes("staging")
    assert image[300:900] == b"\x00" * 600
    assert image[900:sector] == b"\xff" * (sector - 900)


@pytest.mark.parametrize("torn", [None, 100])
def test_power_cut_stops_all_writes(
    make_device: Callable[..., Provisioned], torn: int | None
) -> None:
    p = make_device()
    script = p.board.put_file(
        "w.py",
        b'r = board.region("staging")\nr.erase(0)\nr.program(0, bytes(256))\n'
        b"r.program(256, bytes(256))\n",
    )
    r = p.device.run(["exec", script], power_cut=PowerCut(after_ops=2, torn_bytes=torn))
    assert r.exit_code == 99
    assert r.power_cut_happened
    assert r.ops_count == 2
    image = p.board.region_bytes("staging")
    assert image[:256] == bytes(256)
    written = 100 if torn else 0
    assert image[256 : 256 + written] == bytes(written)
    assert image[256 + written : 1024] == b"\xff" * (768 - written)

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


FILL = b'r = board.region("staging")\nr.erase(0)\nr.program(0, bytes(256))\nr.erase(0)\n'


@pytest.mark.parametrize("tail", [False, True])
def test_partial_erase_leaves_head_or_tail(
    make_device: Callable[..., Provisioned], tail: bool
) -> None:
    """A cut erase erases only part of the sector: its head (the tail keeps the old bytes), or
    with from_tail its tail (the head keeps them)."""
    p = make_device()
    sector = p.board.board.external.sector
    r = p.device.run(["exec", p.board.put_file("e.py", FILL)],
                     power_cut=PowerCut(after_ops=2, torn_bytes=sector - 100, from_tail=tail))
    assert r.power_cut_happened
    image = p.board.region_bytes("staging")
    if tail:
        assert image[:100] == bytes(100)  # the head is not erased
        assert image[100:sector] == b"\xff" * (sector - 100)
    else:
        assert image[: sector - 100] == b"\xff" * (sector - 100)
    assert not p.board.weak_bytes()


READS = b"""
r = board.region("staging")
vals = set()
seq = []
b = bytearray(4)
for _ in range(64):
    r.read(254, b)
    vals.add(bytes(b).hex())
    seq.append(b[1])
out["vals"] = sorted(vals)
out["seq"] = seq
"""


def test_weak_bytes_read_either_value_by_seed(make_device: Callable[..., Provisioned]) -> None:
    """A cut program leaves the bytes next to its applied part weak: they read back as either
    value (only in the bits the program was clearing), the same way for the same seed."""
    p = make_device()
    script = p.board.put_file(
        "w.py", b'r = board.region("staging")\nr.erase(0)\nr.program(0, b"\\x0f" * 256)\n'
    )
    r = p.device.run(["exec", script],
                     power_cut=PowerCut(after_ops=1, torn_bytes=255, weak_bytes=1))
    assert r.power_cut_happened
    staging = p.board.board.regions["staging"]
    assert p.board.weak_bytes() == {staging.offset + 255: 0xF0}
    reads = p.board.put_file("r.py", READS)
    a = p.device.run(["exec", reads], seed=7)
    b = p.device.run(["exec", reads], seed=7)
    c = p.device.run(["exec", reads], seed=8)
    assert a.ok, a.stdout + a.stderr
    assert a.result == b.result  # same seed, same reads
    assert a.result["seq"] != c.result["seq"]
    vals = a.result["vals"]
    assert isinstance(vals, list)
    assert all(v[:2] == "0f" and v[4:] == "ffff" for v in vals)  # applied; not programmed
    assert {int(v[2:4], 16) & 0x0F for v in vals} == {0x0F}  # only the weak bits vary
    assert len(vals) > 4
    # programming the weak byte to 0x00 settles it; a full erase of the sector clears it too
    fix = p.board.put_file("f.py", b'board.region("staging").program(255, b"\\x00")\n')
    assert p.device.run(["exec", fix]).ok
    assert p.board.weak_bytes() == {}


def test_weak_erase_and_full_erase_settles(make_device: Callable[..., Provisioned]) -> None:
    p = make_device()
    sector = p.board.board.external.sector
    r = p.device.run(["exec", p.board.put_file("e.py", FILL)],
                     power_cut=PowerCut(after_ops=2, torn_bytes=100, weak_bytes=8, seed=3))
    assert r.power_cut_happened
    staging = p.board.board.regions["staging"]
    weak = p.board.weak_bytes()
    assert weak == {staging.offset + 100 + k: 0xFF for k in range(8)}
    script = p.board.put_file("z.py", b'board.region("staging").erase(0)\n')
    assert p.device.run(["exec", script]).ok
    assert p.board.weak_bytes() == {}
    assert p.board.region_bytes("staging")[:sector] == b"\xff" * sector

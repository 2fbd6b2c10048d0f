"""The RP2040's UF2 file, checked block by block against the UF2 specification
(github.com/microsoft/uf2, README "File format"), by a reader written from the specification and
sharing nothing with suture's writer:

- each block is 512 bytes: magic 0x0A324655 and 0x9E5D5157 at 0 and 4, the final magic
  0x0AB16F30 at 508;
- word 2 holds the flags: 0x00002000 says word 7 is a family id; 0x00000001 (not main flash),
  0x00001000 (file container) and 0x00004000 (MD5 checksum) must not be set here;
- word 3 the target address, word 4 the payload size (at most 476; 256 is what the RP2040's boot
  ROM takes, at a 256-byte aligned address), word 5 the block number from 0, word 6 the total
  number of blocks, word 7 the family id (0xE48BFF56 for the RP2040);
- the data area (bytes 32..507) holds the payload, then zeros.

The reader rebuilds the flash contents and the test compares them with the images: stage0 at the
start of the flash, the loader image at its region, each padded to whole 256-byte pages with
0xFF (erased flash), nothing else written.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from suture.boardops.flashing import Images, write_uf2
from suture.boards import load_board
from suture.cli.main import app
from typer.testing import CliRunner

BLOCK = 512
MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FILE_CONTAINER = 0x00001000
FLAG_FAMILY_ID_PRESENT = 0x00002000
FLAG_MD5_PRESENT = 0x00004000
DATA_AREA = 476
RP2040_FAMILY = 0xE48BFF56
RP2040_PAGE = 256


class Uf2SpecError(AssertionError):
    """A UF2 file breaks the specification."""


@dataclass(frozen=True)
class Uf2Block:
    flags: int
    address: int
    size: int
    number: int
    total: int
    family: int
    payload: bytes


def read_uf2(data: bytes, family: int, page: int) -> list[Uf2Block]:
    """Every block of ``data``, each checked against the specification."""
    if not data or len(data) % BLOCK:
        raise Uf2SpecError(f"{len(data)} bytes is not a whole number of 512-byte blocks")
    blocks: list[Uf2Block] = []
    count = len(data) // BLOCK
    for index in range(count):
        raw = data[index * BLOCK : (index + 1) * BLOCK]
        start0, start1, flags, address, size, number, total, fam = struct.unpack_from("<8I", raw)
        (end,) = struct.unpack_from("<I", raw, 508)
        where = f"block {index}"
        if (start0, start1, end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise Uf2SpecError(f"{where}: magic numbers {start0:#x} {start1:#x} {end:#x}")
        if not flags & FLAG_FAMILY_ID_PRESENT:
            raise Uf2SpecError(f"{where}: flags {flags:#x} without the family id flag")
        if flags & (FLAG_NOT_MAIN_FLASH | FLAG_FILE_CONTAINER | FLAG_MD5_PRESENT):
            raise Uf2SpecError(f"{where}: flags {flags:#x} not for a main-flash image")
        if fam != family:
            raise Uf2SpecError(f"{where}: family {fam:#x}, not {family:#x}")
        if size != page or address % page:
            raise Uf2SpecError(f"{where}: {size} bytes at {address:#x}, not whole aligned "
                               f"{page}-byte pages")
        if number != index or total != count:
            raise Uf2SpecError(f"{where}: numbered {number} of {total}, not {index} of {count}")
        if raw[32 + size : 32 + DATA_AREA] != bytes(DATA_AREA - size):
            raise Uf2SpecError(f"{where}: the data area after the payload is not zeros")
        if blocks and address <= blocks[-1].address:
            raise Uf2SpecError(f"{where}: address {address:#x} after {blocks[-1].address:#x}")
        blocks.append(Uf2Block(flags, address, size, number, total, fam, raw[32 : 32 + size]))
    return blocks


def flash_contents(blocks: list[Uf2Block]) -> dict[int, bytes]:
    """Address -> byte written, as runs: {start of each contiguous run: its bytes}."""
    runs: dict[int, bytearray] = {}
    start = None
    for block in blocks:
        if start is not None and start + len(runs[start]) == block.address:
            runs[start] += block.payload
        else:
            start = block.address
            runs[start] = bytearray(block.payload)
    return {address: bytes(run) for address, run in runs.items()}


def _erased(data: bytes, page: int) -> bytes:
    return data + b"\xff" * (-len(data) % page)


@pytest.fixture
def pico_images(tmp_path: Path) -> Images:
    rng = random.Random(2040)
    (tmp_path / "stage0.bin").write_bytes(rng.randbytes(256 + 5000))  # boot2 + stage0, ragged
    (tmp_path / "loader.img").write_bytes(rng.randbytes(512 + 70001))
    return Images(loader=tmp_path / "loader.img", stage0=tmp_path / "stage0.bin")


def test_the_pico_uf2_file_follows_the_specification(tmp_path: Path, pico_images: Images) -> None:
    board = load_board("rpi-pico")
    assert board.flashing.uf2_family is not None
    assert int(board.flashing.uf2_family, 16) == RP2040_FAMILY
    data = write_uf2(board, pico_images, tmp_path / "pico.uf2").read_bytes()
    blocks = read_uf2(data, RP2040_FAMILY, RP2040_PAGE)
    assert pico_images.stage0 is not None
    stage0 = pico_images.stage0.read_bytes()
    loader = pico_images.loader.read_bytes()
    assert flash_contents(blocks) == {
        0x10000000: _erased(stage0, RP2040_PAGE),
        0x10008000: _erased(loader, RP2040_PAGE),
    }
    flash = board.internal_flash
    assert all(flash.base <= b.address < flash.base + flash.size for b in blocks)
    assert len(blocks) == (len(stage0) + 255) // 256 + (len(loader) + 255) // 256


def test_suture_board_image_writes_the_same_uf2(tmp_path: Path, pico_images: Images) -> None:
    assert pico_images.stage0 is not None
    result = CliRunner().invoke(app, ["board", "image", "rpi-pico", "--firmware",
                                      str(pico_images.loader), "--stage0",
                                      str(pico_images.stage0), "--out", str(tmp_path / "a.uf2")])
    assert result.exit_code == 0, result.output
    blocks = read_uf2((tmp_path / "a.uf2").read_bytes(), RP2040_FAMILY, RP2040_PAGE)
    assert f"wrote {tmp_path / 'a.uf2'}: {len(blocks)} UF2 blocks, family 0xE48BFF56" in \
        " ".join(result.output.split())


def _patch(data: bytes, block: int, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, block * BLOCK + offset, value)
    return bytes(out)


@pytest.mark.parametrize(
    ("block", "offset", "value", "message"),
    [(1, 0, 0x0A324654, "magic numbers"),
     (1, 508, 0, "magic numbers"),
     (2, 8, FLAG_FAMILY_ID_PRESENT | FLAG_NOT_MAIN_FLASH, "not for a main-flash image"),
     (2, 8, 0, "without the family id flag"),
     (3, 28, 0xADA52840, "family 0xada52840"),
     (3, 16, 476, "not whole aligned 256-byte pages"),
     (3, 12, 0x10000080, "not whole aligned"),
     (3, 20, 7, "numbered 7"),
     (3, 24, 99, "of 99"),
     (4, 32 + 300, 1, "not zeros"),
     (4, 12, 0x10000000, "after")],
)
def test_the_reader_catches_each_violation(
    tmp_path: Path, pico_images: Images, block: int, offset: int, value: int, message: str
) -> None:
    data = write_uf2(load_board("rpi-pico"), pico_images, tmp_path / "p.uf2").read_bytes()
    read_uf2(data, RP2040_FAMILY, RP2040_PAGE)
    with pytest.raises(Uf2SpecError, match=message):
        read_uf2(_patch(data, block, offset, value), RP2040_FAMILY, RP2040_PAGE)
    with pytest.raises(Uf2SpecError, match="whole number of 512-byte blocks"):
        read_uf2(data[:-1], RP2040_FAMILY, RP2040_PAGE)

"""The ESP32-S3's flash image, built for real by the pinned esptool: ESP-IDF's parts made here
(an Xtensa ELF for the bootloader and one for MicroPython, converted by ``elf2image``; a
partition table in ESP-IDF's binary format), merged by `suture board image` (``merge_bin`` at
the board's offsets, the flash size set from the board) and read back by esptool's
``image_info`` and by a reader of ESP-IDF's image header written here. Writing it to a chip
needs the chip: without one, the real connection's failure is one line (exit 3).

docs/boards.md's `suture board image esp32-s3 …` block is what
:func:`test_the_merged_image_reads_back` runs."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from suture.boardops import esp
from suture.boardops.flashing import EsptoolWrite, FlashPlanError
from suture.boards import load_board
from suture.cli.main import app
from typer.testing import CliRunner

BOARD = "esp32-s3"
EM_XTENSA = 94
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
BOOTLOADER_ENTRY = 0x403C9000
APP_ENTRY = 0x42000020
ESP32S3_CHIP_ID = 9
FLASH_SIZE_8MB = 3  # the high nibble of header byte 3
runner = CliRunner()


def xtensa_elf(entry: int, sections: list[tuple[str, int, bytes, int]]) -> bytes:
    """A minimal ELF32 executable for Xtensa: ``(name, address, data, flags)`` PROGBITS
    sections and their string table, no program headers (esptool reads sections)."""
    names = b"\x00" + b"".join(n.encode() + b"\x00" for n, *_ in sections) + b".shstrtab\x00"
    body = bytearray(0x34)
    offsets = []
    for _name, _address, data, _flags in sections:
        body += bytes(-len(body) % 4)
        offsets.append(len(body))
        body += data
    names_at = len(body)
    body += names + bytes(-(len(body) + len(names)) % 4)
    headers = [bytes(40)]
    name_at = 1
    for (name, address, data, flags), offset in zip(sections, offsets, strict=True):
        headers.append(struct.pack("<10I", name_at, 1, flags, address, offset, len(data), 0, 0,
                                   4, 0))
        name_at += len(name) + 1
    headers.append(struct.pack("<10I", name_at, 3, 0, 0, names_at, len(names), 0, 0, 1, 0))
    section_headers_at = len(body)
    body += b"".join(headers)
    ident = b"\x7fELF\x01\x01\x01" + bytes(9)
    body[:0x34] = struct.pack("<16sHHIIIIIHHHHHH", ident, 2, EM_XTENSA, 1, entry, 0,
                              section_headers_at, 0, 0x34, 32, 0, 40, len(headers),
                              len(headers) - 1)
    return bytes(body)


def partition_table(entries: list[tuple[str, int, int, int, int]], *, md5: bool = True) -> bytes:
    """ESP-IDF's binary partition table: ``(label, type, subtype, offset, size)`` entries of 32
    bytes (magic 0xAA 0x50), an MD5 entry over them, 0xFF up to 0xC00 bytes."""
    table = b"".join(b"\xaa\x50" + struct.pack("<BBII", kind, subtype, offset, size)
                     + label.encode().ljust(16, b"\x00") + bytes(4)
                     for label, kind, subtype, offset, size in entries)
    if md5:
        table += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(table, usedforsecurity=False).digest()
    return table.ljust(0xC00, b"\xff")


MICROPYTHON_PARTITIONS = [("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000),
                          ("factory", 0, 0, 0x10000, 0x1F0000), ("vfs", 1, 0x81, 0x200000,
                                                                  0x600000)]


def _bootloader_elf() -> bytes:
    return xtensa_elf(BOOTLOADER_ENTRY, [
        (".iram_loader.text", BOOTLOADER_ENTRY, b"\x36\x41\x00" * 700, SHF_ALLOC | SHF_EXECINSTR),
        (".dram0.data", 0x3FCD8000, bytes(range(64)), SHF_ALLOC | SHF_WRITE)])


def _app_elf() -> bytes:
    return xtensa_elf(APP_ENTRY, [
        (".flash.rodata", 0x3C010020, b"MicroPython" * 500, SHF_ALLOC),
        (".flash.text", APP_ENTRY, b"\x36\x41\x00" * 3000, SHF_ALLOC | SHF_EXECINSTR),
        (".iram0.text", 0x40374000, b"\x06\x00\x00" * 200, SHF_ALLOC | SHF_EXECINSTR),
        (".dram0.data", 0x3FC90000, b"\x01\x02\x03\x04" * 32, SHF_ALLOC | SHF_WRITE)])


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> esp.EspParts:
    """ESP-IDF's build outputs for the board: the bootloader image (made by esptool for a 2 MB
    flash, which the merge must correct), the partition table and MicroPython's ELF."""
    folder = tmp_path_factory.mktemp("idf")
    (folder / "bootloader.elf").write_bytes(_bootloader_elf())
    with esp.esptool_output():
        import esptool.cmds

        bootloader = esptool.cmds.elf2image(str(folder / "bootloader.elf"), "esp32s3",
                                            flash_mode="dio", flash_size="2MB")
    (folder / "bootloader.bin").write_bytes(bootloader)
    (folder / "partition-table.bin").write_bytes(partition_table(MICROPYTHON_PARTITIONS))
    (folder / "micropython.elf").write_bytes(_app_elf())
    return esp.EspParts(folder / "bootloader.bin", folder / "partition-table.bin",
                        folder / "micropython.elf")


def _image(tmp_path: Path, parts: esp.EspParts, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["board", "image", BOARD, "--bootloader", str(parts.bootloader),
                                 "--partition-table", str(parts.partition_table), "--app",
                                 str(parts.app), "--out", str(tmp_path / "firmware.bin"),
                                 *extra])
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


def _header(image: bytes) -> dict[str, int]:
    """ESP-IDF's esp_image_header_t (24 bytes) and the segments after it."""
    magic, segments, mode, size_freq, entry = struct.unpack_from("<BBBBI", image)
    chip_id = struct.unpack_from("<H", image, 12)[0]
    offset, loads = 24, []
    for _ in range(segments):
        address, length = struct.unpack_from("<II", image, offset)
        loads.append(address)
        offset += 8 + length
    return {"magic": magic, "segments": segments, "mode": mode, "flash_size": size_freq >> 4,
            "entry": entry, "chip_id": chip_id, "end": offset, "first_load": loads[0]}


def test_the_merged_image_reads_back(tmp_path: Path, parts: esp.EspParts) -> None:
    code, out = _image(tmp_path, parts, "--json")
    assert code == 0, out
    record = json.loads(out)
    merged = (tmp_path / "firmware.bin").read_bytes()
    board = load_board(BOARD)
    layout = board.flashing.esptool_image
    assert layout is not None
    assert record["size"] == len(merged)
    assert (record["chip"], record["flash_size"]) == ("esp32s3", "8MB")
    # Read here from ESP-IDF's header format: the bootloader at 0, corrected to the board's
    # 8 MiB; the partition table verbatim at 0x8000; MicroPython at 0x10000.
    assert board.internal_flash.size == 8 * 1024 * 1024
    boot = _header(merged[layout.bootloader :])
    assert (boot["magic"], boot["chip_id"], boot["flash_size"], boot["entry"]) == (
        0xE9, ESP32S3_CHIP_ID, FLASH_SIZE_8MB, BOOTLOADER_ENTRY)
    assert set(merged[boot["end"] + 48 : layout.partition_table]) == {0xFF}  # after its digest
    table = parts.partition_table.read_bytes()
    assert merged[layout.partition_table : layout.partition_table + len(table)] == table
    assert set(merged[layout.partition_table + len(table) : layout.app]) == {0xFF}
    app_header = _header(merged[layout.app :])
    assert (app_header["magic"], app_header["chip_id"], app_header["flash_size"],
            app_header["entry"], app_header["mode"]) == (0xE9, ESP32S3_CHIP_ID, FLASH_SIZE_8MB,
                                                         APP_ENTRY, 2)  # 2: DIO
    assert record["app_entry"] == APP_ENTRY
    assert len(merged) == layout.app + record["app_size"]
    # esptool reads both images back: chip, flash size, entry, checksum and SHA-256 valid.
    for start, end, entry in ((layout.bootloader, layout.partition_table, BOOTLOADER_ENTRY),
                              (layout.app, len(merged), APP_ENTRY)):
        info = esp.image_info(merged[start:end], "esp32s3")
        assert "Chip ID: 9 (ESP32-S3)" in info
        assert "Flash size: 8MB" in info
        assert f"Entry point: {entry:#8x}" in info
        assert "(valid)" in info.split("Checksum:")[1].splitlines()[0]
        assert "(valid)" in info.split("Validation hash:")[1].splitlines()[0]


def test_an_app_image_and_its_elf_give_the_same_flash_image(
    tmp_path: Path, parts: esp.EspParts
) -> None:
    code, out = _image(tmp_path, parts)
    assert code == 0, out
    from_elf = (tmp_path / "firmware.bin").read_bytes()
    app_bin = tmp_path / "micropython.bin"
    app_bin.write_bytes(esp.app_image(load_board(BOARD), parts.app))
    same = esp.EspParts(parts.bootloader, parts.partition_table, app_bin)
    merged = esp.merge_image(load_board(BOARD), same, tmp_path / "again.bin")
    assert (tmp_path / "again.bin").read_bytes() == from_elf
    assert merged.app_entry == APP_ENTRY


def _with(tmp_path: Path, parts: esp.EspParts, **changes: bytes) -> esp.EspParts:
    paths = {"bootloader": parts.bootloader, "partition_table": parts.partition_table,
             "app": parts.app}
    for name, data in changes.items():
        paths[name] = tmp_path / f"{name}.bin"
        paths[name].write_bytes(data)
    return esp.EspParts(**paths)


@pytest.mark.parametrize(("change", "message"), [
    ("factory elsewhere", "the partition table puts the app 'factory' at 0x20000; board "
                          "esp32-s3 has it at 0x10000"),
    ("app too large", "does not fit its partition 'factory' (4096 bytes)"),
    ("bad md5", "the partition table's MD5 does not match its entries"),
    ("no table", "not an ESP-IDF partition table"),
    ("esp32-c3 bootloader", "bootloader.bin is for chip id 5, not ESP32-S3 (9)"),
    ("bootloader too long", "runs into 0x8000"),
    ("not an app", "is not an ESP32-S3 image"),
])
def test_parts_that_do_not_fit_the_board_are_refused(
    tmp_path: Path, parts: esp.EspParts, change: str, message: str
) -> None:
    import esptool.cmds

    entries = list(MICROPYTHON_PARTITIONS)
    table = parts.partition_table.read_bytes()
    if change == "factory elsewhere":
        entries[2] = ("factory", 0, 0, 0x20000, 0x1E0000)
        bad = _with(tmp_path, parts, partition_table=partition_table(entries))
    elif change == "app too large":
        entries[2] = ("factory", 0, 0, 0x10000, 0x1000)
        bad = _with(tmp_path, parts, partition_table=partition_table(entries))
    elif change == "bad md5":
        bad = _with(tmp_path, parts, partition_table=table[:6] + b"\x77" + table[7:])
    elif change == "no table":
        bad = _with(tmp_path, parts, partition_table=b"\xff" * 0xC00)
    elif change == "esp32-c3 bootloader":
        with esp.esptool_output():
            other = esptool.cmds.elf2image(_bootloader_elf(), "esp32c3")
        bad = _with(tmp_path, parts, bootloader=other)
    elif change == "bootloader too long":
        bad = _with(tmp_path, parts,
                    bootloader=parts.bootloader.read_bytes() + b"\x00" * 0x8000)
    else:
        bad = _with(tmp_path, parts, app=b"\x00" * 4096)
    code, out = _image(tmp_path, bad)
    assert code == 1
    assert message in out
    assert not (tmp_path / "firmware.bin").exists()


def test_esptool_progress_reaches_suture_callback() -> None:
    """esptool's own progress machinery (what write_flash updates per block) drives the
    callback the CLI's bar follows."""
    from esptool.logger import log

    seen: list[tuple[str, int, int]] = []
    with esp.esptool_output(lambda *a: seen.append(a), "write at 0x0") as out, \
            log.progress(total=4096, unit="B") as progress:
        log.print("Compressed 4096 bytes")
        progress.update(advance=1024)
        progress.update(advance=3072)
    assert seen == [("write at 0x0", 1024, 4096), ("write at 0x0", 4096, 4096)]
    assert out.lines == ["Compressed 4096 bytes"]


@pytest.fixture
def silent_port() -> Iterator[str]:
    controller, device = pty.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(controller)
        os.close(device)


def test_writing_without_a_chip_is_one_line(tmp_path: Path, silent_port: str) -> None:
    (tmp_path / "fw.bin").write_bytes(b"\xe9" + bytes(255))
    for port, reason in ((str(tmp_path / "ttyACM9"), "the port is busy or doesn't exist"),
                         (silent_port, "No serial data received")):
        step = EsptoolWrite("write the MicroPython firmware", "esp32s3", port, 460800,
                            ((0, tmp_path / "fw.bin"),))
        with pytest.raises(FlashPlanError, match=rf"no esp32s3 answers on {port}: .*{reason}"
                           ) as err:
            esp.write_flash(step, connect_attempts=1)
        assert err.value.exit_code == 3
        assert "\n" not in str(err.value)

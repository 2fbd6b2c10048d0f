"""The steps that flash each real board (the tools' API calls with their addresses, dfu-util's
argument lists) and the UF2 writer."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from suture.boardops.flashing import (
    CopyToVolume,
    DfuPackageBuild,
    EsptoolWrite,
    FlashCommand,
    FlashPlanError,
    Images,
    ProbeWrite,
    SerialDfu,
    find_volume,
    flash_plan,
    to_uf2,
    write_uf2,
)
from suture.boards import load_board

S0 = Path("/img/stage0.bin")
FW = Path("/img/firmware.bin")
WORK = Path("/work/tmp")


def _argvs(steps: list[object]) -> list[tuple[str, ...]]:
    return [s.argv for s in steps if isinstance(s, FlashCommand)]


def test_feather_over_swd_writes_stage0_at_0_and_the_loader_after_it() -> None:
    board = load_board("adafruit-feather-nrf52840")
    steps = flash_plan(board, Images(loader=FW, stage0=S0), probe="E6614C31", workdir=WORK)
    assert steps == [
        ProbeWrite("write stage0 at 0x00000000 over SWD", "nrf52840", None, "E6614C31", 0x0, S0),
        ProbeWrite("write loader image at 0x00008000 over SWD", "nrf52840", None, "E6614C31",
                   0x8000, FW),
    ]


def test_feather_serial_dfu_refuses_stage0_and_packages_the_firmware() -> None:
    board = load_board("adafruit-feather-nrf52840")
    with pytest.raises(FlashPlanError, match="cannot write stage0 at 0x00000000"):
        flash_plan(board, Images(loader=FW, stage0=S0), method="adafruit-nrfutil",
                   port="/dev/ttyACM0", workdir=WORK)


def test_nrfutil_command_lines_for_a_board_without_stage0() -> None:
    # The recovery path: the same board with stage0 switched off (stock MicroPython).
    board = load_board("adafruit-feather-nrf52840").model_copy(
        update={"stage0": False, "stage0_note": "recovery"}
    )
    steps = flash_plan(board, Images(loader=FW), method="adafruit-nrfutil",
                       port="/dev/ttyACM0", workdir=WORK)
    assert steps == [
        DfuPackageBuild("package the loader image for serial DFU", "0x0052", FW,
                        WORK / "firmware-dfu.zip"),
        SerialDfu("write the loader image through the bootloader on /dev/ttyACM0",
                  WORK / "firmware-dfu.zip", "/dev/ttyACM0", 115200),
    ]
    with pytest.raises(FlashPlanError, match="give --port"):
        flash_plan(board, Images(loader=FW), method="adafruit-nrfutil", workdir=WORK)


def test_pico_default_is_a_uf2_copy_and_pyocd_is_the_alternative() -> None:
    board = load_board("rpi-pico")
    steps = flash_plan(board, Images(loader=FW, stage0=S0), workdir=WORK)
    assert steps == [CopyToVolume("copy rpi-pico.uf2 onto the RPI-RP2 drive",
                                  WORK / "rpi-pico.uf2", "RPI-RP2")]
    swd = flash_plan(board, Images(loader=FW, stage0=S0), method="pyocd", workdir=WORK)
    assert [(s.target, s.address) for s in swd if isinstance(s, ProbeWrite)] == [
        ("rp2040", 0x10000000), ("rp2040", 0x10008000)]


def test_pyboard_dfu_util_uses_the_flash_base_and_leaves_after_the_last_write() -> None:
    board = load_board("pyboard-stm32f405")
    steps = flash_plan(board, Images(loader=FW, stage0=S0), workdir=WORK)
    assert _argvs(steps) == [
        ("dfu-util", "--alt", "0", "--device", "0483:df11", "--dfuse-address", "0x08000000",
         "--download", "/img/stage0.bin"),
        ("dfu-util", "--alt", "0", "--device", "0483:df11", "--dfuse-address",
         "0x08020000:leave", "--download", "/img/firmware.bin"),
    ]
    swd = flash_plan(board, Images(loader=FW, stage0=S0), method="pyocd", workdir=WORK)
    assert [(s.target, s.pack, s.address) for s in swd if isinstance(s, ProbeWrite)] == [
        ("stm32f405rgtx", "Keil.STM32F4xx_DFP", 0x08000000),
        ("stm32f405rgtx", "Keil.STM32F4xx_DFP", 0x08020000)]


def test_esp32_s3_esptool_writes_the_firmware_at_0_and_has_no_stage0() -> None:
    board = load_board("esp32-s3")
    steps = flash_plan(board, Images(loader=FW), port="/dev/ttyACM0", workdir=WORK)
    assert steps == [
        EsptoolWrite("write the MicroPython firmware over /dev/ttyACM0", "esp32s3",
                     "/dev/ttyACM0", 460800, ((0x0, FW),)),
    ]
    with pytest.raises(FlashPlanError, match="esp32-s3 has no stage0: Xtensa"):
        flash_plan(board, Images(loader=FW, stage0=S0), port="/dev/ttyACM0", workdir=WORK)


def test_unsupported_method_and_missing_stage0_are_refused() -> None:
    board = load_board("rpi-pico")
    with pytest.raises(FlashPlanError, match="not flashed with 'esptool'; it supports uf2, pyocd"):
        flash_plan(board, Images(loader=FW, stage0=S0), method="esptool", workdir=WORK)
    with pytest.raises(FlashPlanError, match="needs a stage0 image"):
        flash_plan(board, Images(loader=FW), workdir=WORK)


def test_sim_has_nothing_to_flash() -> None:
    assert flash_plan(load_board("sim"), Images(loader=FW), workdir=WORK) == []


def test_uf2_blocks_carry_address_family_and_numbering(tmp_path: Path) -> None:
    data = to_uf2([(0x10000000, b"\x01" * 300), (0x10008000, b"\x02" * 10)], 0xE48BFF56)
    assert len(data) == 3 * 512
    blocks = [data[i : i + 512] for i in range(0, len(data), 512)]
    fields = [struct.unpack_from("<8I", b) for b in blocks]
    assert [f[3] for f in fields] == [0x10000000, 0x10000100, 0x10008000]
    assert [(f[5], f[6]) for f in fields] == [(0, 3), (1, 3), (2, 3)]
    assert all(f[0] == 0x0A324655 and f[1] == 0x9E5D5157 and f[7] == 0xE48BFF56 for f in fields)
    assert all(struct.unpack_from("<I", b, 508)[0] == 0x0AB16F30 for b in blocks)
    assert blocks[1][32 : 32 + 44] == b"\x01" * 44
    assert blocks[1][32 + 44 : 32 + 256] == b"\xff" * 212  # padded like erased flash
    with pytest.raises(FlashPlanError, match="not 256-byte aligned"):
        to_uf2([(0x10000010, b"x")], 1)
    (tmp_path / "s0").write_bytes(b"s" * 256)
    (tmp_path / "fw").write_bytes(b"f" * 512)
    out = write_uf2(load_board("rpi-pico"),
                    Images(loader=tmp_path / "fw", stage0=tmp_path / "s0"), tmp_path / "o.uf2")
    assert len(out.read_bytes()) == 3 * 512


def test_find_volume(tmp_path: Path) -> None:
    (tmp_path / "alice" / "RPI-RP2").mkdir(parents=True)
    assert find_volume("RPI-RP2", (tmp_path,)) == tmp_path / "alice" / "RPI-RP2"
    assert find_volume("FTHR840BOOT", (tmp_path,)) is None

"""The nRF52840 Feather's serial-DFU package, built for real from a suture loader image by the
pinned adafruit-nrfutil (its ``dfu genpkg`` command and its library, as `suture board image` and
the flash plan use it) and read back here: the zip's manifest, the init packet of DFU version 0.5
(device type, revision, application version, SoftDevice list, CRC-16) and the binary, with a
CRC-16 computed by this test. The serial transfer needs the board's bootloader: without one the
real transport's failure is one line (exit 3)."""

from __future__ import annotations

import json
import os
import pty
import struct
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from suture import keys
from suture.boardops import nrf_dfu
from suture.boardops.flash_runner import run_flash_plan
from suture.boardops.flashing import FlashPlanError, Images, SerialDfu, flash_plan
from suture.boards import load_board
from suture.cli.main import app
from suture.image import HEADER_SIZE, parse_header, sign_image
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
NRFUTIL = REPO / ".venv" / "bin" / "adafruit-nrfutil"
BOARD = "adafruit-feather-nrf52840"


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, bit by bit: polynomial 0x1021, initial value 0xFFFF, no reflection."""
    crc = 0xFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            top = (crc >> 15) ^ ((byte >> bit) & 1)
            crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if top else 0)
    return crc


def test_the_crc_is_crc16_ccitt_false() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1  # the catalogued check value
    assert nrf_dfu.crc16(b"123456789") == 0x29B1


@pytest.fixture(scope="module")
def loader_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed loader image for the Feather's loader slot, of a length that is not whole words."""
    board = load_board(BOARD)
    slot = next(r for r in board.internal_flash.regions if r.kind == "loader")
    body = bytes(range(256)) * 97 + b"\x5a\x5b\x5c"
    image = sign_image(body, private_key=keys.generate_private_key("ES256"), version=(1, 2, 3),
                       security_counter=4, load_address=board.internal_flash.base + slot.offset
                       + HEADER_SIZE)
    path = tmp_path_factory.mktemp("nrf") / "loader.img"
    path.write_bytes(image)
    return path


def _read(package: Path) -> tuple[dict[str, object], bytes, bytes]:
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))["manifest"]
        app_entry = manifest["application"]
        return manifest, archive.read(app_entry["dat_file"]), archive.read(app_entry["bin_file"])


def _check_package(package: Path, image: bytes, dev_type: int) -> None:
    manifest, init, binary = _read(package)
    padded = image + b"\xff" * (-len(image) % 4)  # the DFU writes whole 32-bit words
    assert binary == padded
    assert manifest["dfu_version"] == 0.5
    # Version 0.5's init packet: device type, revision, application version, the SoftDevices
    # accepted (count, then each), the CRC-16 of the binary.
    fields = struct.unpack("<HHIHHH", init)
    assert fields == (dev_type, 0xFFFF, 0xFFFFFFFF, 1, 0xFFFE, crc16_ccitt(padded))
    app_entry = manifest["application"]
    assert isinstance(app_entry, dict)
    assert app_entry["init_packet_data"]["device_type"] == dev_type
    assert app_entry["init_packet_data"]["firmware_crc16"] == crc16_ccitt(padded)


def test_genpkg_packages_a_suture_loader_image(tmp_path: Path, loader_image: Path) -> None:
    """The tool's own command, as the docs show it, on the Feather's --dev-type."""
    board = load_board(BOARD)
    assert board.flashing.nrfutil_dev_type == "0x0052"
    # genpkg reads a name not ending in .bin as Intel HEX: the raw image goes in as .bin.
    raw = tmp_path / "loader.bin"
    raw.write_bytes(loader_image.read_bytes())
    proc = subprocess.run([str(NRFUTIL), "dfu", "genpkg", "--dev-type", "0x0052",
                           "--application", str(raw), str(tmp_path / "cli.zip")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    image = loader_image.read_bytes()
    _check_package(tmp_path / "cli.zip", image, 0x52)
    header = parse_header(_read(tmp_path / "cli.zip")[2])
    assert header.load_address == 0x8000 + HEADER_SIZE


def test_suture_builds_the_same_package_through_the_library(
    tmp_path: Path, loader_image: Path
) -> None:
    raw = tmp_path / "loader.bin"
    raw.write_bytes(loader_image.read_bytes())
    subprocess.run([str(NRFUTIL), "dfu", "genpkg", "--dev-type", "0x0052", "--application",
                    str(raw), str(tmp_path / "cli.zip")], capture_output=True, timeout=120,
                   check=True)
    built = nrf_dfu.build_package("0x0052", loader_image, tmp_path / "lib.zip")
    _check_package(tmp_path / "lib.zip", loader_image.read_bytes(), 0x52)
    cli_manifest, cli_init, cli_binary = _read(tmp_path / "cli.zip")
    lib_manifest, lib_init, lib_binary = _read(tmp_path / "lib.zip")
    assert (lib_init, lib_binary) == (cli_init, cli_binary)
    assert lib_manifest == cli_manifest
    assert (built.dev_type, built.crc16, built.sd_req) == (0x52, crc16_ccitt(lib_binary),
                                                          (0xFFFE,))


def test_the_flash_plan_step_and_the_cli_build_the_package(
    tmp_path: Path, loader_image: Path
) -> None:
    board = load_board(BOARD).model_copy(update={"stage0": False, "stage0_note": "recovery"})
    steps = flash_plan(board, Images(loader=loader_image), method="adafruit-nrfutil",
                       port="/dev/ttyACM0", workdir=tmp_path)
    with pytest.raises(FlashPlanError):  # builds the package, then finds no board on the port
        run_flash_plan(steps)
    _check_package(tmp_path / "loader-dfu.zip", loader_image.read_bytes(), 0x52)
    result = CliRunner().invoke(app, ["board", "image", BOARD, "--method", "adafruit-nrfutil",
                                      "--firmware", str(loader_image), "--out",
                                      str(tmp_path / "cli.zip"), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    _check_package(tmp_path / "cli.zip", loader_image.read_bytes(), 0x52)
    assert record["dev_type"] == 0x52
    assert record["crc16"] == crc16_ccitt(_read(tmp_path / "cli.zip")[2])


@pytest.mark.parametrize(("dev_type", "reason"), [
    ("nrf52840", "is not a valid integer"),
    ("0x10000", "does not fit the init packet"),
    ("none", "leaves the device type out"),
])
def test_a_dev_type_the_tool_cannot_take_is_refused(
    tmp_path: Path, loader_image: Path, dev_type: str, reason: str
) -> None:
    with pytest.raises(nrf_dfu.DfuPackageError, match=reason):
        nrf_dfu.build_package(dev_type, loader_image, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


@pytest.fixture
def silent_port() -> Iterator[str]:
    controller, device = pty.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(controller)
        os.close(device)


def test_serial_dfu_without_a_bootloader_is_one_line(
    tmp_path: Path, loader_image: Path, silent_port: str
) -> None:
    package = tmp_path / "p.zip"
    nrf_dfu.build_package("0x0052", loader_image, package)
    for port, reason in ((str(tmp_path / "ttyACM9"), "Serial port could not be opened"),
                         (silent_port, "No data received on serial port")):
        with pytest.raises(FlashPlanError, match=rf"no Adafruit bootloader answers on {port}: "
                                                 rf"{reason}") as err:
            nrf_dfu.serial_dfu(SerialDfu("write", package, port, 115200))
        assert err.value.exit_code == 3
        assert "\n" not in str(err.value)

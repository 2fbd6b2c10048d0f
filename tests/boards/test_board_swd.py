"""The local update over SWD: an RTT-style control block in the board's RAM, driven through a
memory port. On the simulated board the RAM block is a file that the unix-port process polls and
the host reads and writes, so the whole path runs here: the loader refuses an unsigned or altered
update and changes nothing, and stages and installs a signed one."""

from __future__ import annotations

import builtins
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from board_cli import board_status, cli
from hypothesis import given, settings
from hypothesis import strategies as st
from suture import keys
from suture.boardops import swd
from suture.bundle import build_bundle
from suture.sim.testing import sign_payload


def _cli_flat(*args: str | Path) -> tuple[int, str]:
    """`suture ARGS`, its output on one line (the words joined by single spaces)."""
    code, out = cli(*args)
    return code, " ".join(out.split())


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, keys.PrivateKey]:
    folder = tmp_path_factory.mktemp("swd")
    key = keys.generate_private_key("ES256")
    _, public = keys.write_key_pair(key, folder / "vendor.pem")
    app_dir = folder / "app"
    app_dir.mkdir()
    (app_dir / "main.py").write_text("def main():\n    print('APP one')\n")
    device = folder / "dev"
    code, out = _cli_flat("board", "provision", "sim", "--device", device, "--app", app_dir,
                     "--vendor-key", public)
    assert code == 0, out
    return device, key


def test_swd_update_refuses_unsigned_and_altered_then_installs_a_signed_one(
    board: tuple[Path, keys.PrivateKey], tmp_path: Path
) -> None:
    device, vendor = board
    # Larger than the 4 KiB down ring, so the payload wraps around it several times.
    payload = build_bundle({"main.py": b"def main():\n    print('APP two')\n",
                            "blob.bin": random.Random(7).randbytes(12000)})
    assert len(payload) > 2 * 4096
    (tmp_path / "app2.bundle").write_bytes(payload)
    (tmp_path / "app2.suit").write_bytes(sign_payload(payload, 2, vendor))
    (tmp_path / "rogue.suit").write_bytes(
        sign_payload(payload, 3, keys.generate_private_key("ES256")))
    altered = payload[:-1] + bytes([payload[-1] ^ 1])
    (tmp_path / "altered.bundle").write_bytes(altered)

    code, out = _cli_flat("board", "update", "sim", tmp_path / "rogue.suit",
                     tmp_path / "app2.bundle", "--device", device, "--link", "swd")
    assert code == 1
    assert "the board refused the update: SignatureError" in out
    status = board_status(device)
    assert (status["state"], status["installed_version"]) == ("CONFIRMED", 1)

    code, out = _cli_flat("board", "update", "sim", tmp_path / "app2.suit",
                     tmp_path / "altered.bundle", "--device", device, "--link", "swd")
    assert code == 1
    assert "the board refused the update: DigestError" in out
    assert board_status(device)["installed_version"] == 1

    code, out = _cli_flat("board", "update", "sim", tmp_path / "app2.suit",
                     tmp_path / "app2.bundle", "--device", device, "--link", "swd")
    assert code == 0, out
    assert "staged version 2; board state TRIAL, installed version 2" in out


class _Ram:
    """A memory port over a bytearray, for the host side alone."""

    def __init__(self, size: int, start: int) -> None:
        self.mem = bytearray(size)
        self.start = start

    def read_memory(self, addr: int, n: int) -> bytes:
        return bytes(self.mem[addr - self.start : addr - self.start + n])

    def write_memory(self, addr: int, data: bytes) -> None:
        self.mem[addr - self.start : addr - self.start + len(data)] = data


def test_the_control_block_is_found_by_its_magic_word_aligned_only() -> None:
    ram = _Ram(0x3040, 0x2000_0000)
    ram.write_memory(0x2000_0101, swd.MAGIC)  # unaligned: not a control block
    with pytest.raises(swd.ControlBlockNotFoundError, match="no control block in RAM"):
        swd.find_control_block(ram, 0x2000_0000, 0x3000)
    ram.write_memory(0x2000_0200, swd.MAGIC)  # aligned, but no rings after it (a literal)
    with pytest.raises(swd.ControlBlockNotFoundError, match="no control block in RAM"):
        swd.find_control_block(ram, 0x2000_0000, 0x3000)
    ram.write_memory(0x2000_0ffc, swd.MAGIC)  # straddles a search window
    ram.write_memory(0x2000_0ffc + 16, struct.pack("<8I", 48, 4096, 0, 0, 4144, 256, 0, 0))
    assert swd.find_control_block(ram, 0x2000_0000, 0x3000) == 0x2000_0ffc


def test_a_missing_sim_ram_file_is_a_clear_error(tmp_path: Path) -> None:
    port = swd.FileMemoryPort(tmp_path / "swd.ram")
    with pytest.raises(swd.ControlBlockNotFoundError, match="is the board serving"):
        swd.swd_stage(port, b"env", b"payload", base=0)


def test_without_pyocd_the_probe_path_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_import = builtins.__import__

    def no_pyocd(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pyocd"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyocd)
    (tmp_path / "u.suit").write_bytes(b"x")
    (tmp_path / "u.bin").write_bytes(b"y")
    code, out = _cli_flat("board", "update", "rpi-pico", tmp_path / "u.suit", tmp_path / "u.bin",
                     "--probe", "E6614103E7")
    assert code == 1
    assert "pyocd is not installed (pip install 'suture[boards]')" in out


@pytest.mark.parametrize("probe", ["E6614103E7", None])
def test_an_absent_probe_is_a_clear_error(tmp_path: Path, probe: str | None) -> None:
    """The pinned pyocd looks for probes on this machine, which has none."""
    (tmp_path / "u.suit").write_bytes(b"x")
    (tmp_path / "u.bin").write_bytes(b"y")
    which = ("--probe", probe) if probe else ("--link", "swd")
    code, out = _cli_flat("board", "update", "rpi-pico", tmp_path / "u.suit", tmp_path / "u.bin",
                     *which)
    assert code == 3  # unreachable
    assert f"error: no debug probe{' ' + probe if probe else ''} found (is it plugged in?)" in out


def test_a_pack_target_that_is_not_installed_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "no-packs"))  # pyocd's pack cache
    (tmp_path / "u.suit").write_bytes(b"x")
    (tmp_path / "u.bin").write_bytes(b"y")
    code, out = _cli_flat("board", "update", "pyboard-stm32f405", tmp_path / "u.suit",
                     tmp_path / "u.bin", "--link", "swd")
    assert code == 1
    assert ("pyocd target stm32f405rgtx comes from the CMSIS pack Keil.STM32F4xx_DFP, which is "
            "not installed: pyocd pack install stm32f405rgtx") in out


def test_a_board_without_swd_says_so(tmp_path: Path) -> None:
    (tmp_path / "u.suit").write_bytes(b"x")
    (tmp_path / "u.bin").write_bytes(b"y")
    code, out = _cli_flat("board", "update", "esp32-s3", tmp_path / "u.suit", tmp_path / "u.bin",
                     "--link", "swd")
    assert code == 1
    assert "has no flashing.pyocd_target: it has no SWD path" in out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=560))
def test_any_ram_content_gives_a_block_or_the_not_found_error(junk: bytes, at: int) -> None:
    ram = _Ram(1024, 0)
    ram.write_memory(0, junk)
    ram.write_memory(at, swd.MAGIC)
    try:
        found = swd.find_control_block(ram, 0, 1024, step=256)
    except swd.ControlBlockNotFoundError:
        return
    assert found % 4 == 0
    assert ram.read_memory(found, len(swd.MAGIC)) == swd.MAGIC

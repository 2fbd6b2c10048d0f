"""``make firmware BOARD=...``: MicroPython for one board with the loader frozen in, signed as a
loader image.

Steps: the pinned MicroPython tree (:mod:`suture.firmware.source`); ``mpy-cross``; the board's
``board_config`` and freeze manifest (:mod:`suture.firmware.board_config`); the port's build
(the QEMU boards use this repository's board definition in ``firmware/qemu/``: linked for the
loader slot, littlefs on, the ``suture_qemu`` native module and the frozen boot entry,
``cryptolib`` over Debian's mbed TLS (:mod:`suture.firmware.mbedtls`)); the
firmware's binary signed with stage0's header (:func:`suture.image.sign_image`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from suture import keys
from suture.boards.schema import Board
from suture.firmware.board_config import LoaderTrust, write_firmware_dir
from suture.firmware.errors import FirmwareError
from suture.firmware.locking import exclusive
from suture.firmware.mbedtls import mbedtls_tree
from suture.firmware.source import (
    MICROPYTHON_VERSION,
    REPO_ROOT,
    micropython_tree,
    version_env,
)
from suture.image import HEADER_SIZE, sign_image
from suture.keys import PrivateKey

LOADER_MANIFEST = REPO_ROOT / "loader" / "manifest.py"
QEMU_BOARD_DIR = REPO_ROOT / "firmware" / "qemu" / "board"
QEMU_CMODULES = REPO_ROOT / "firmware" / "qemu" / "cmodule"
Log = Callable[[str], None]


@dataclass(frozen=True)
class FirmwareBuild:
    """What one build produced."""

    board: str
    elf: Path
    binary: Path
    loader_image: Path
    text_bytes: int
    data_bytes: int
    bss_bytes: int

    @property
    def flash_bytes(self) -> int:
        """What the loader slot holds of the firmware: text + data (the binary's size)."""
        return self.binary.stat().st_size

    @property
    def image_bytes(self) -> int:
        return self.loader_image.stat().st_size


def _run(argv: list[str], log: Log, what: str, env: dict[str, str] | None = None) -> None:
    log(f"{what}: {' '.join(argv[:4])} ...")
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise FirmwareError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def loader_address(board: Board) -> int:
    """The address the loader image's body (the firmware's vector table) runs at."""
    slots = [r for r in board.internal_flash.regions if r.kind == "loader"]
    if not slots:
        raise FirmwareError(f"board {board.name!r} has no loader region")
    return board.internal_flash.base + slots[0].offset + HEADER_SIZE


def _clean_when_flags_change(board: Board, build: Path, version: str) -> None:
    """make does not rebuild objects when only the board's flags change (mpconfigboard.mk, a
    forced include) or the MicroPython version does: a digest of the board definition's files
    and the version kept in the build folder says when to start from clean."""
    h = hashlib.sha256(board.name.encode() + b"\0" + version.encode())
    if board.micropython is not None and board.micropython.port == "qemu":
        for path in sorted(QEMU_BOARD_DIR.rglob("*")):
            if path.is_file():
                h.update(path.name.encode() + b"\0" + path.read_bytes())
    stamp = build / "suture-board.sha256"
    if stamp.is_file() and stamp.read_text() == h.hexdigest():
        return
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    stamp.write_text(h.hexdigest())


def _make_port(board: Board, tree: Path, build: Path, manifest: Path, log: Log,
               version: str, work: Path) -> Path:
    mp = board.micropython
    assert mp is not None
    jobs = f"-j{os.cpu_count() or 2}"
    _clean_when_flags_change(board, build, version)
    if mp.port == "qemu":
        argv = [
            "make", "-C", str(tree / "ports" / "qemu"), jobs,
            f"BOARD={mp.board}", f"BOARD_DIR={QEMU_BOARD_DIR}", f"BUILD={build}",
            f"FROZEN_MANIFEST={manifest}", f"USER_C_MODULES={QEMU_CMODULES}",
            f"SUTURE_CPU={board.core}", f"SUTURE_MACHINE={board.mcu}",
            f"SUTURE_LOAD_ADDRESS={loader_address(board):#x}",
            f"SUTURE_MBEDTLS_DIR={mbedtls_tree(work)}",
        ]
    else:
        argv = ["make", "-C", str(tree / "ports" / mp.port), jobs, f"BOARD={mp.board}",
                f"BUILD={build}", f"FROZEN_MANIFEST={manifest}"]
        if not (tree / "ports" / mp.port).is_dir():
            raise FirmwareError(f"{tree} has no ports/{mp.port}")
    _run(argv, log, f"MicroPython ports/{mp.port} for {board.name}",
         env={**os.environ, **version_env(tree, version)})
    elf = build / "firmware.elf"
    if not elf.is_file():
        raise FirmwareError(f"the {mp.port} build left no {elf}")
    return elf


def _sizes(elf: Path) -> tuple[int, int, int]:
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    text, data, bss = (int(x) for x in out[1].split()[:3])
    return text, data, bss


def build_firmware(
    board: Board,
    out: Path,
    *,
    vendor_keys: list[bytes],
    vendor_id: uuid.UUID,
    class_id: uuid.UUID,
    loader_key: PrivateKey,
    version: tuple[int, int, int] = (1, 0, 0),
    security_counter: int = 1,
    work: Path | None = None,
    micropython_version: str = MICROPYTHON_VERSION,
    log: Log = lambda _line: None,
) -> FirmwareBuild:
    """Build ``board``'s firmware from MicroPython ``micropython_version`` into ``out`` and
    sign it as a loader image."""
    out = out.resolve()
    if board.micropython is None:
        raise FirmwareError(f"board {board.name!r} runs no MicroPython port")
    work = (work or out.parent).resolve()
    _refuse_spaces(work, out, QEMU_BOARD_DIR)
    with exclusive(work):
        return _build_locked(board, out, work, LoaderTrust(vendor_keys=vendor_keys,
                                                           vendor_id=vendor_id,
                                                           class_id=class_id),
                             loader_key, version, security_counter, micropython_version, log)


def _refuse_spaces(*folders: Path) -> None:
    """MicroPython's makefiles split their paths at spaces: refused before anything is built."""
    for folder in folders:
        if any(c.isspace() for c in str(folder)):
            raise FirmwareError(
                f"MicroPython's build cannot work in a folder whose path holds a space: "
                f"{folder} (move the checkout, or the work and output folders, to a path "
                "without spaces)")


def _build_locked(board: Board, out: Path, work: Path, trust: LoaderTrust, loader_key: PrivateKey,
                  version: tuple[int, int, int], security_counter: int,
                  micropython_version: str, log: Log) -> FirmwareBuild:
    """:func:`build_firmware`'s steps, with the lock of the shared work folder held."""
    tree = micropython_tree(work, micropython_version)
    _run(["make", "-C", str(tree / "mpy-cross"), f"-j{os.cpu_count() or 2}"], log, "mpy-cross")
    config = out / "config"
    write_firmware_dir(board, trust, config, LOADER_MANIFEST)
    elf = _make_port(board, tree, out / "mp-build", config / "manifest.py", log,
                      micropython_version, work)
    binary = out / "firmware.bin"
    _run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)], log, "objcopy")
    image = sign_image(binary.read_bytes(), private_key=loader_key, version=version,
                       security_counter=security_counter, load_address=loader_address(board))
    loader_image = out / "loader.img"
    loader_image.write_bytes(image)
    text, data, bss = _sizes(elf)
    return FirmwareBuild(board.name, elf, binary, loader_image, text, data, bss)


def firmware_folder(root: Path, board: str, version: str = MICROPYTHON_VERSION) -> Path:
    """Where ``root`` (a build folder, e.g. ``build/firmware``) keeps a board's firmware:
    ``BOARD`` for the current MicroPython, ``BOARD-micropython-VERSION`` for another. Both sign
    with ``BOARD/keys``, so that the two images differ in MicroPython alone (a loader delta's
    pair)."""
    if version == MICROPYTHON_VERSION:
        return root / board
    return root / f"{board}-micropython-{version}"


def dev_keys(folder: Path) -> tuple[PrivateKey, PrivateKey]:
    """The development keys of a firmware build folder (vendor SUIT key, loader image key),
    made on first use. Production builds pass their own."""
    made = []
    with exclusive(folder):  # a second process would otherwise make a second pair
        for name in ("vendor", "loader"):
            path = folder / f"{name}.pem"
            if not path.exists():
                keys.write_key_pair(keys.generate_private_key("ES256"), path)
            made.append(keys.load_private_key(path))
    return made[0], made[1]

"""stage0's host build (stage0/port/host) booting a simulated board's flash, and loader images
of a firmware upgrade: the loader-image delta tests on the simulator (tests/delta)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from suture.firmware.locking import make_stage0
from suture.image import provision_record, sign_image
from suture.keys import PrivateKey
from suture.sim.board import BoardGeometry, small_geometry
from suture.sim.device import SimBoard

REPO = Path(__file__).resolve().parents[2]
# stage0's host build: the QEMU boards' map (stage0/port/layout_qemu.h), loader run address
# 0x20200. The simulator's external flash is laid out to match it where stage0 reads (journal
# at 0, staging at 0x10000: loader_geometry); its internal flash (provisioning record, counter,
# the loader slot) is the simulator's loader slot file, spliced in and out around each boot.
S0_INTERNAL = 0x100000
S0_EXTERNAL = 0x200000
S0_PROVISION = 0xF000
S0_LOADER = 0x20000
S0_SLOT = 0xE0000
S0_LOAD_ADDRESS = 0x20200
JOURNAL_SIZE = 0x2000


def loader_geometry(internal_size: int = 192 * 1024) -> BoardGeometry:
    """A simulated board whose staging slot is at 0x10000 (the journal and 14 NVM sectors
    before it), as in stage0's map, and holds a 96 KiB loader image with its patch."""
    return small_geometry(internal_size=internal_size, nvm_sectors=14, slot_size=160 * 1024)


def loader_bodies(size: int = 96 * 1024) -> tuple[bytes, bytes]:
    """Two loader bodies as a firmware upgrade changes one: the same code mostly, a few
    functions changed, a block inserted, the version string and the tables after it moved."""
    rng = random.Random(18)
    old = bytearray(rng.randbytes(size))
    old[1000:1024] = b"MicroPython v1.27.0\0\0\0\0\0"
    new = bytearray(old)
    new[1000:1024] = b"MicroPython v1.28.0\0\0\0\0\0"
    for k in (1, 3, 5, 7):
        at = size * k // 9
        new[at : at + 64] = rng.randbytes(64)
    at = size * 4 // 9
    new[at:at] = rng.randbytes(size // 64)
    return bytes(old), bytes(new)


def loader_images(key: PrivateKey, size: int = 96 * 1024) -> tuple[bytes, bytes]:
    """:func:`loader_bodies` signed with the loader key as images 1.27.0 and 1.28.0."""
    old, new = loader_bodies(size)
    l1 = sign_image(old, private_key=key, version=(1, 27, 0), security_counter=1,
                    load_address=S0_LOAD_ADDRESS)
    l2 = sign_image(new, private_key=key, version=(1, 28, 0), security_counter=1,
                    load_address=S0_LOAD_ADDRESS)
    return l1, l2


def build_stage0() -> Path:
    """stage0's build folder, after ``make`` (incremental)."""
    return make_stage0(REPO / "stage0")


class Stage0:
    """stage0's host build booting the simulator's flash: the loader slot file and the
    simulator's journal and staging slot in stage0's map; its own internal flash (provisioning
    record, counter) and the loader backup kept between boots."""

    def __init__(self, build: Path, board: SimBoard, loader_key: PrivateKey) -> None:
        self.host = build / "host" / "stage0-host"
        self.board = board
        self.internal = board.workdir / "stage0-internal.bin"
        self.external = board.workdir / "stage0-external.bin"
        internal = bytearray(b"\xff" * S0_INTERNAL)
        rec = provision_record(loader_key.public_key())
        internal[S0_PROVISION : S0_PROVISION + len(rec)] = rec
        self.internal.write_bytes(bytes(internal))
        self.external.write_bytes(b"\xff" * S0_EXTERNAL)
        self.boots = 0

    def boot(self) -> str:
        """One power-on of stage0 over the board's flash; returns its output."""
        internal = bytearray(self.internal.read_bytes())
        internal[S0_LOADER : S0_LOADER + S0_SLOT] = self.board.loader_image.read_bytes()
        self.internal.write_bytes(bytes(internal))
        sim_ext = self.board.external_image.read_bytes()
        external = bytearray(self.external.read_bytes())
        n = min(len(sim_ext), 0x100000)  # below stage0's loader backup
        external[:n] = sim_ext[:n]
        self.external.write_bytes(bytes(external))
        proc = subprocess.run([str(self.host), "boot", str(self.internal), str(self.external)],
                              capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        slot = self.internal.read_bytes()[S0_LOADER : S0_LOADER + S0_SLOT]
        self.board.loader_image.write_bytes(slot)
        ext = bytearray(self.board.external_image.read_bytes())
        ext[:JOURNAL_SIZE] = self.external.read_bytes()[:JOURNAL_SIZE]  # stage0 writes the journal
        self.board.external_image.write_bytes(bytes(ext))
        self.boots += 1
        return proc.stdout

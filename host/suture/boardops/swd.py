"""The local update over a debug probe (SWD): an RTT-style channel in the board's RAM.

The board's loader publishes a control block (``loader/loader/localink.py`` describes its layout)
holding a down ring and an up ring. The host finds the block by its magic through a
:class:`MemoryPort`, writes a frame (header, signed envelope, payload) into the down ring and reads
the loader's one-line answer from the up ring. The loader verifies the update with
``loader.api.stage`` exactly as on the network path, so nothing unsigned is staged.

Two memory ports: :class:`PyocdMemoryPort` (a probe, through pyocd's session as
:mod:`suture.boardops.probe` opens it) and :class:`FileMemoryPort` (the simulated board, whose
RAM block is a file).
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from pathlib import Path
from typing import Any, Protocol

from suture.boardops.deploy import UpdateResult
from suture.boardops.errors import BoardOpsError
from suture.boardops.probe import open_session
from suture.boardops.session import BoardSession
from suture.boards.schema import Board
from suture.devicectl import device_ops
from suture.devicectl.repl import LinkError, Progress

MAGIC = b"SUTURE-LINK-CB\x00\x01"
FRAME_MAGIC = b"SUTU"
HEADER_SIZE = 48
DEFAULT_RAM_START = 0x2000_0000
DEFAULT_RAM_SIZE = 0x4_0000
CHUNK = 1024


class SwdError(LinkError, BoardOpsError):
    """The SWD channel failed: no control block, a stalled board, a probe error."""


class ControlBlockNotFoundError(SwdError):
    """No control block with the magic in the searched RAM."""


class UpdateRefusedError(SwdError):
    """The board's loader refused the update; ``error`` is the loader's error name."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"the board refused the update: {error}: {message}")
        self.error = error


class MemoryPort(Protocol):
    """Target memory, byte-addressed."""

    def read_memory(self, addr: int, n: int) -> bytes: ...

    def write_memory(self, addr: int, data: bytes) -> None: ...


class FileMemoryPort:
    """The simulated board's RAM block: a file both the host and the board process use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR)
            except FileNotFoundError:
                raise ControlBlockNotFoundError(
                    f"no control block: {self.path} does not exist (is the board serving?)"
                ) from None
        return self._fd

    def read_memory(self, addr: int, n: int) -> bytes:
        return os.pread(self._open(), n, addr)

    def write_memory(self, addr: int, data: bytes) -> None:
        os.pwrite(self._open(), data, addr)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PyocdMemoryPort:
    """Target RAM through a debug probe (pyocd); the target keeps running."""

    def __init__(self, target: str, pack: str | None = None, probe_id: str | None = None) -> None:
        self._stack = contextlib.ExitStack()
        session, _log = self._stack.enter_context(
            open_session(target, pack, probe_id, resume_on_disconnect=True))
        self._target = session.board.target

    def read_memory(self, addr: int, n: int) -> bytes:
        return bytes(self._target.read_memory_block8(addr, n))

    def write_memory(self, addr: int, data: bytes) -> None:
        self._target.write_memory_block8(addr, list(data))

    def reset(self) -> None:
        """Reset the target (the loader installs a staged update at this boot)."""
        self._target.reset()

    def close(self) -> None:
        self._stack.close()


def _pow2(n: int) -> bool:
    return n > 0 and not n & (n - 1)


def _plausible(port: MemoryPort, addr: int) -> bool:
    """Whether the magic at ``addr`` heads a control block (and is not, say, the magic's bytes
    literal in the board's loaded code): rings right after the header, sizes powers of two."""
    down_off, down_size, _, _, up_off, up_size, _, _ = struct.unpack(
        "<8I", port.read_memory(addr + 16, 32)
    )
    return (down_off == HEADER_SIZE and _pow2(down_size) and up_off == down_off + down_size
            and _pow2(up_size))


def find_control_block(
    port: MemoryPort, start: int = DEFAULT_RAM_START, size: int = DEFAULT_RAM_SIZE,
    step: int = 4096,
) -> int:
    """The address of the control block: the magic, word-aligned, in ``[start, start+size)``."""
    overlap = len(MAGIC)
    addr = start
    while addr < start + size:
        n = min(step + overlap, start + size - addr)
        window = port.read_memory(addr, n)
        at = window.find(MAGIC)
        while at >= 0:
            if at % 4 == 0 and _plausible(port, addr + at):
                return addr + at
            at = window.find(MAGIC, at + 1)
        addr += step
    raise ControlBlockNotFoundError(
        f"no control block in RAM {start:#x}..{start + size:#x} (is the board serving the link?)"
    )


class Channel:
    """The host side of the two rings of the control block at ``base``."""

    def __init__(self, port: MemoryPort, base: int, idle_timeout_s: float = 30.0) -> None:
        self.port = port
        self.base = base
        self.idle_timeout_s = idle_timeout_s
        fields = struct.unpack("<8I", port.read_memory(base + 16, 32))
        self.down_off, self.down_size, self.down_wr, _, self.up_off, self.up_size, _, _ = fields
        self.up_rd = fields[7]
        if not _plausible(port, base):
            raise SwdError(f"the control block at {base:#x} has bad ring offsets or sizes")
        self.line = bytearray()

    def _u32(self, off: int) -> int:
        value: int = struct.unpack("<I", self.port.read_memory(self.base + off, 4))[0]
        return value

    def poll_line(self) -> bytes | None:
        """Drain the up ring; a complete line from the board, if there is one."""
        wr = self._u32(40)
        while self.up_rd != wr:
            idx = self.up_rd % self.up_size
            n = min((wr - self.up_rd) & 0xFFFFFFFF, self.up_size - idx)
            self.line += self.port.read_memory(self.base + self.up_off + idx, n)
            self.up_rd = (self.up_rd + n) & 0xFFFFFFFF
            self.port.write_memory(self.base + 44, struct.pack("<I", self.up_rd))
        if b"\n" in self.line:
            line, _, rest = bytes(self.line).partition(b"\n")
            self.line = bytearray(rest)
            return line
        return None

    def write(self, data: bytes, progress: Progress | None = None, base: int = 0,
              total: int = 0) -> None:
        """Put ``data`` into the down ring as the board frees room; stops on an early answer."""
        sent = 0
        last = time.monotonic()
        while sent < len(data):
            used = (self.down_wr - self._u32(28)) & 0xFFFFFFFF
            room = self.down_size - used
            if room == 0:
                line = self.poll_line()
                if line is not None:
                    _raise_for(line)
                    raise SwdError(f"the board answered before the frame ended: {line!r}")
                if time.monotonic() - last > self.idle_timeout_s:
                    raise SwdError(f"the board took nothing for {self.idle_timeout_s:.0f} s")
                time.sleep(0.001)
                continue
            idx = self.down_wr % self.down_size
            n = min(room, self.down_size - idx, len(data) - sent, CHUNK)
            self.port.write_memory(self.base + self.down_off + idx, data[sent : sent + n])
            self.down_wr = (self.down_wr + n) & 0xFFFFFFFF
            self.port.write_memory(self.base + 24, struct.pack("<I", self.down_wr))
            sent += n
            last = time.monotonic()
            if progress is not None:
                progress(base + sent, total)

    def read_line(self) -> bytes:
        deadline = time.monotonic() + self.idle_timeout_s * 4
        while time.monotonic() < deadline:
            line = self.poll_line()
            if line is not None:
                return line
            time.sleep(0.002)
        raise SwdError("the board gave no answer on the up ring")


def _raise_for(line: bytes) -> None:
    text = line.decode("utf-8", "replace")
    if text.startswith("ERR "):
        name, _, message = text[4:].partition(" ")
        raise UpdateRefusedError(name, message)


def swd_stage(
    port: MemoryPort,
    envelope: bytes,
    payload: bytes,
    *,
    install: bool = True,
    base: int | None = None,
    progress: Progress | None = None,
    idle_timeout_s: float = 30.0,
) -> int:
    """Send a signed update to the board's control block; the staged version.

    Raises :class:`UpdateRefusedError` with the loader's error name when the board refuses it.
    """
    addr = find_control_block(port) if base is None else base
    if port.read_memory(addr, len(MAGIC)) != MAGIC:
        raise ControlBlockNotFoundError(f"no control block at {addr:#x}")
    channel = Channel(port, addr, idle_timeout_s)
    head = FRAME_MAGIC + struct.pack("<IIB", len(envelope), len(payload), int(install))
    total = len(envelope) + len(payload)
    channel.write(head)
    channel.write(envelope, progress, 0, total)
    channel.write(payload, progress, len(envelope), total)
    line = channel.read_line()
    _raise_for(line)
    text = line.decode("utf-8", "replace")
    if not text.startswith("OK "):
        raise SwdError(f"the board gave an unexpected answer: {text!r}")
    return int(text[3:])


SIM_RAM_FILE = "swd.ram"

_SIM_SERVE = """
from loader import localink
localink.serve(localink.FileRam({path!r}))
"""


def start_sim_link(workdir: Path, start: Any, timeout_s: float = 10.0) -> FileMemoryPort:
    """Have a simulated board serve the control block in its RAM file; the host's port to it.

    ``start(code)`` runs MicroPython code on the board without waiting for it to finish (the
    simulator's stand-in for the application that serves the link on a real board).
    """
    path = workdir / SIM_RAM_FILE
    path.unlink(missing_ok=True)
    start(_SIM_SERVE.format(path=str(path.resolve())))
    port = FileMemoryPort(path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and port.read_memory(0, len(MAGIC)) == MAGIC:
            return port
        time.sleep(0.01)
    port.close()
    raise ControlBlockNotFoundError(f"the simulated board published no control block in {path}")


def sim_swd_update(
    session: BoardSession,
    envelope: bytes,
    payload: bytes,
    *,
    install: bool = True,
    progress: Progress | None = None,
) -> UpdateResult:
    """The SWD path on the simulated board: its RAM block is a file in its device folder.

    The board is reset afterwards (the power cycle that installs a staged update); the result
    holds the state it booted into and its status."""
    if session.sim is None:
        raise SwdError("the simulated SWD link needs a simulated board")
    port = start_sim_link(session.sim.workdir, session.repl.transport.exec_raw_no_follow)
    try:
        base = find_control_block(port, 0, port.path.stat().st_size)
        version = swd_stage(port, envelope, payload, install=install, base=base,
                            progress=progress)
    finally:
        port.close()
    state = session.reset()
    return UpdateResult(version, state, device_ops.status(session.repl))


def probe_update(
    board: Board,
    envelope: bytes,
    payload: bytes,
    *,
    probe_id: str | None = None,
    install: bool = True,
    progress: Progress | None = None,
) -> UpdateResult:
    """The SWD path on a real board: a pyocd probe, then a reset through it to install.

    The probe cannot read the state the board boots into: the result's ``boot_state`` is empty.
    """
    target = board.flashing.pyocd_target
    if target is None:
        raise SwdError(f"board {board.name} has no flashing.pyocd_target: it has no SWD path")
    port = PyocdMemoryPort(target, board.flashing.pyocd_pack, probe_id)
    try:
        version = swd_stage(port, envelope, payload, install=install, progress=progress)
        if install:
            port.reset()
    finally:
        port.close()
    return UpdateResult(version, "", {})

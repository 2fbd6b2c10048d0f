"""A MicroPython board over its serial REPL: exec, eval, files, resets.

:class:`MicroPythonLink` drives the raw REPL through mpremote's serial transport (used as a
library), on a real board's USB serial port (``/dev/ttyACM0``) or on the simulated board's
pseudo-terminal (:class:`suture.devicectl.simport.SimSerialBoard`): the same bytes either way.

Opening a link tells apart the three ways a board can be unusable, each with its own error and
a one-line message saying what to do: the port does not exist (:class:`BoardAbsentError`),
another program holds it (:class:`BoardBusyError`), or the board answering is of another kind
than the definition expects (:class:`WrongBoardError`).
"""

from __future__ import annotations

import ast
import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from suture.boards.schema import Board
from suture.devicectl.errors import DeviceCtlError
from suture.errors import UnreachableError

Progress = Callable[[int, int], None]

# Bytes per raw-REPL round trip when copying files: large enough to be quick, small enough
# for the smallest board's REPL buffer.
CHUNK = 1024
_READ_MARK = b"\x1eSUTURE-READ "
# The simulated board's boot script prints this once the application returned.
_APP_END = "SUTURE-APP-END"


class LinkError(DeviceCtlError):
    """The board cannot be reached or did not do what was asked."""


class BoardAbsentError(LinkError, UnreachableError):
    """No board at that port: the path does not exist or the device went away."""


class BoardBusyError(LinkError, UnreachableError):
    """The port exists but another program holds it."""


class WrongBoardError(LinkError):
    """The board answering on the port is not of the expected kind."""


class DeviceError(LinkError):
    """Code run on the board raised an exception; ``device_traceback`` is its traceback."""

    def __init__(self, message: str, device_traceback: str) -> None:
        super().__init__(message)
        self.device_traceback = device_traceback


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text.strip()


def open_transport(port: str, *, timeout: float = 0.5) -> SerialTransport:
    """mpremote's serial transport on ``port``, with absent and busy told apart."""
    if not port.startswith(("socket://", "rfc2217://", "loop://")) and not os.path.exists(port):
        raise BoardAbsentError(f"no board at {port}: the port does not exist (is it plugged in?)")
    try:
        transport = SerialTransport(port, baudrate=115200, timeout=timeout)
    except (TransportError, serial.SerialException) as exc:
        # mpremote reports every failure to open as "failed to access": ask pyserial why.
        reason = _why_unopenable(port) or str(exc)
    else:
        transport.use_raw_paste = not is_pty(port)
        return transport
    if _is_busy(reason):
        raise BoardBusyError(
            f"the board at {port} is busy: another program holds the port "
            "(close mpremote, screen or a running test and retry)"
        )
    raise BoardAbsentError(f"no board at {port}: {reason}")


#: How long a board on a pseudo-terminal may take to acknowledge a command (see
#: ``MicroPythonLink._patient``).
PTY_ACK_TIMEOUT_S = 5.0


def is_pty(port: str) -> bool:
    """A pseudo-terminal: a simulated or QEMU board. Raw-paste mode is not used there: its
    flow control waits for the board's window acknowledgements with the port's short read
    timeout, which a board slowed by a loaded host misses (the code is lost mid-paste), while
    a pty's own buffer paces the plain raw REPL's writes."""
    return port.startswith("/dev/pts/") or port.startswith("/dev/ptmx")


def _is_busy(reason: str) -> bool:
    return any(s in reason for s in ("exclusively lock", "Device or resource busy", "EBUSY"))


def _why_unopenable(port: str) -> str | None:
    try:
        probe = serial.Serial(port, exclusive=True, timeout=0)
    except serial.SerialException as exc:
        return str(exc)
    probe.close()
    return None


class MicroPythonLink:
    """The raw REPL of one MicroPython board.

    Use as a context manager: ``with MicroPythonLink.connect(port, board) as link: ...``.
    """

    def __init__(self, transport: SerialTransport, port: str, *, borrowed: bool = False) -> None:
        self.transport = transport
        self.port = port
        self.boot_log = ""
        # A port someone else opened (pytest-embedded's serial service) is not closed here.
        self.borrowed = borrowed

    @classmethod
    def connect(
        cls,
        port: str,
        board: Board | None = None,
        *,
        timeout_s: float = 10.0,
        transport: SerialTransport | None = None,
    ) -> MicroPythonLink:
        """Open ``port`` (or use ``transport``, a port opened elsewhere), interrupt whatever
        runs, enter the raw REPL and, when ``board`` is given, check that the board is of that
        kind."""
        link = (cls(transport, port, borrowed=True) if transport is not None
                else cls(open_transport(port), port))
        try:
            link._enter(timeout_s)
            if board is not None:
                link.check_kind(board)
        except BaseException:
            link.close()
            raise
        return link

    @classmethod
    def after_boot(
        cls,
        port: str,
        board: Board | None = None,
        *,
        marker: bytes = b"SUTURE-BOOT ",
        timeout_s: float = 30.0,
        log_timeout_s: float = 5.0,
        interrupt: Callable[[], None] | None = None,
        log_until: bytes | None = None,
        power_on: Callable[[], None] | None = None,
    ) -> tuple[MicroPythonLink, str]:
        """Open ``port`` on a board that is booting, wait for its boot line (``marker`` up to
        the end of the line), keep what the application prints until the REPL prompt (at most
        ``log_timeout_s``: an application that never returns is interrupted) in
        :attr:`boot_log`, then enter the raw REPL. Returns the link and the boot line.

        ``interrupt`` stops a running application where Ctrl-C on the link cannot (the
        simulated board's process takes SIGINT instead). With ``log_until`` the log ends as
        soon as it holds those bytes (the application is then interrupted). ``power_on``, when
        given, starts the board once the port is open: opening a port discards what it had
        received, so a board started first could lose its boot line."""
        transport = open_transport(port)
        link = cls(transport, port)
        try:
            if power_on is not None:
                power_on()
            link.read_until(marker, timeout_s)
            line = link.read_until(b"\n", timeout_s)
            boot_line = (marker + line).decode(errors="replace").strip()
            link.boot_log, returned = link._read_app_log(log_timeout_s, log_until)
            if not returned and interrupt is not None:
                interrupt()
            link._enter(timeout_s)
            if board is not None:
                link.check_kind(board)
        except BaseException:
            link.close()
            raise
        return link, boot_line

    def _read_app_log(self, timeout_s: float, until: bytes | None) -> tuple[str, bool]:
        end = time.monotonic() + timeout_s
        data = b""
        try:
            while not data.endswith(b">>> ") and time.monotonic() < end:
                data += self.transport.serial.read(1)
                if until is not None and data.endswith(until):
                    # Seen: give the application a moment to reach the prompt by itself.
                    end = min(end, time.monotonic() + 0.5)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"lost the board at {self.port}: {exc}") from None
        text = data.decode(errors="replace").replace("\r\n", "\n")
        lines = [ln for ln in text.split("\n")
                 if not ln.startswith(("MicroPython ", "Type \"help()\"", ">>> ", _APP_END))]
        returned = data.endswith(b">>> ") or _APP_END.encode() in data
        return "\n".join(lines).strip(), returned

    def _enter(self, timeout_s: float) -> None:
        try:
            self.transport.enter_raw_repl(soft_reset=False, timeout_overall=timeout_s)
        except (TransportError, serial.SerialException, OSError) as exc:
            raise BoardAbsentError(
                f"no MicroPython REPL answers on {self.port} ({exc}): is the board running "
                "MicroPython, and not held in its bootloader?"
            ) from None

    def machine(self) -> str:
        """``sys.implementation._machine``: the board's own name for itself."""
        value = self.eval("__import__('sys').implementation._machine")
        return str(value)

    def check_kind(self, board: Board) -> None:
        """Refuse a board of another kind than ``board`` describes."""
        expected = board.micropython.machine if board.micropython else None
        if expected is None:
            return
        found = self.machine()
        if expected not in found:
            raise WrongBoardError(
                f"the board at {self.port} is a {found!r}, not a {board.name} "
                f"(expected {expected!r} in its machine name)"
            )

    @contextlib.contextmanager
    def _patient(self) -> Iterator[None]:
        """mpremote reads a command's acknowledgement with the port's read timeout (0.5 s);
        a simulated or QEMU board on a loaded host can take longer to compile and answer, so
        on a pseudo-terminal that read waits up to ``PTY_ACK_TIMEOUT_S``."""
        port = self.transport.serial
        before = port.timeout
        if is_pty(self.port):
            port.timeout = max(before or 0.0, PTY_ACK_TIMEOUT_S)
        try:
            yield
        finally:
            port.timeout = before

    # -- running code ---------------------------------------------------------------------
    def exec(self, code: str, *, timeout_s: float = 10.0) -> str:
        """Run ``code``; returns what it printed. A device exception raises DeviceError."""
        try:
            with self._patient():
                out, err = self.transport.exec_raw(code, timeout=timeout_s)
        except (TransportError, serial.SerialException, OSError) as exc:
            raise LinkError(f"lost the REPL on {self.port}: {exc}") from None
        if err:
            text = err.decode(errors="replace")
            raise DeviceError(f"the board raised {_last_line(text)}", text)
        return bytes(out).decode(errors="replace")

    def eval(self, expression: str, *, timeout_s: float = 10.0) -> Any:
        """The value of ``expression`` on the board (a Python literal: repr round-trip)."""
        out = self.exec(f"print(repr({expression}))", timeout_s=timeout_s)
        try:
            return ast.literal_eval(out.strip())
        except (ValueError, SyntaxError):
            raise LinkError(f"{expression!r} gave {out.strip()!r}, not a literal") from None

    def exec_with_streams(
        self,
        code: str,
        streams: Sequence[bytes],
        *,
        progress: Progress | None = None,
        idle_timeout_s: float = 30.0,
    ) -> str:
        """Run ``code`` that reads host data (``_HostStream(i, size)`` over ``streams[i]``).

        The board asks for each piece with a ``SUTURE-READ <stream> <offset> <n>`` line and reads
        exactly ``n`` bytes from the link; ``progress(sent, total)`` follows the bytes sent.
        Returns what the code printed, without the requests.
        """
        t = self.transport
        total = sum(len(s) for s in streams)
        sent = 0
        try:
            with self._patient():
                t.exec_raw_no_follow(code)
            out = bytearray()
            last = time.monotonic()
            while True:
                byte = t.serial.read(1)
                if not byte:
                    if time.monotonic() - last > idle_timeout_s:
                        raise LinkError(
                            f"the board at {self.port} went silent for {idle_timeout_s:.0f} s"
                        )
                    continue
                last = time.monotonic()
                if byte == b"\x04":
                    break
                out += byte
                if byte != b"\n":
                    continue
                start = out.rfind(_READ_MARK)
                if start < 0:
                    continue
                sid, offset, n = (int(x) for x in out[start + len(_READ_MARK) : -1].split())
                if not 0 <= sid < len(streams) or offset + n > len(streams[sid]):
                    raise LinkError(f"the board asked for bytes the host does not have: "
                                    f"stream {sid}, {offset}+{n}")
                t.serial.write(streams[sid][offset : offset + n])
                sent += n
                if progress is not None:
                    progress(min(sent, total), total)
                del out[start:]
            err = t.read_until(1, b"\x04", timeout=idle_timeout_s)
        except (TransportError, serial.SerialException, OSError) as exc:
            raise LinkError(f"lost the REPL on {self.port}: {exc}") from None
        if not err.endswith(b"\x04"):
            raise LinkError(f"the board at {self.port} did not finish its reply")
        if err[:-1]:
            text = err[:-1].decode(errors="replace")
            raise DeviceError(f"the board raised {_last_line(text)}", text)
        return bytes(out).decode(errors="replace")

    # -- files ----------------------------------------------------------------------------
    def put(self, data: bytes, remote: str, progress: Progress | None = None) -> None:
        """Write ``data`` to the board's file ``remote`` (parent folders created)."""
        parent = remote.rsplit("/", 1)[0] if "/" in remote else ""
        if parent:
            self.makedirs(parent)
        try:
            with self._patient():
                self.transport.fs_writefile(remote, data, chunk_size=CHUNK,
                                            progress_callback=progress)
        except TransportExecError as exc:
            raise DeviceError(f"cannot write {remote}: {_last_line(exc.error_output)}",
                              exc.error_output) from None
        except OSError as exc:
            raise DeviceError(f"cannot write {remote}: {exc}", str(exc)) from None

    def get(self, remote: str, progress: Progress | None = None) -> bytes:
        """The content of the board's file ``remote``."""
        try:
            with self._patient():
                return bytes(self.transport.fs_readfile(remote, chunk_size=CHUNK,
                                                        progress_callback=progress))
        except TransportExecError as exc:
            raise DeviceError(f"cannot read {remote}: {_last_line(exc.error_output)}",
                              exc.error_output) from None
        except OSError as exc:
            raise DeviceError(f"cannot read {remote}: {exc}", str(exc)) from None

    def makedirs(self, path: str) -> None:
        """Create ``path`` and its parents on the board (no error when they exist)."""
        self.exec(
            "import os\n"
            f"_p=''\nfor _s in {path!r}.strip('/').split('/'):\n"
            f" _p=_p+('/' if {path!r}.startswith('/') or _p else '')+_s\n"
            " try:\n  os.mkdir(_p)\n except OSError:\n  pass\n"
        )

    def exists(self, remote: str) -> bool:
        """Whether ``remote`` exists on the board."""
        out = self.exec(
            f"import os\ntry:\n os.stat({remote!r})\n print(1)\nexcept OSError:\n print(0)\n"
        )
        return out.strip() == "1"

    def sha256(self, remote: str) -> bytes:
        """SHA-256 of the board's file ``remote``, computed on the board."""
        out = self.exec(
            "import hashlib, binascii\n"
            f"_h=hashlib.sha256()\n_f=open({remote!r},'rb')\n"
            "while True:\n _c=_f.read(512)\n if not _c:\n  break\n _h.update(_c)\n"
            "_f.close()\nprint(binascii.hexlify(_h.digest()).decode())\n"
        )
        return bytes.fromhex(out.strip())

    def remove(self, remote: str) -> None:
        """Remove the board's file ``remote`` if it exists."""
        self.exec(f"import os\ntry:\n os.remove({remote!r})\nexcept OSError:\n pass\n")

    # -- resets ---------------------------------------------------------------------------
    def soft_reset(self, *, timeout_s: float = 10.0) -> None:
        """Ctrl-D in the raw REPL: the board soft-resets and comes back to the raw REPL."""
        try:
            self.transport.serial.write(b"\x04")
            data = self.transport.read_until(
                1, b"raw REPL; CTRL-B to exit\r\n>", timeout_overall=timeout_s
            )
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"lost the REPL on {self.port} during soft reset: {exc}") from None
        if not data.endswith(b"raw REPL; CTRL-B to exit\r\n>"):
            raise LinkError(f"the board at {self.port} did not come back from a soft reset")

    def read_until(self, marker: bytes, timeout_s: float) -> bytes:
        """Read what the board prints until ``marker`` (or fail after ``timeout_s``)."""
        end = time.monotonic() + timeout_s
        data = b""
        try:
            while not data.endswith(marker):
                if time.monotonic() > end:
                    raise LinkError(
                        f"the board at {self.port} did not print {marker!r} within "
                        f"{timeout_s:.0f} s (last output: {data[-200:]!r})"
                    )
                chunk = self.transport.serial.read(1)
                data += chunk
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"lost the board at {self.port}: {exc}") from None
        return data

    def close(self) -> None:
        """Leave the raw REPL and release the port."""
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        except (serial.SerialException, OSError):
            pass
        if self.borrowed:
            return
        with contextlib.suppress(serial.SerialException, OSError):
            self.transport.close()

    def __enter__(self) -> MicroPythonLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_local(path: Path) -> bytes:
    """A local file's bytes, with a one-line error."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LinkError(f"cannot read {path}: {exc.strerror or exc}") from None

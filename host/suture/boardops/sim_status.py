"""The status of a simulated board read from its flash images, without booting it.

Booting a board acts on its journal: a trial boot counts, an unconfirmed trial is reverted once
its boots are spent. Asking for the status must change nothing, so the simulated board's folder
is copied and the loader answers from the copy (``loader.simcli``'s ``report`` and ``journal``,
which mount the filesystem and read; no boot, no application): the board's own files are never
opened for writing. The answer has the fields of the status protocol (``device_ops.status``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from suture.boardops.errors import BoardOpsError
from suture.boardops.session import _device_lock, read_sim_identity
from suture.boards.load import boards_dir
from suture.devicectl.repl import BoardAbsentError
from suture.sim import SimBoard, SimDevice, SimError
from suture.sim import load_board as load_sim_geometry

# What the loader reads of a simulated board: its configuration, both flash images, their
# erase counters and the bits a power cut left weak.
_FILES = ("board.json", "run.py", "internal.bin", "external.bin", "internal.bin.erases",
          "external.bin.erases", "internal.bin.weak", "external.bin.weak")


def _nvm_text(nvm: dict[str, list[Any]], key: str) -> str | None:
    entry = nvm.get(key)
    return bytes.fromhex(str(entry[1])).decode() if entry else None


def status_from_report(report: dict[str, Any], journal: list[list[Any]]) -> dict[str, Any]:
    """The status protocol's answer from the simulated loader's ``report`` and ``journal``."""
    nvm: dict[str, list[Any]] = report.get("nvm", {})
    return {
        "state": report["state"], "component": report["component"], "seq": report["seq"],
        "version": report["version"], "boot_count": report["boot_count"],
        "flags": report["flags"], "progress": report["progress"],
        "installed_version": report["installed_version"],
        "installed_digest": report["installed_digest"],
        "backup_version": report["backup_version"],
        "nvm_keys": sorted(nvm),
        "device_id": _nvm_text(nvm, "id.device"),
        "link": _nvm_text(nvm, "net.link"),
        "journal": [[r[0], r[2], r[7]] for r in journal],
    }


def read_sim_status(device_dir: Path) -> dict[str, Any]:
    """The status of the simulated board in ``device_dir``, its files left as they are.

    Raises :class:`BoardAbsentError` when there is no board there, :class:`BoardOpsError` when
    it was never provisioned (blank flash), and the board's busy error while another command
    runs it.
    """
    if not (device_dir / "board.json").exists():
        raise BoardAbsentError(
            f"no simulated board in {device_dir} (create one with "
            f"`suture board provision sim --device {device_dir} …`)")
    with _device_lock(device_dir), tempfile.TemporaryDirectory(prefix="suture-status-") as tmp:
        identity = read_sim_identity(device_dir)
        if set((device_dir / "internal.bin").read_bytes()) <= {0xFF}:
            raise BoardOpsError(f"the simulated board in {device_dir} is blank: provision it "
                                "first")
        copy = Path(tmp)
        for name in _FILES:
            if (device_dir / name).exists():
                shutil.copyfile(device_dir / name, copy / name)
        geometry = load_sim_geometry(boards_dir() / "sim" / "board.toml")
        result = SimDevice(SimBoard(copy, geometry, identity)).run(["report"], ["journal"])
    if not result.ok or result.error is not None:
        what = " ".join(result.error) if result.error else result.stdout.strip()[-500:]
        raise SimError(f"the simulated board in {device_dir} cannot be read: {what}")
    journal = result.result.get("journal", [])
    return status_from_report(result.report(), journal if isinstance(journal, list) else [])

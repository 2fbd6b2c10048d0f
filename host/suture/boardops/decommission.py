"""Decommissioning a board: erase every copy of its application, data and identity, check the
erase by what the board reads back, sign a record of it and mark the device at the scheduler.

The board (``devicectl/board_side/decommission.py``) deletes every file of the application
filesystem and overwrites its free space, erases the journal, NVM (the identity records with the
device key and credential), staging and backup regions, then reads every region back and reports
each one's SHA-256 and the number of its sectors that are not all 0xFF, and the files left. The
host accepts the erase only when every region of the board's definition is reported at its
offset and size with the SHA-256 of all-0xFF bytes and no dirty sector, no file is left and
nothing is installed.

The record is a COSE_Sign1 (tagged, payload attached) whose payload is a CBOR map
(:data:`RECORD_TYPE`), signed by the operator's key given to the command (ES256 or EdDSA; its
key id, the SHA-256 of its public key, is the ``kid``). The device does not sign it: the loader
verifies ES256 but has no signing code, and the device key is erased with the rest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from suture import keys
from suture.boardops.errors import BoardOpsError
from suture.boardops.provision import ConnectedBoard
from suture.boardops.scheduler_client import SchedulerClient
from suture.boards.schema import Board
from suture.cose.errors import CoseError
from suture.cose.sign1 import sign1, verify1
from suture.devicectl import device_ops
from suture.devicectl.repl import DeviceError

RECORD_TYPE = "suture-decommission/1"
REGIONS = ("journal", "nvm", "staging", "backup")


class DecommissionError(BoardOpsError):
    """Decommissioning was refused, or the board's read-back shows data left."""


@dataclass(frozen=True)
class ErasedRegion:
    name: str
    offset: int
    size: int
    sha256: bytes  # of the region as read back after the erase


@dataclass(frozen=True)
class EraseReport:
    """What the board erased, as checked by :func:`check_erase`."""

    regions: list[ErasedRegion]
    fs_files_removed: int
    fs_bytes_removed: int
    fs_bytes_scrubbed: int

    @property
    def bytes_erased(self) -> int:
        return sum(r.size for r in self.regions)


def _erased_digest(size: int) -> bytes:
    h = hashlib.sha256()
    block = b"\xff" * 4096
    while size:
        n = min(size, len(block))
        h.update(block[:n])
        size -= n
    return h.digest()


def check_erase(board: Board, answer: dict[str, Any]) -> EraseReport:
    """The board's decommission answer, checked against the board's flash map; raises
    :class:`DecommissionError` naming what is not erased."""
    expected = {r.role: r for r in board.external_flash.regions if r.role in REGIONS}
    regions: list[ErasedRegion] = []
    problems: list[str] = []
    seen = set()
    for name, offset, size, digest, dirty in answer.get("regions", []):
        seen.add(name)
        want = expected.get(name)
        if want is None:
            problems.append(f"unexpected region {name}")
            continue
        if (offset, size) != (want.offset, want.size):
            problems.append(f"{name} reported at {offset:#x}+{size:#x}, the board has "
                            f"{want.offset:#x}+{want.size:#x}")
        if dirty or bytes.fromhex(digest) != _erased_digest(size):
            problems.append(f"{name}: {dirty} sector(s) not erased (read-back SHA-256 "
                            f"{digest[:16]}…)")
        regions.append(ErasedRegion(name, offset, size, bytes.fromhex(digest)))
    problems += [f"{name} was not erased" for name in expected if name not in seen]
    left = answer.get("fs_files_left") or []
    if left:
        problems.append(f"{len(left)} file(s) left in the filesystem: "
                        f"{', '.join(str(p) for p, _ in left[:5])}")
    if answer.get("installed_version"):
        problems.append(f"version {answer.get('installed_version')} is still installed")
    if problems:
        raise DecommissionError("the board's read-back shows data left: " + "; ".join(problems))
    return EraseReport(regions=regions,
                       fs_files_removed=int(answer["fs_files_removed"]),
                       fs_bytes_removed=int(answer["fs_bytes_removed"]),
                       fs_bytes_scrubbed=int(answer["fs_bytes_scrubbed"]))


def record_payload(*, device_id: str | None, board: str, at: int, before: dict[str, Any] | None,
                   report: EraseReport, after: dict[str, Any]) -> dict[str, Any]:
    """The record's CBOR map: who, when, what was installed, what was erased and how it read
    back, and the board's status afterwards."""
    return {
        "type": RECORD_TYPE,
        "device_id": device_id,
        "board": board,
        "time": at,
        "before": {
            "installed_version": (before or {}).get("installed_version", 0),
            "backup_version": (before or {}).get("backup_version"),
            "state": (before or {}).get("state"),
            "nvm_keys": list((before or {}).get("nvm_keys") or []),
        },
        "erased": [{"region": r.name, "offset": r.offset, "size": r.size, "sha256": r.sha256}
                   for r in report.regions],
        "bytes_erased": report.bytes_erased,
        "digest": hashlib.sha256(b"".join(r.sha256 for r in report.regions)).digest(),
        "filesystem": {"files_removed": report.fs_files_removed,
                       "bytes_removed": report.fs_bytes_removed,
                       "bytes_scrubbed": report.fs_bytes_scrubbed},
        "after": {
            "state": after.get("state"),
            "installed_version": after.get("installed_version"),
            "device_id": after.get("device_id"),
            "nvm_keys": list(after.get("nvm_keys") or []),
            "journal": list(after.get("journal") or []),
        },
    }


def sign_record(payload: dict[str, Any], key: keys.PrivateKey) -> bytes:
    """The record as a COSE_Sign1 by ``key`` (its key id as ``kid``)."""
    return sign1(cbor2.dumps(payload), key, kid=keys.key_id(key.public_key()))


def open_record(record: bytes, key: keys.PublicKey) -> dict[str, Any]:
    """The payload of a record ``key`` signed; raises :class:`DecommissionError` otherwise."""
    try:
        payload = cbor2.loads(verify1(record, key))
    except (CoseError, ValueError) as exc:
        raise DecommissionError(f"the decommission record does not verify: {exc}") from None
    if not isinstance(payload, dict) or payload.get("type") != RECORD_TYPE:
        raise DecommissionError("not a decommission record")
    return payload


@dataclass(frozen=True)
class DecommissionResult:
    """What decommissioning erased, recorded and reported."""

    device_id: str | None
    report: EraseReport
    record: bytes | None  # the signed record; None without a signing key
    reported: bool


def decommission(
    session: ConnectedBoard,
    *,
    reboot: Callable[[], str],
    scheduler: SchedulerClient | None = None,
    signing_key: keys.PrivateKey | None = None,
    record_out: Path | None = None,
    now: int | None = None,
) -> DecommissionResult:
    """Erase the board of ``session`` and check the erase; with ``signing_key``, sign a record of
    it (written to ``record_out`` before the scheduler is told); with ``scheduler``, mark the
    device decommissioned there, with the record.

    ``reboot`` (``BoardSession.reset``, ``MicroPythonDut.hard_reset``) ends the boot the erase
    ran in, whose loader still holds what it read before; the status in the record is the one
    the board boots into afterwards.

    The scheduler is asked for the device first, so an unreachable scheduler or an unknown
    device stops the command before anything is erased."""
    try:
        before = device_ops.status(session.repl) if session.boot_state != "BLANK" else None
    except DeviceError:
        before = None
    device_id = str(before["device_id"]) if before and before.get("device_id") else None
    if scheduler is not None:
        if device_id is None:
            raise DecommissionError("the board has no device identity to report to the "
                                    "scheduler")
        if scheduler.device(device_id).get("decommissioned_at") is not None:
            scheduler = None  # marked already (suture scheduler device decommission): erase only
    answer = device_ops.decommission(session.repl)
    report = check_erase(session.board, answer)
    reboot()
    after = device_ops.status(session.repl)
    record = None
    if signing_key is not None:
        payload = record_payload(device_id=device_id, board=session.board.name,
                                 at=int(time.time()) if now is None else now, before=before,
                                 report=report, after=after)
        record = sign_record(payload, signing_key)
        if record_out is not None:
            record_out.write_bytes(record)
    reported = False
    if scheduler is not None and device_id is not None:
        scheduler.decommission(device_id, reason="board erased and verified", record=record)
        reported = True
    return DecommissionResult(device_id=device_id, report=report, record=record,
                              reported=reported)

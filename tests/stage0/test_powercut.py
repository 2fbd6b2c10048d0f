"""Power-cut sweeps on the host build: every flash operation of the loader update, the trial
that never confirms (restore), and the confirmed update with the counter raise and the backup
refresh after it, cut cleanly and mid-operation (torn program, half-finished erase); each cut is
followed by boots until stable. The C driver (``stage0-host sweep``) runs the loop; see
port/host/host.c for what it checks."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from suture.image import HEADER_SIZE, verify_image
from suture.keys import PrivateKey

from . import flashimg as fi

pytestmark = pytest.mark.powercut
HOST_LOAD = 0x00020200


def _boot(host: Path, internal: Path, external: Path) -> str:
    proc = subprocess.run([str(host), "boot", str(internal), str(external)], capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.stdout


def _write(tmp: Path, internal: bytes, external: bytes) -> tuple[Path, Path]:
    i, e = tmp / "internal.bin", tmp / "external.bin"
    i.write_bytes(internal)
    e.write_bytes(external)
    return i, e


def _sweep(host: Path, i: Path, e: Path, expect: bytes, state: str, *,
           backup: bytes | None = None, counter: int | None = None,
           confirm: bool = False) -> int:
    """Sweep every cut point; the end state must be ``expect`` in the loader slot and ``state``
    in the journal, and (when given) ``backup`` verified in the backup slot and the counter at
    ``counter``. ``confirm``: the loader confirms its trial, and the cuts cover every boot of
    the path (stage0-host sweep -c)."""
    args = [str(host), "sweep", str(i), str(e), fi.header_digest(expect).hex(),
            str(fi.STATE[state])]
    if confirm:
        args.append("-c")
    if backup is not None:
        args += ["-b", fi.header_digest(backup).hex()]
    if counter is not None:
        args += ["-k", str(counter)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    m = re.search(r"cut points: (\d+)\ndouble cuts: (\d+)", proc.stdout)
    assert m, proc.stdout
    assert int(m.group(2)) == int(m.group(1))  # every first cut also got a second one
    return int(m.group(1)) + int(m.group(2))


@pytest.fixture
def update(signing_key: PrivateKey, tmp_path: Path) -> tuple[Path, Path, bytes, bytes]:
    # 12 KiB and 14 KiB bodies: several sectors each, so every copy has a "rest" and a first.
    old = fi.make_image(signing_key, os.urandom(12 * 1024 + 100), counter=1,
                        load_address=HOST_LOAD)
    new = fi.make_image(signing_key, os.urandom(14 * 1024 + 7), counter=2,
                        load_address=HOST_LOAD)
    i, e = _write(tmp_path, fi.provisioned_internal(signing_key, old), fi.staged_external(new))
    return i, e, old, new


def test_clean_update_installs_then_reverts_without_confirm(
        stage0_build: Path, update: tuple[Path, Path, bytes, bytes],
        signing_key: PrivateKey) -> None:
    host = stage0_build / "host" / "stage0-host"
    i, e, old, new = update
    out = _boot(host, i, e)
    assert "installing the staged loader" in out
    assert fi.slot_image(i.read_bytes(), fi.LOADER_OFF) == new
    assert fi.slot_image(e.read_bytes(), fi.BACKUP_OFF) == old
    verify_image(fi.slot_image(i.read_bytes(), fi.LOADER_OFF), signing_key.public_key())
    states = [r.state_name for r in fi.read_journal(e.read_bytes())]
    assert states == ["STAGED", "BACKUP", "INSTALLING", "TRIAL"]
    for _ in range(3):
        _boot(host, i, e)
    last = fi.read_journal(e.read_bytes())[-1]
    assert last.state_name == "REVERTED"
    assert fi.slot_image(i.read_bytes(), fi.LOADER_OFF) == old
    assert fi.read_counter(i.read_bytes()) == 1  # never raised to the unconfirmed 2


def test_sweep_update_and_restore(stage0_build: Path, update: tuple[Path, Path, bytes, bytes],
                                  figures: Callable[[str, object], None]) -> None:
    host = stage0_build / "host" / "stage0-host"
    i, e, old, _new = update
    points = _sweep(host, i, e, old, "REVERTED", backup=old, counter=1)
    figures("cut points, loader update (then trial never confirms)", points)
    assert points > 100


def test_sweep_restore_path(stage0_build: Path, update: tuple[Path, Path, bytes, bytes],
                            figures: Callable[[str, object], None]) -> None:
    host = stage0_build / "host" / "stage0-host"
    i, e, old, _new = update
    for _ in range(3):  # install (trial boot 1), trial boots 2 and 3
        _boot(host, i, e)
    assert fi.read_journal(e.read_bytes())[-1].boot_count == 3
    points = _sweep(host, i, e, old, "REVERTED")
    figures("cut points, restore of the backup", points)
    assert points > 20


def _confirm(e: Path) -> None:
    """What the loader writes once its health check passes (loader/core.py confirm_loader)."""
    ext = bytearray(e.read_bytes())
    last = fi.read_journal(bytes(ext))[-1]
    assert (last.component, last.state_name) == (fi.COMPONENT_LOADER, "TRIAL")
    fi.append_record(ext, fi.journal_record(
        last.seq + 1, fi.COMPONENT_LOADER, "CONFIRMED", boot_count=last.boot_count,
        size=last.size, version=last.version, digest=last.digest))
    e.write_bytes(bytes(ext))


def _confirmed_and_refreshed(host: Path, i: Path, e: Path, old: bytes, new: bytes) -> str:
    """Install, confirm, and the boot that raises the counter and refreshes the backup."""
    _boot(host, i, e)
    assert fi.slot_image(e.read_bytes(), fi.BACKUP_OFF) == old
    _confirm(e)
    out = _boot(host, i, e)
    assert fi.read_counter(i.read_bytes()) == 2
    assert fi.slot_image(e.read_bytes(), fi.BACKUP_OFF) == new
    assert fi.read_journal(e.read_bytes())[-1].state_name == "CONFIRMED"
    return out


def test_sweep_confirmed_raises_counter_and_refreshes_backup(
        stage0_build: Path, update: tuple[Path, Path, bytes, bytes],
        figures: Callable[[str, object], None]) -> None:
    """From the CONFIRMED record: the counter raise, then the copy of the confirmed loader into
    the backup slot (which still holds the loader it replaced)."""
    host = stage0_build / "host" / "stage0-host"
    i, e, _old, new = update
    _boot(host, i, e)
    _confirm(e)
    points = _sweep(host, i, e, new, "CONFIRMED", backup=new, counter=2)
    figures("cut points, counter raise and backup refresh after confirm", points)
    assert points > 100
    out = _boot(host, i, e)
    assert "refreshing the backup with the confirmed loader" in out
    assert fi.read_counter(i.read_bytes()) == 2
    assert fi.slot_image(e.read_bytes(), fi.BACKUP_OFF) == new


def test_sweep_update_confirm_and_refresh(
        stage0_build: Path, update: tuple[Path, Path, bytes, bytes],
        figures: Callable[[str, object], None]) -> None:
    """The whole path, cut at every flash operation of every boot: the install (BACKUP,
    INSTALLING, TRIAL), the loader's CONFIRMED append, the counter raise and the backup
    refresh. It ends on the new loader, confirmed, with the counter raised and the backup slot
    holding the new loader."""
    host = stage0_build / "host" / "stage0-host"
    i, e, _old, new = update
    points = _sweep(host, i, e, new, "CONFIRMED", backup=new, counter=2, confirm=True)
    figures("cut points, loader update, confirm, counter raise and backup refresh", points)
    assert points > 300


def test_refresh_happens_once(stage0_build: Path, update: tuple[Path, Path, bytes, bytes]) -> None:
    host = stage0_build / "host" / "stage0-host"
    i, e, old, new = update
    out = _confirmed_and_refreshed(host, i, e, old, new)
    assert "refreshing the backup with the confirmed loader" in out
    before = (i.read_bytes(), e.read_bytes())
    for _ in range(2):
        out = _boot(host, i, e)
        assert "refreshing" not in out
        assert out.rstrip().endswith("counter 2 ops 0")  # not one erase or program
        assert (i.read_bytes(), e.read_bytes()) == before


def test_damaged_loader_after_confirm_restores_the_confirmed_loader(
        stage0_build: Path, update: tuple[Path, Path, bytes, bytes]) -> None:
    """The reason for the refresh: with the counter raised to the new loader's, the old loader
    would no longer verify; the backup now holds the new one, and that is what comes back."""
    host = stage0_build / "host" / "stage0-host"
    i, e, old, new = update
    _confirmed_and_refreshed(host, i, e, old, new)
    internal = bytearray(i.read_bytes())
    internal[fi.LOADER_OFF + HEADER_SIZE + 5000] ^= 0x40  # one bit of the body
    i.write_bytes(bytes(internal))
    out = _boot(host, i, e)
    assert "loader slot: refused: image digest mismatch" in out
    assert "restoring the backup loader" in out
    assert "jump 0x00020200 counter 2" in out
    assert fi.slot_image(i.read_bytes(), fi.LOADER_OFF) == new
    assert fi.read_counter(i.read_bytes()) == 2
    assert [r.state_name for r in fi.read_journal(e.read_bytes())][-2:] == [
        "REVERTING", "REVERTED"]
    out = _boot(host, i, e)  # and then it stays put
    assert out.rstrip().endswith("counter 2 ops 0")


def test_refresh_after_other_components_records(
        stage0_build: Path, update: tuple[Path, Path, bytes, bytes]) -> None:
    """The confirm need not be the journal's current record: the application may stage an
    update of its own before the next reset. The refresh follows the latest loader record."""
    host = stage0_build / "host" / "stage0-host"
    i, e, _old, new = update
    _boot(host, i, e)
    _confirm(e)
    ext = bytearray(e.read_bytes())
    seq = fi.read_journal(bytes(ext))[-1].seq
    fi.append_record(ext, fi.journal_record(seq + 1, 0, "DOWNLOADING", size=4096, version=7))
    e.write_bytes(bytes(ext))
    out = _boot(host, i, e)
    assert "refreshing the backup with the confirmed loader" in out
    assert fi.slot_image(e.read_bytes(), fi.BACKUP_OFF) == new
    assert fi.read_counter(i.read_bytes()) == 2
    assert fi.read_journal(e.read_bytes())[-1].state_name == "DOWNLOADING"  # left to the loader


def test_no_refresh_without_a_confirmed_loader_update(
        stage0_build: Path, update: tuple[Path, Path, bytes, bytes]) -> None:
    """A trial, a revert, or no loader record at all leave the backup slot alone."""
    host = stage0_build / "host" / "stage0-host"
    i, e, old, _new = update
    for _ in range(4):  # the trial (three boots), then the restore
        out = _boot(host, i, e)
        assert "refreshing" not in out
        assert fi.slot_image(e.read_bytes(), fi.BACKUP_OFF) == old
    assert fi.read_journal(e.read_bytes())[-1].state_name == "REVERTED"
    fresh = fi.staged_external(None)  # a device with no journal and an empty backup slot
    e.write_bytes(bytes(fresh))
    out = _boot(host, i, e)
    assert "refreshing" not in out
    assert e.read_bytes() == bytes(fresh)


def test_sweep_with_full_journal_and_counter_sectors(
        stage0_build: Path, signing_key: PrivateKey, tmp_path: Path,
        figures: Callable[[str, object], None]) -> None:
    """The same update when the journal's active sector is nearly full, so the install's appends
    switch sectors (erase the other one, write its slot 0), and the counter raise takes the
    counter sector's last free slot: those operations are cut too."""
    old = fi.make_image(signing_key, os.urandom(9000), counter=1, load_address=HOST_LOAD)
    new = fi.make_image(signing_key, os.urandom(9000), counter=2, load_address=HOST_LOAD)
    internal = fi.provisioned_internal(signing_key, old)
    for n in range(255):  # 255 of the 256 counter slots of sector A
        fi.put(internal, fi.COUNTER_OFF + 16 * n, fi.counter_record(0))
    external = fi.blank(fi.EXTERNAL_SIZE)
    for seq in range(1, 62):  # earlier updates of the application bundle, all closed
        fi.put(external, fi.JOURNAL_OFF + 64 * (seq - 1),
               fi.journal_record(seq, 0, "CONFIRMED"))
    fi.put(external, fi.STAGING_OFF, new)
    fi.put(external, fi.JOURNAL_OFF + 64 * 61, fi.journal_record(
        62, fi.COMPONENT_LOADER, "STAGED", flags=fi.FLAG_INSTALL_REQUESTED, size=len(new),
        version=2, digest=hashlib.sha256(new).digest()))
    i, e = _write(tmp_path, internal, external)
    points = _sweep(stage0_build / "host" / "stage0-host", i, e, old, "REVERTED")
    figures("cut points, update across journal and counter sector switches", points)
    # the install switched the journal to sector B: its records are there now
    _boot(stage0_build / "host" / "stage0-host", i, e)
    ext = e.read_bytes()
    assert fi.read_journal(ext)[-1].seq > 64
    assert ext[fi.JOURNAL_OFF + 4096 : fi.JOURNAL_OFF + 4096 + 4] != b"\xff" * 4
    assert points > 100


def test_sweep_counter_raise_across_sector_switch(
        stage0_build: Path, signing_key: PrivateKey, tmp_path: Path,
        figures: Callable[[str, object], None]) -> None:
    new = fi.make_image(signing_key, os.urandom(5000), counter=9, load_address=HOST_LOAD)
    internal = fi.provisioned_internal(signing_key, new)
    for n in range(256):  # sector A full: the raise erases sector B and writes its slot 0
        fi.put(internal, fi.COUNTER_OFF + 16 * n, fi.counter_record(n % 8))
    external = fi.blank(fi.EXTERNAL_SIZE)
    fi.put(external, fi.JOURNAL_OFF, fi.journal_record(1, fi.COMPONENT_LOADER, "CONFIRMED"))
    fi.put(external, fi.BACKUP_OFF, new)  # already refreshed: only the counter is written
    i, e = _write(tmp_path, internal, external)
    points = _sweep(stage0_build / "host" / "stage0-host", i, e, new, "CONFIRMED", backup=new,
                    counter=9)
    figures("cut points, counter raise across a sector switch", points)
    assert points == 8  # erase + program, cut cleanly and half-done; each with a second cut
    _boot(stage0_build / "host" / "stage0-host", i, e)
    assert fi.read_counter(i.read_bytes()) == 9


def test_sweep_first_install_without_a_loader(
        stage0_build: Path, signing_key: PrivateKey, tmp_path: Path,
        figures: Callable[[str, object], None]) -> None:
    """A device whose loader slot holds nothing valid installs the staged loader (no backup to
    keep); unconfirmed, it stays on it: there is nothing else to start."""
    new = fi.make_image(signing_key, os.urandom(12000), counter=1, load_address=HOST_LOAD)
    i, e = _write(tmp_path, fi.provisioned_internal(signing_key, None), fi.staged_external(new))
    points = _sweep(stage0_build / "host" / "stage0-host", i, e, new, "TRIAL")
    figures("cut points, first install into an empty loader slot", points)
    assert points > 50


def test_sweep_revert_requested(
        stage0_build: Path, update: tuple[Path, Path, bytes, bytes],
        figures: Callable[[str, object], None]) -> None:
    """The new loader asks for a revert (REVERT_REQUESTED on its TRIAL record)."""
    host = stage0_build / "host" / "stage0-host"
    i, e, old, _new = update
    _boot(host, i, e)
    ext = bytearray(e.read_bytes())
    last = fi.read_journal(bytes(ext))[-1]
    fi.append_record(ext, fi.journal_record(
        last.seq + 1, fi.COMPONENT_LOADER, "TRIAL", flags=0x01, boot_count=1, size=last.size,
        version=2, digest=last.digest))
    e.write_bytes(bytes(ext))
    before = i.read_bytes()
    out = _boot(host, i, e)
    assert "restoring the backup loader" in out
    assert fi.slot_image(i.read_bytes(), fi.LOADER_OFF) == old
    i.write_bytes(before)  # back to the request, and sweep the restore it triggers
    e.write_bytes(bytes(ext))
    points = _sweep(host, i, e, old, "REVERTED")
    figures("cut points, revert requested by the loader", points)
    assert points > 20

"""stage0 booted in qemu-system-arm (mps2-an385 M3, mps2-an386 M4, mps2-an505 M33) with its
flash preloaded: what it starts, what it refuses (and says so on the UART), a staged loader
update, a trial that never confirms, and a few power cuts replayed on the real build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from suture.keys import PrivateKey

from . import flashimg as fi
from . import qemu

pytestmark = pytest.mark.qemu
TARGETS = ("an385", "an386", "an505")


def _body(build: Path, target: str, pad: int = 0) -> bytes:
    return (build / target / "test-loader.bin").read_bytes() + os.urandom(pad)


def _image(key: PrivateKey, build: Path, target: str, counter: int, pad: int = 0) -> bytes:
    return fi.make_image(key, _body(build, target, pad), counter=counter,
                         load_address=qemu.MACHINES[target].load_address,
                         version=(1, counter, 0))


def _running(counter: int) -> str:
    return f"loader: running version 1.{counter}.0 security counter {counter}"


@pytest.mark.parametrize("target", TARGETS)
def test_good_image_boots(stage0_build: Path, signing_key: PrivateKey, target: str,
                          tmp_path: Path) -> None:
    old = _image(signing_key, stage0_build, target, counter=3)
    run = qemu.boot(stage0_build, target, fi.provisioned_internal(signing_key, old),
                    fi.staged_external(None), tmp_path)
    assert _running(3) in run.uart
    assert "RECOVERY" not in run.uart
    assert fi.read_counter(run.internal) == 3  # a loader outside a trial raises the counter


def _refused(build: Path, target: str, internal: bytes, work: Path) -> str:
    run = qemu.boot(build, target, internal, fi.staged_external(None), work)
    assert "loader: running" not in run.uart
    assert "stage0: RECOVERY: no valid loader; waiting for a local update" in run.uart
    assert run.internal == bytes(internal)  # a refusal changes nothing
    return run.uart


@pytest.mark.parametrize("target", ["an385", "an505"])
def test_bad_signature_refused(stage0_build: Path, signing_key: PrivateKey, target: str,
                               tmp_path: Path) -> None:
    image = bytearray(_image(signing_key, stage0_build, target, counter=1))
    image[448 + 5] ^= 0x01
    uart = _refused(stage0_build, target, fi.provisioned_internal(signing_key, bytes(image)),
                    tmp_path)
    assert "loader slot: refused: signature does not verify with the provisioned key" in uart


def test_bad_digest_refused(stage0_build: Path, signing_key: PrivateKey, tmp_path: Path) -> None:
    image = bytearray(_image(signing_key, stage0_build, "an385", counter=1))
    image[fi.HEADER_SIZE + 40] ^= 0x80
    uart = _refused(stage0_build, "an385", fi.provisioned_internal(signing_key, bytes(image)),
                    tmp_path)
    assert "loader slot: refused: image digest mismatch" in uart


def test_wrong_key_refused(stage0_build: Path, signing_key: PrivateKey, other_key: PrivateKey,
                           tmp_path: Path) -> None:
    image = _image(other_key, stage0_build, "an385", counter=1)
    uart = _refused(stage0_build, "an385", fi.provisioned_internal(signing_key, image), tmp_path)
    assert "loader slot: refused: signature does not verify with the provisioned key" in uart


def test_truncated_image_refused(stage0_build: Path, signing_key: PrivateKey,
                                 tmp_path: Path) -> None:
    image = _image(signing_key, stage0_build, "an385", counter=1, pad=3000)
    uart = _refused(stage0_build, "an385",
                    fi.provisioned_internal(signing_key, image[: len(image) - 1000]), tmp_path)
    assert "loader slot: refused: image digest mismatch (corrupt or truncated image)" in uart


def test_lower_security_counter_refused(stage0_build: Path, signing_key: PrivateKey,
                                        tmp_path: Path) -> None:
    internal = fi.provisioned_internal(signing_key,
                                       _image(signing_key, stage0_build, "an385", counter=4))
    fi.put(internal, fi.COUNTER_OFF, fi.counter_record(5))
    uart = _refused(stage0_build, "an385", internal, tmp_path)
    assert "loader slot: refused: security counter below the device's counter" in uart


def test_unprovisioned_device_refuses(stage0_build: Path, signing_key: PrivateKey,
                                      tmp_path: Path) -> None:
    internal = fi.provisioned_internal(signing_key,
                                       _image(signing_key, stage0_build, "an385", counter=1))
    fi.put(internal, fi.PROVISION_OFF, b"\xff" * 80)
    uart = _refused(stage0_build, "an385", internal, tmp_path)
    assert "loader slot: refused: no provisioned key" in uart


@pytest.mark.parametrize("target", TARGETS)
def test_staged_update_installs(stage0_build: Path, signing_key: PrivateKey, target: str,
                                tmp_path: Path) -> None:
    old = _image(signing_key, stage0_build, target, counter=1)
    new = _image(signing_key, stage0_build, target, counter=2, pad=9000)
    run = qemu.boot(stage0_build, target, fi.provisioned_internal(signing_key, old),
                    fi.staged_external(new), tmp_path)
    assert "stage0: installing the staged loader" in run.uart
    assert _running(2) in run.uart
    assert fi.slot_image(run.internal, fi.LOADER_OFF) == new
    assert fi.slot_image(run.external, fi.BACKUP_OFF) == old
    last = fi.read_journal(run.external)[-1]
    assert (last.state_name, last.boot_count) == ("TRIAL", 1)
    assert fi.read_counter(run.internal) == 0  # not raised before the new loader confirms


def test_staged_update_with_rollback_counter_fails(stage0_build: Path, signing_key: PrivateKey,
                                                   tmp_path: Path) -> None:
    old = _image(signing_key, stage0_build, "an385", counter=3)
    new = _image(signing_key, stage0_build, "an385", counter=2)
    internal = fi.provisioned_internal(signing_key, old)
    fi.put(internal, fi.COUNTER_OFF, fi.counter_record(3))
    run = qemu.boot(stage0_build, "an385", internal, fi.staged_external(new), tmp_path)
    assert "staging slot: refused: security counter below the device's counter" in run.uart
    assert _running(3) in run.uart
    last = fi.read_journal(run.external)[-1]
    assert (last.state_name, last.progress) == ("FAILED", 6)
    assert fi.slot_image(run.internal, fi.LOADER_OFF) == old


def test_trial_that_never_confirms_is_restored(stage0_build: Path, signing_key: PrivateKey,
                                               tmp_path: Path) -> None:
    old = _image(signing_key, stage0_build, "an385", counter=1)
    new = _image(signing_key, stage0_build, "an385", counter=2, pad=5000)
    internal, external = fi.provisioned_internal(signing_key, old), fi.staged_external(new)
    running = []
    for _ in range(4):
        run = qemu.boot(stage0_build, "an385", internal, external, tmp_path)
        internal, external = bytearray(run.internal), bytearray(run.external)
        running.append(1 if _running(1) in run.uart else 2 if _running(2) in run.uart else 0)
    assert running == [2, 2, 2, 1]
    assert "stage0: restoring the backup loader" in run.uart
    assert fi.read_journal(run.external)[-1].state_name == "REVERTED"
    assert fi.slot_image(run.internal, fi.LOADER_OFF) == old


def test_confirmed_update_raises_counter(stage0_build: Path, signing_key: PrivateKey,
                                         tmp_path: Path) -> None:
    old = _image(signing_key, stage0_build, "an505", counter=1)
    new = _image(signing_key, stage0_build, "an505", counter=2)
    run = qemu.boot(stage0_build, "an505", fi.provisioned_internal(signing_key, old),
                    fi.staged_external(new), tmp_path)
    external = bytearray(run.external)
    last = fi.read_journal(run.external)[-1]
    fi.append_record(external, fi.journal_record(
        last.seq + 1, fi.COMPONENT_LOADER, "CONFIRMED", size=last.size, version=2,
        digest=last.digest))  # what the loader writes once its health check passes
    run = qemu.boot(stage0_build, "an505", run.internal, bytes(external), tmp_path)
    assert _running(2) in run.uart
    assert fi.read_counter(run.internal) == 2


@pytest.mark.parametrize(("target", "cut_at", "partial"), [
    ("an385", 2, False), ("an385", 7, True), ("an385", 12, False), ("an385", 30, True),
    ("an505", 9, True), ("an386", 21, False),
])
def test_power_cut_replayed(stage0_build: Path, signing_key: PrivateKey, tmp_path: Path,
                            target: str, cut_at: int, partial: bool) -> None:
    """Cut power at one flash operation of the update; the next boots end on a verified loader
    and the trial, never confirmed, is restored."""
    old = _image(signing_key, stage0_build, target, counter=1, pad=9000)
    new = _image(signing_key, stage0_build, target, counter=2, pad=9000)
    run = qemu.boot(stage0_build, target, fi.provisioned_internal(signing_key, old),
                    fi.staged_external(new), tmp_path, cut=(cut_at, partial))
    assert "stage0: POWER CUT (injected)" in run.uart
    assert "loader: running" not in run.uart
    for _ in range(5):
        run = qemu.boot(stage0_build, target, run.internal, run.external, tmp_path)
        assert _running(1) in run.uart or _running(2) in run.uart, run.uart
        if fi.read_journal(run.external)[-1].state_name == "REVERTED":
            break
    assert fi.read_journal(run.external)[-1].state_name == "REVERTED"
    assert fi.slot_image(run.internal, fi.LOADER_OFF) == old
    seqs = [r.seq for r in fi.read_journal(run.external)]
    assert seqs == sorted(set(seqs))

"""Loader-image deltas on the simulated board (docs/formats/delta.md, "Loader images"): the patch
from the loader image in the board's loader slot to a new one is applied into the staging slot
exactly as a full loader image is staged (STAGED, INSTALL_REQUESTED, component 1), and stage0's
host build (stage0/port/host) installs it from the simulator's flash; the new loader boots on
trial and confirms. A patch from another loader image is refused before anything is written; a
corrupt patch is caught; a power cut at any flash operation of the apply leaves a journal that
stage0 and the loader both accept, and staging the same delta again completes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from delta_helpers import delta_for, sign_delta
from stage0_host import S0_LOAD_ADDRESS, S0_SLOT, Stage0, loader_geometry
from stage0_host import loader_bodies as _bodies
from stage0_host import loader_images as _images
from suture.image import sign_image, verify_image
from suture.keys import PrivateKey, generate_private_key
from suture.sim.board import BoardGeometry
from suture.sim.device import PowerCut, SimBoard, SimDevice
from suture.sim.journal import Component, State
from suture.sim.sweep import sweep
from suture.sim.testing import Provisioned, example_app

APP = example_app(1, filler=2000)
SEQ = 5  # the loader release's sequence number (the factory loader is 0)
# the sim board's heap: the unix port holds the loader's compiled modules in its heap, where
# the firmware has them frozen in flash (test_delta_memory.py measures the applier's own heap)
HEAP = 256 * 1024


@pytest.fixture
def geometry() -> BoardGeometry:
    # staging at 0x10000 (journal and 14 NVM sectors before it), as in stage0's map
    return loader_geometry()


@pytest.fixture(scope="module")
def loader_key() -> PrivateKey:
    return generate_private_key("ES256")


def _device(make_device: Callable[..., Provisioned], image: bytes) -> Provisioned:
    p = make_device(app=APP, heapsize=HEAP)
    p.board.install_loader_image(image, S0_SLOT)
    return p


def _stage(p: Provisioned, source: bytes, target: bytes, patch: bytes | None = None,
           name: str = "l") -> list[str]:
    d = delta_for(source, target)
    env = p.board.put_file(f"{name}.suit", sign_delta(d, SEQ, p.key, component="loader"))
    return ["stage", env, p.board.put_file(f"{name}.delta", d.patch if patch is None else patch)]


def test_loader_delta_staged_installed_and_confirmed(
    make_device: Callable[..., Provisioned], loader_key: PrivateKey, stage0_build: Path,
    figures: Callable[[str, object], None],
) -> None:
    l1, l2 = _images(loader_key)
    p = _device(make_device, l1)
    d = delta_for(l1, l2)
    figures("loader delta: patch / image", f"{len(d.patch)} / {len(l2)} B")
    assert len(d.patch) < len(l2) // 10
    r = p.device.run(_stage(p, l1, l2))
    assert r.ok, r.stdout + r.stderr
    rec = p.board.current_record()
    assert rec is not None
    assert (rec.component, rec.state, rec.version) == (Component.LOADER, State.STAGED, SEQ)
    assert (rec.size, rec.digest) == (len(l2), hashlib.sha256(l2).digest())
    assert rec.flags & 0x02  # INSTALL_REQUESTED: stage0 installs it at the next boot
    staged = p.board.region_bytes("staging")[: len(l2)]
    assert staged == l2  # exactly the bytes a full loader release stages
    assert p.board.erase_counters("loader") == [0] * (S0_SLOT // 4096)  # the source only read
    # stage0 installs it (backup, copy, trial) and starts it
    s0 = Stage0(stage0_build, p.board, loader_key)
    out = s0.boot()
    assert "jump" in out, out
    assert p.board.loader_image.read_bytes()[: len(l2)] == l2
    verify_image(l2, loader_key.public_key())
    rec = p.board.current_record()
    assert rec is not None
    assert (rec.component, rec.state) == (Component.LOADER, State.TRIAL)
    # the new loader boots on trial, checks its health and confirms itself (as power_on)
    r = p.device.run(["boot"], ["app"], ["report"])
    assert r.ok, r.stdout + r.stderr
    assert f"suture: loader confirmed (release {SEQ})" in r.stdout
    assert "APP 1" in r.stdout
    rep = r.report()
    assert (rep["component"], rep["state"]) == (int(Component.LOADER), "CONFIRMED")
    nvm = rep["nvm"]
    assert isinstance(nvm, dict)
    assert nvm["loader.seq"] == [1, SEQ.to_bytes(4, "little").hex()]
    # the next boot: stage0 keeps the new loader, and it is the next delta's source
    assert "jump" in s0.boot()
    assert p.board.loader_image.read_bytes()[: len(l2)] == l2


def test_wrong_loader_source_is_refused_before_any_write(
    make_device: Callable[..., Provisioned], loader_key: PrivateKey,
) -> None:
    l1, l2 = _images(loader_key)
    other = sign_image(_bodies()[0][:-1] + b"\x00", private_key=loader_key, version=(1, 27, 1),
                       security_counter=1, load_address=S0_LOAD_ADDRESS)
    p = _device(make_device, l1)
    cmd = _stage(p, other, l2)
    before = p.board.snapshot()
    r = p.device.run(cmd)
    assert not r.ok
    assert r.error is not None, r.stdout
    assert r.error[0] == "ConditionFailed", r.stdout
    assert r.ops_count == 0  # not one erase or program
    assert p.board.snapshot() == before


def test_board_without_a_readable_loader_slot_refuses_a_loader_delta(
    make_device: Callable[..., Provisioned], loader_key: PrivateKey,
) -> None:
    l1, l2 = _images(loader_key)
    p = make_device(app=APP, heapsize=HEAP)  # no loader slot file: its HAL has no "loader" region
    before = p.board.snapshot()
    r = p.device.run(_stage(p, l1, l2))
    assert r.error is not None, r.stdout
    assert r.error[0] == "ConditionFailed", r.stdout
    assert r.ops_count == 0
    assert p.board.snapshot() == before


def test_corrupt_loader_patch_is_caught(
    make_device: Callable[..., Provisioned], loader_key: PrivateKey,
) -> None:
    l1, l2 = _images(loader_key)
    p = _device(make_device, l1)
    d = delta_for(l1, l2)
    bad = bytearray(d.patch)
    bad[len(bad) // 2] ^= 0x40  # inside a segment's zlib stream
    r = p.device.run(_stage(p, l1, l2, bytes(bad)))
    assert not r.ok
    rec = p.board.current_record()
    assert rec is not None
    assert (rec.component, rec.state) == (Component.LOADER, State.FAILED)
    assert rec.progress in (31, 35)  # DigestError or DeltaError
    assert p.board.loader_image.read_bytes()[: len(l1)] == l1
    # the same release's full payload stages over it
    r = p.device.run(_stage(p, l1, l2, name="again"))
    assert r.ok, r.stdout
    assert p.board.current_record().state == State.STAGED  # type: ignore[union-attr]


def test_delta_of_a_bundle_that_is_no_loader_image_is_refused(
    make_device: Callable[..., Provisioned], loader_key: PrivateKey,
) -> None:
    """The target verifies against its digest but is no loader image: refused as a full
    payload would be (LoaderImageError, 26), nothing for stage0 to act on."""
    l1, _ = _images(loader_key)
    p = _device(make_device, l1)
    not_an_image = bytearray(l1)
    not_an_image[0] ^= 0xFF
    r = p.device.run(_stage(p, l1, bytes(not_an_image)))
    assert r.error is not None, r.stdout
    assert r.error[0] == "LoaderImageError", r.stdout
    rec = p.board.current_record()
    assert rec is not None
    assert (rec.component, rec.state, rec.progress) == (Component.LOADER, State.FAILED, 26)


@pytest.mark.powercut
def test_powercut_loader_delta_apply(
    make_device: Callable[..., Provisioned], loader_key: PrivateKey,
    figures: Callable[[str, object], None],
) -> None:
    l1, l2 = _images(loader_key, 24 * 1024)
    p = _device(make_device, l1)
    stage = _stage(p, l1, l2)
    digest = hashlib.sha256(l2).digest()

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        r = dev.run(["boot"], ["app"], ["report"])
        assert r.ok, f"{cut}: boot failed\n{r.stdout}\n{r.stderr}"
        assert "APP 1" in r.stdout, cut
        rep = r.report()
        assert board.loader_image.read_bytes()[: len(l1)] == l1, cut
        outcome = f"{rep['state']} c{rep['component']}"
        if rep["state"] != "STAGED":
            assert rep["state"] in ("DOWNLOADING", "CONFIRMED", "FAILED"), cut
            r = dev.run(stage)
            assert r.ok, f"{cut}: staging the delta again failed\n{r.stdout}\n{r.stderr}"
        rec = board.current_record()
        assert rec is not None
        assert (rec.component, rec.state, rec.digest) == (Component.LOADER, State.STAGED,
                                                          digest), cut
        assert board.region_bytes("staging")[: len(l2)] == l2, cut
        return outcome

    # every kind of cut at every operation of a delta apply is swept for the application
    # (test_delta_powercut.py), through the same applier: here clean and torn cuts, a sample
    # in CI (every operation with SUTURE_FULL_SWEEP=1), and double cuts
    rep = sweep(p.device, [stage], check, torn_bytes=32, double=(3, 4), recovery=[stage],
                seed=18, sample=4)
    figures("loader delta stage cut points (clean + torn)", rep.cut_points + rep.torn_points)
    figures("loader delta stage outcomes", dict(rep.outcomes))
    assert rep.total_ops > 50
    assert rep.double_cuts >= 8

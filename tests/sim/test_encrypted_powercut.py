"""An encrypted release staged in pieces (loader/loader/encrypted.py through api.begin_staging,
as the agent does) under power cuts: cut at every flash operation (clean and torn), then stage
again from the offset the loader gives. The slot ends STAGED with exactly the plaintext, and a
staging that resumed from a checkpoint rebuilt the ciphertext's SHA-256 and the GCM tag's
GHASH from the staged plaintext (a resumed staging whose tag did not verify would end FAILED)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from suture import keys
from suture.cose.mac0 import SymmetricKey
from suture.formats import identity
from suture.sim.board import small_geometry
from suture.sim.device import PowerCut, SimBoard, SimDevice
from suture.sim.journal import State
from suture.sim.sweep import full_sweeps, sampled_operations, sweep
from suture.sim.testing import chunked_staging, encrypt_payload, example_app, provision

KEK = bytes(range(100, 132))
GEOMETRY = small_geometry(internal_size=128 * 1024, slot_size=64 * 1024)


def _device(tmp_path: Path, loader_lib: Path, alg: str, kek: bytes
            ) -> tuple[SimDevice, bytes, list[list[str]]]:
    key = keys.generate_private_key("ES256")
    # the simulated flash keeps its weak-byte map (torn and partial operations, drawn from the
    # run's seed) in the MicroPython heap, which the firmware's flash does not: 64 KiB more
    dev = provision(tmp_path / "dev", GEOMETRY, key, lib=loader_lib, heapsize=256 * 1024)
    record = identity.encryption_keys([(identity.ENC_KIND_KEK, b"ward-3", kek)])
    r = dev.device.run(["nvm-put", identity.ENC_KEYS, record.hex(), "1"])
    assert r.ok, r.stdout + r.stderr
    payload = example_app(2, filler=34_000)  # just past the 32 KiB checkpoint
    envelope, ciphertext = encrypt_payload(payload, 2, key, [SymmetricKey(kek, b"ward-3")],
                                           alg=alg)
    return dev.device, payload, chunked_staging(dev.board, envelope, ciphertext)


def _staged(board: SimBoard, device: SimDevice, action: list[list[str]], payload: bytes,
            cut: object) -> int:
    """Stage again after the cut; the slot holds the plaintext, STAGED. Returns the offset
    the staging resumed from."""
    r = device.run(*action)
    assert r.ok, f"{cut}: {r.stdout}{r.stderr}"
    assert r.result["encrypted"] is True
    cur = board.current_record()
    assert cur is not None
    assert cur.state == State.STAGED, cut
    assert cur.size == len(payload)
    assert board.region_bytes("staging")[: len(payload)] == payload, cut
    offset = r.result["offset"]
    assert isinstance(offset, int)
    assert offset % GEOMETRY.external.sector == 0
    return offset


@pytest.mark.powercut
@pytest.mark.slow
def test_gcm_staging_survives_every_cut(tmp_path: Path, loader_lib: Path,
                                        figures: Callable[[str, object], None]) -> None:
    """AES-GCM: a resumed staging rebuilds GHASH from the staged plaintext."""
    device, payload, action = _device(tmp_path, loader_lib, "A256GCM", KEK)

    def check(board: SimBoard, device: SimDevice, cut: PowerCut) -> str:
        return "resumed" if _staged(board, device, action, payload, cut) else "from the start"

    report = sweep(device, action, check, torn_bytes=17, sample=3)
    # every operation with --full-sweep (make bench); in CI every third, clean and torn in turn
    # (the plain staging's sweep cuts each of these flash operations one by one)
    expected = report.total_ops if full_sweeps() else len(range(0, report.total_ops, 3))
    assert report.cut_points >= expected
    assert report.outcomes["resumed"] > 0
    assert report.outcomes["from the start"] > 0
    figures("encrypted staging (A256GCM): flash operations cut",
            report.cut_points + report.torn_points)
    figures("encrypted staging (A256GCM): outcomes", dict(report.outcomes))


@pytest.mark.powercut
def test_ctr_staging_resumes_at_its_checkpoint(tmp_path: Path, loader_lib: Path) -> None:
    """AES-CTR: cuts before, at and after the journal's checkpoint, clean and torn; a staging
    cut after the checkpoint goes on from there (the counter computed from the offset)."""
    device, payload, action = _device(tmp_path, loader_lib, "A128CTR", KEK[:16])
    board = device.board
    start = board.snapshot()
    total = device.run(*action).ops_count
    seen = set()
    for after in (3, total // 2, total * 9 // 10, total - 2):
        for torn in (None, 17):
            board.restore(start)
            cut = PowerCut(after, torn_bytes=torn)
            assert device.run(*action, power_cut=cut).power_cut_happened, cut
            seen.add(_staged(board, device, action, payload, cut) > 0)
    assert seen == {False, True}


def test_asampled_operations_sweep_cuts_every_kth_operation_and_both_ends() -> None:
    clean, torn = sampled_operations(10, 3)
    assert clean == [0, 3, 6, 9]
    assert torn == [0, 1, 4, 7, 9]
    assert sampled_operations(10, None) == (list(range(10)), list(range(10)))
    assert sampled_operations(5, 1) == (list(range(5)), list(range(5)))

"""Power cuts at every flash operation of a delta staging (the backup of the source, the patch
at the slot's tail, each segment applied, the journal's checkpoints): clean, torn (head and
tail), partial erases and weak bytes, each operation in turn (suture.sim.sweep; every kind at
every operation with --full-sweep), and double cuts (the staging again cut too). After any
cut the device boots the old application or the new one, both signed, with a resting journal;
staging the same delta again then completes, and the update installs. A cut after a segment
was journaled resumes there: the segments before it are not applied again."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from delta_helpers import delta_for, sign_delta
from suture.sim.device import PowerCut, SimBoard, SimDevice
from suture.sim.sweep import full_sweeps, sweep
from suture.sim.testing import Provisioned, example_app

pytestmark = [pytest.mark.powercut, pytest.mark.slow]

TORN = 32
DOUBLE = (4, 6)  # CI sample of double cuts: first cuts x cuts of each recovery boot
V1 = example_app(1, filler=6000)
V2 = example_app(2, filler=6000)
RESTING = {"TRIAL", "CONFIRMED", "FAILED", "STAGED", "DOWNLOADING"}
DIGESTS = {1: hashlib.sha256(V1).hexdigest(), 2: hashlib.sha256(V2).hexdigest()}


def _boot(dev: SimDevice, cut: PowerCut) -> dict[str, object]:
    r = dev.run(["boot"], ["app"], ["report"])
    assert r.ok, f"{cut}: recovery failed\n{r.stdout}\n{r.stderr}"
    rep = r.report()
    version = rep["installed_version"]
    assert version in DIGESTS, f"{cut}: unexpected version {version}"
    assert isinstance(version, int)
    assert rep["app_digest"] == DIGESTS[version], f"{cut}: files differ from a signed bundle"
    assert rep["installed_digest"] == DIGESTS[version], f"{cut}: installed record not signed"
    assert f"APP {version}\n" in r.stdout, f"{cut}: the application did not run"
    assert rep["state"] in RESTING, f"{cut}: left in {rep['state']}"
    return rep


def _stage(p: Provisioned, segment_size: int = 4096) -> list[str]:
    d = delta_for(V1, V2, segment_size=segment_size)
    env = p.board.put_file("v2.suit", sign_delta(d, 2, p.key))
    return ["stage", env, p.board.put_file("v2.delta", d.patch)]


def test_powercut_delta_stage(
    make_device: Callable[..., Provisioned], figures: Callable[[str, object], None]
) -> None:
    p = make_device(app=V1)
    stage = _stage(p)

    def check(board: SimBoard, dev: SimDevice, cut: PowerCut) -> str:
        rep = _boot(dev, cut)
        outcome = f"{rep['state']} v{rep['installed_version']}"
        if rep["installed_version"] != 2:
            r = dev.run(stage)
            assert r.ok, f"{cut}: staging the delta again failed\n{r.stdout}\n{r.stderr}"
            done = _boot(dev, cut)
            assert (done["state"], done["installed_version"]) == ("TRIAL", 2), cut
        return outcome

    # double cuts: the staging again after a first cut (the boot before it writes nothing) is
    # cut in turn
    rep = sweep(p.device, [stage], check, torn_bytes=TORN, hard=True, double=DOUBLE,
                recovery=[stage], seed=18)
    figures("delta stage cut points (clean + torn)", rep.cut_points + rep.torn_points)
    figures("delta stage hard cuts", rep.hard_points)
    figures("delta stage outcomes", dict(rep.outcomes))
    figures("delta stage double cuts", f"{rep.double_cuts} after {rep.double_firsts} first cuts")
    assert rep.cut_points == rep.total_ops > 50
    assert rep.hard_points == rep.total_ops * (4 if full_sweeps() else 1)
    assert rep.double_cuts >= 12


def test_a_cut_after_a_segment_resumes_there(make_device: Callable[..., Provisioned]) -> None:
    p = make_device(app=V1)
    stage = _stage(p)
    full = p.board.snapshot()
    uncut = p.device.run(stage)
    assert uncut.ok, uncut.stdout
    records = p.board.read_journal()
    checkpoints = [r for r in records if r.state.name == "DOWNLOADING" and r.progress]
    assert checkpoints, "the staging journaled no segment"
    p.board.restore(full)
    # the first cut point after the first checkpoint record (binary search: from there on,
    # every cut leaves a checkpoint or STAGED)
    lo, hi = 1, uncut.ops_count
    while lo < hi:
        mid = (lo + hi) // 2
        p.board.restore(full)
        assert p.device.run(stage, power_cut=PowerCut(mid)).power_cut_happened
        cur = p.board.current_record()
        if cur is not None and (cur.state.name == "STAGED" or cur.progress):
            hi = mid
        else:
            lo = mid + 1
    p.board.restore(full)
    assert p.device.run(stage, power_cut=PowerCut(lo)).power_cut_happened
    cur = p.board.current_record()
    assert cur is not None
    assert cur.state.name == "DOWNLOADING"
    assert 0 < cur.progress < len(V2)
    progress, seq = cur.progress, cur.seq
    again = p.device.run(stage)
    assert again.ok, again.stdout
    assert again.ops_count < uncut.ops_count  # the source's backup and the first segment stay
    after = [r for r in p.board.read_journal() if r.seq > seq]
    assert all(r.state.name != "DOWNLOADING" or r.progress > progress for r in after), after
    r = p.device.run(["boot"], ["app"], ["report"])
    assert (r.report()["state"], r.report()["installed_version"]) == ("TRIAL", 2)

"""A power cut while a loader release is staged leaves a loader DOWNLOADING record, which
stage0 never acts on: the next staging (of an application or a loader release) replaces it,
as it does an application's. Found by the fault campaign (seed 795 of SUTURE_CAMPAIGN_SEED=777):
every later update was refused with "an update is in flight (DOWNLOADING)"."""

from __future__ import annotations

from collections.abc import Callable

from suture.sim.device import PowerCut
from suture.sim.journal import Component, State
from suture.sim.testing import Provisioned, example_app, sign_payload


def test_update_after_an_interrupted_loader_staging(
    make_device: Callable[..., Provisioned],
) -> None:
    p = make_device()
    payload = example_app(7, filler=9000)
    env = p.board.put_file("l.suit", sign_payload(payload, 7, p.key, component="loader"))
    pay = p.board.put_file("l.bin", payload)
    r = p.device.run(["stage", env, pay], power_cut=PowerCut(after_ops=3))
    assert r.power_cut_happened
    rec = p.board.current_record()
    assert rec is not None
    assert (rec.component, rec.state) == (Component.LOADER, State.DOWNLOADING)
    assert p.device.run(["boot"]).ok
    v2 = example_app(2)
    env2 = p.board.put_file("v2.suit", sign_payload(v2, 2, p.key))
    r = p.device.run(["stage", env2, p.board.put_file("v2.bundle", v2)])
    assert r.ok, r.stdout
    r = p.device.run(["boot"], ["app"], ["report"])
    assert (r.report()["state"], r.report()["installed_version"]) == ("TRIAL", 2)
    assert "APP 2" in r.stdout

"""A loader-image delta end to end on the simulated board, through the real agent and the real
scheduler (docs/formats/delta.md, "Loader images"): two devices run loader release 4 (image
1.27.0) and report it; release 5 (image 1.28.0) is imported with the vendor's delta from
release 4 and rolled out. The device whose loader slot holds release 4's image is served the
delta: its agent downloads the patch (not the image), the loader applies it from the loader
slot into the staging slot, stage0's host build installs it at the reset, the new loader
confirms itself and the device reports loader release 5. The other device reports release 4
too, but its slot holds another image: the delta is refused before anything is written, the
failure is recorded and the scheduler serves it the full image, which installs the same way."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

from delta_helpers import delta_for, sign_delta
from sqlalchemy import select
from stage0_host import (
    S0_LOAD_ADDRESS,
    S0_SLOT,
    Stage0,
    loader_bodies,
    loader_geometry,
    loader_images,
)
from suture import keys
from suture.image import sign_image
from suture.keys import PrivateKey
from suture.scheduler.models import DeltaFailure, Device, Release, RolloutDevice
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import deltas, devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.journal import Component, State
from suture.sim.testing import CLASS_ID, VENDOR_ID, sign_payload
from suture.suit.sbom_build import build_sbom
from suture.ward.clock import ScaledClock
from suture.ward.fleet import Faults, SimulatedDevice, take_line
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler

HEAP = 320 * 1024
SOURCE_SEQ, TARGET_SEQ = 4, 5


class CountingDevice(SimulatedDevice):
    """A simulated device that also counts the payload bytes its agent downloads (its
    ``download`` and ``progress`` events: where each download starts and how far it got)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.downloads: list[list[int]] = []  # [payload size, start offset, bytes so far]

    def _line(self, line: str) -> bool:
        import json

        if line.startswith("SUTURE-AGENT "):
            try:
                ev = json.loads(line[len("SUTURE-AGENT "):])
            except json.JSONDecodeError:
                ev = {}
            if ev.get("ev") == "download":
                self.downloads.append([int(ev["size"]), int(ev["offset"]), int(ev["offset"])])
            elif ev.get("ev") == "progress" and self.downloads:
                self.downloads[-1][2] = int(ev["done"])
        return take_line(self.view, self.target, line)

    def downloaded(self) -> int:
        return sum(done - start for _, start, done in self.downloads)


def _loader_release(image: bytes, seq: int, vendor: PrivateKey) -> tuple[bytes, bytes]:
    sbom = build_sbom("suture-loader", f"1.{seq}.0", {"loader.img": image})
    return sign_payload(image, seq, vendor, component="loader", sbom=sbom), sbom


def test_a_loader_delta_through_the_agent_and_the_scheduler(
    tmp_path: Path, loader_lib: Path, stage0_build: Path,
    figures: Callable[[str, object], None],
) -> None:
    vendor = keys.generate_private_key("ES256")
    loader_key = keys.generate_private_key("ES256")
    l1, l2 = loader_images(loader_key)
    # another build of 1.27.0: what a device whose report is wrong has in its loader slot
    other = sign_image(loader_bodies()[0][:-1] + b"\x00", private_key=loader_key,
                       version=(1, 27, 1), security_counter=1, load_address=S0_LOAD_ADDRESS)
    d = delta_for(l1, l2)
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1))
    app = build_release(1, vendor)
    sched.start()
    fleet: list[CountingDevice] = []
    try:
        team = sched.team
        anchors = [vendor.public_key()]
        for seq, image in ((SOURCE_SEQ, l1), (TARGET_SEQ, l2)):
            env, sbom = _loader_release(image, seq, vendor)
            rel = releases.import_release(sched.sessions(), envelope=env, payload=image,
                                          sbom=sbom, notes=f"loader {seq}",
                                          trust_anchors=anchors, actor=team.release_manager)
        delta = deltas.import_delta(sched.sessions(), release_id=rel.id,
                                    envelope=sign_delta(d, TARGET_SEQ, vendor,
                                                        component="loader"),
                                    patch=d.patch, trust_anchors=anchors,
                                    actor=team.release_manager)
        for name, slot in (("pump", l1), ("wrong-source", other)):
            _, cred = devices.add_device(
                sched.sessions(),
                create=DeviceCreate(id=name, board="sim", vendor_id=str(VENDOR_ID),
                                    class_id=str(CLASS_ID), groups=["ward"],
                                    installed={"app": 1, "loader": SOURCE_SEQ}),
                root_secret=bytes.fromhex(sched.root_secret), actor=team.device_manager,
                now=sched.clock.now())
            dev = CountingDevice(name, tmp_path / name, loader_geometry(512 * 1024), vendor,
                                 loader_lib, random.Random(18))
            dev.provision(app.payload, 1, scheduler_url=sched.public_url,
                          secret=bytes.fromhex(cred.secret_hex),
                          scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
            # the loader release it runs, as a confirmed loader keeps it (loader.seq)
            r = dev.device.run(["nvm-keep", "loader.seq", SOURCE_SEQ.to_bytes(4, "little").hex(),
                                "1"])
            assert r.ok, r.stdout + r.stderr
            dev.board.install_loader_image(slot, S0_SLOT)
            # the unix port holds the agent's and the loader's compiled modules in its heap,
            # which the firmware has frozen in flash (tests/qemu/test_delta.py applies a loader
            # delta in the firmware's own heap): room for them beside the applier's buffers
            dev.board.heapsize = HEAP
            dev.before_power_on = Stage0(stage0_build, dev.board, loader_key).boot
            dev.target = 1  # the application's version stays
            fleet.append(dev)
        now = sched.clock.now()
        ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
            name="loader 5", release_id=rel.id, target_groups=["ward"], waves=["100%"],
            error_threshold=1.0), actor=team.rollout_operator, now=now)
        approve_and_start(sched.sessions, team, ro.id, now=now)

        def done() -> bool:
            entries = sched.rollout_entries(ro.id)
            return len(entries) == 2 and all(e.state == "succeeded" for e in entries.values())

        ok = sched.run_fleet_until(fleet, done, faults=Faults(), timeout_s=300)
        entries = sched.rollout_entries(ro.id)
        assert ok, ({k: (e.state, e.detail) for k, e in entries.items()},
                    [(dev.view.errors, dev.view.state, dev.downloads) for dev in fleet])
        pump, wrong = fleet
        # the device on release 4's image downloaded the patch, and only the patch
        assert [size for size, _, _ in pump.downloads] == [len(d.patch)], (
            pump.view.errors, {k: (e.state, e.detail) for k, e in entries.items()})
        assert pump.downloaded() == len(d.patch) < len(l2) // 10
        # the other one was refused the delta before any write, then got the full image
        assert [size for size, _, _ in wrong.downloads] == [len(l2)]
        assert wrong.downloaded() == len(l2)
        figures("loader delta through the scheduler: patch / full image downloaded",
                f"{pump.downloaded()} / {wrong.downloaded()} B")
        with sched.sessions() as s:
            failures = s.execute(select(DeltaFailure)).scalars().all()
            assert [(f.device_id, f.delta_id) for f in failures] == [("wrong-source", delta.id)]
            target_digest = s.get(Release, rel.id).payload_digest  # type: ignore[union-attr]
            for dev in fleet:
                row = s.get(Device, dev.device_id)
                assert row is not None
                assert row.installed == {"app": 1, "loader": TARGET_SEQ}, row.installed
                entry = s.execute(select(RolloutDevice).where(
                    RolloutDevice.rollout_id == ro.id,
                    RolloutDevice.device_id == dev.device_id)).scalar_one()
                assert entry.state == "succeeded"
        assert target_digest == hashlib.sha256(l2).hexdigest()
        for dev in fleet:
            # the flash's truth: stage0 installed image 1.28.0, the new loader confirmed itself
            assert dev.board.loader_image.read_bytes()[: len(l2)] == l2
            rec = dev.board.current_record()
            assert rec is not None
            assert (rec.component, rec.state, rec.version) == (Component.LOADER,
                                                               State.CONFIRMED, TARGET_SEQ)
            report = dev.flash_report()
            nvm = report["nvm"]
            assert isinstance(nvm, dict)
            assert nvm["loader.seq"] == [1, TARGET_SEQ.to_bytes(4, "little").hex()]
            assert report["installed_version"] == 1  # the application was left as it was
    finally:
        for dev in fleet:
            dev.request_stop()
            dev.join(30)
        sched.stop()

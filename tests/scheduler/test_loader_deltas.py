"""A delta of a loader release (docs/formats/delta.md, "Loader images"): imported like an
application's, its source an earlier loader release's image; the scheduler serves it to a device
whose reported loader release (``installed["loader"]``) is that source, and the full payload to
a device on another loader (the factory loader, 0)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sched_world import CLASS_ID, VENDOR_ID, World, make_envelope
from suture import suit
from suture.delta import make_delta
from suture.scheduler.schedule_doc import K_PAYLOAD_URI
from suture.scheduler.services import deltas


def test_a_loader_delta_is_served_by_the_installed_loader_release(world: World) -> None:
    world.release(1, component="loader")
    r2 = world.release(2, component="loader")
    _, image1 = make_envelope(world.vendor_key, world.tmp, 1, "loader")
    _, image2 = make_envelope(world.vendor_key, world.tmp, 2, "loader")
    d = make_delta(image1, image2)
    with tempfile.TemporaryDirectory() as tmp:
        envelope = suit.create_envelope({
            "sequence-number": 2, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
            "components": [d.component(["loader"], "https://vendor.example/loader-2.delta")],
        }, world.vendor_key, base_dir=Path(tmp))
    delta = deltas.import_delta(world.session(), release_id=r2.id, envelope=envelope,
                                patch=d.patch, trust_anchors=[world.vendor_key.public_key()],
                                actor=world.alice)
    on_loader_1 = world.device("pump", installed={"app": 1, "loader": 1})
    factory = world.device("other", installed={"app": 1, "loader": 0})
    ro = world.rollout(r2.id)
    world.start(ro.id)
    served = on_loader_1.poll()
    assert str(served[K_PAYLOAD_URI]).endswith(f"/releases/{r2.id}/deltas/{delta.id}/payload")
    full = factory.poll()
    assert str(full[K_PAYLOAD_URI]).endswith(f"/releases/{r2.id}/payload")

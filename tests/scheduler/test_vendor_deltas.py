"""Deltas the vendor publishes with a release (``suture vendor publish --delta-from``,
docs/vendor.md): built, signed with the vendor key and stored with the release, served by the
repository under the release's own access, and mirrored by the scheduler with the release when
it holds the source, so that a device on the source release is served the delta and any other
device the full payload (docs/formats/delta.md, "Through the scheduler")."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sched_world import World
from sqlalchemy import func, select
from suture import delta, suit
from suture.scheduler.models import AuditRecord, Delta, Release
from suture.scheduler.schedule_doc import K_PAYLOAD_DIGEST, K_PAYLOAD_SIZE, K_PAYLOAD_URI
from suture.scheduler.services import deltas, vendor_grants
from suture.scheduler.vendor_mirror import MirrorError
from suture.vendor_services.gnap.client import GnapClientError
from suture.vendor_services.gnap.rights import release_access
from suture.vendor_services.repository.store import ReleaseError
from vendor_loop import REPO, Vendor, make_vendor

IMAGE = random.Random(18).randbytes(48 * 1024)


def image(seq: int) -> bytes:
    """Release ``seq``'s application image: the same 48 KiB but for one line naming it."""
    data = bytearray(IMAGE)
    line = f"pump app version {seq}\n".encode()
    data[20_000:20_000 + len(line)] = line
    return bytes(data)


@pytest.fixture
def vendor(world: World, tmp_path: Path) -> Iterator[Vendor]:
    yield from make_vendor(world, tmp_path)


def not_imported(world: World) -> list[tuple[str, str, str, str]]:
    """The audit log's deltas not imported: (action, subject, vendor's source, reason)."""
    with world.session() as s:
        rows = s.execute(select(AuditRecord.action, AuditRecord.subject, AuditRecord.detail)
                         .where(AuditRecord.action.in_(deltas.NOT_IMPORTED_ACTIONS.values()))
                         .order_by(AuditRecord.seq)).all()
    return [(action, subject, json.loads(detail)["vendor_source"],
             json.loads(detail)["reason"]) for action, subject, detail in rows]


def deltas_stored(world: World) -> int:
    with world.session() as s:
        return s.scalar(select(func.count()).select_from(Delta)) or 0


def start_rollout(world: World, vendor: Vendor, release_id: int) -> None:
    ro = world.rollout(release_id, waves=["100%"])
    assert vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                    authority=vendor.authority(), actor=world.alice,
                                    now=world.clock.now()).allows_start
    world.start(ro.id)


def test_a_published_delta_is_mirrored_and_served_to_a_device_on_its_source(
        world: World, vendor: Vendor) -> None:
    vendor.publish("pump-1", 1, payload=image(1))
    meta = vendor.publish("pump-2", 2, payload=image(2), delta_from=["pump-1"])
    listed = meta["deltas"]["pump-1"]
    where = vendor.settings.releases_dir / "pump-2"
    patch = (where / listed["patch"]["file"]).read_bytes()
    envelope = (where / listed["envelope"]["file"]).read_bytes()
    assert (listed["patch"]["sha256"], listed["envelope"]["sha256"]) == (
        hashlib.sha256(patch).hexdigest(), hashlib.sha256(envelope).hexdigest())
    assert listed["source_sha256"] == hashlib.sha256(image(1)).hexdigest()
    assert delta.apply(image(1), patch) == image(2)
    full = meta["artefacts"]["payload"]["size"]
    assert len(patch) * 20 < full, (len(patch), full)  # a one-line change: under 5%
    # The delta's manifest: the vendor's signature, release 2's sequence number and image, and
    # release 1's image as its source.
    manifest = suit.verify_envelope(envelope, [world.vendor_key.public_key()]).manifest
    info = [c for c in manifest.component_info if c.image_digest is not None]
    assert (manifest.sequence_number, info[0].uri) == (2, "https://vendor.example/app")
    assert info[0].image_digest is not None
    assert info[0].image_digest.value == hashlib.sha256(image(2)).digest()
    assert info[0].parameters["suture-delta-source-digest"].value == hashlib.sha256(
        image(1)).digest()
    # The scheduler holds release 1, then mirrors release 2 and its delta from release 1.
    one = vendor.mirror("pump-1")
    result = vendor.mirror_result("pump-2")
    two = result.release
    assert [(d.source, d.status, d.source_release, d.patch_size) for d in result.deltas] == [
        ("pump-1", "imported", one.id, len(patch))]
    assert deltas_stored(world) == 1
    # Schedule signing chooses per device (services/deltas.py): the delta for the device on
    # release 1, the full payload for the device on release 0.
    on_one = world.device("pump-a", installed={"app": 1})
    on_zero = world.device("pump-b", installed={"app": 0})
    start_rollout(world, vendor, two.id)
    served = on_one.poll()
    assert str(served[K_PAYLOAD_URI]).endswith(
        f"/releases/{two.id}/deltas/{result.deltas[0].delta_id}/payload")
    assert (served[K_PAYLOAD_SIZE], served[K_PAYLOAD_DIGEST]) == (
        len(patch), hashlib.sha256(patch).digest())
    served = on_zero.poll()
    assert str(served[K_PAYLOAD_URI]).endswith(f"/releases/{two.id}/payload")
    assert (served[K_PAYLOAD_SIZE], served[K_PAYLOAD_DIGEST]) == (
        full, hashlib.sha256(image(2)).digest())


def test_the_repository_serves_a_delta_under_the_releases_access(
        world: World, vendor: Vendor) -> None:
    vendor.publish("pump-1", 1, payload=image(1))
    vendor.publish("pump-2", 2, payload=image(2), delta_from=["pump-1"])
    now = world.clock.now()
    grant = vendor.client.request_grant([release_access(
        "pump-2", devices=["mirror"], window_start=now, window_end=now + 3600, location=REPO)])
    other = vendor.client.request_grant([release_access(
        "pump-1", devices=["mirror"], window_start=now, window_end=now + 3600, location=REPO)])
    try:
        url = f"{REPO}pump-2/deltas/pump-1"
        listing = vendor.client.fetch(grant, f"{REPO}pump-2").json()
        assert set(listing["deltas"]) == {"pump-1"}
        for name in ("envelope", "patch"):
            got = vendor.client.fetch(grant, f"{url}/{name}")
            assert hashlib.sha256(got.content).hexdigest() == listing["deltas"]["pump-1"][
                name]["sha256"]
            assert got.headers["Digest-SHA256"] == listing["deltas"]["pump-1"][name]["sha256"]
        # No token: 401 with the GNAP challenge; a token for another release: 403.
        bare = vendor.http.get(f"{url}/patch")
        assert (bare.status_code, bare.json()["error"]["code"]) == (401, "invalid_token")
        assert bare.headers["WWW-Authenticate"].startswith("GNAP as_uri=")
        with pytest.raises(GnapClientError, match="insufficient_access"):
            vendor.client.fetch(other, f"{url}/patch")
        # A token not bound to the request's key: refused.
        forged = vendor.http.get(f"{url}/patch", headers={
            "Authorization": f"GNAP {grant.token.value}"})
        assert forged.status_code == 401
        # No such delta, no such file of it.
        for missing in (f"{REPO}pump-2/deltas/pump-0/patch", f"{url}/payload",
                        f"{REPO}pump-1/deltas/pump-0/envelope"):
            target = grant if "pump-2" in missing else other
            with pytest.raises(GnapClientError, match="not_found"):
                vendor.client.fetch(target, missing)
    finally:
        vendor.client.finish(grant)
        vendor.client.finish(other)


def test_publish_refuses_a_bad_delta_source_and_publishes_nothing(
        world: World, vendor: Vendor, tmp_path: Path) -> None:
    vendor.publish("pump-1", 1, payload=image(1))
    vendor.publish("pump-5", 5, payload=image(5))
    vendor.publish("loader-1", 1, payload=image(1), component="loader")
    refusals = [
        ("pump-2", 2, ["pump-0"], "no published release 'pump-0'"),
        ("pump-3", 3, ["pump-5"], r"pump-5 \(sequence number 5\) is not earlier than this "
                                  r"release \(3\)"),
        ("pump-4", 4, ["loader-1"], "of another component, vendor or class"),
        ("pump-6", 6, ["pump-1", "pump-1"], "named twice"),
        ("pump-7", 7, ["pump-1", "nope"], "no published release 'nope'"),
    ]
    for release_id, seq, sources, reason in refusals:
        with pytest.raises(ReleaseError, match=reason):
            vendor.publish(release_id, seq, payload=image(seq), delta_from=sources)
        assert not vendor.store.exists(release_id)
    assert vendor.store.list() == ["loader-1", "pump-1", "pump-5"]
    assert [p.name for p in vendor.settings.releases_dir.iterdir() if p.name.startswith(".")] \
        == []


def test_a_delta_whose_source_the_scheduler_lacks_is_skipped_and_reported(
        world: World, vendor: Vendor) -> None:
    vendor.publish("pump-1", 1, payload=image(1))
    vendor.publish("pump-2", 2, payload=image(2))
    vendor.publish("pump-3", 3, payload=image(3), delta_from=["pump-1", "pump-2"])
    one = vendor.mirror("pump-1")
    result = vendor.mirror_result("pump-3")  # pump-2 never mirrored
    outcomes = {d.source: d for d in result.deltas}
    assert (outcomes["pump-1"].status, outcomes["pump-1"].source_release) == ("imported", one.id)
    assert outcomes["pump-2"].status == "skipped"
    assert "no earlier release here has its source image (the vendor's pump-2" in outcomes[
        "pump-2"].reason
    with world.session() as s:
        assert [d.source_release_id for d in s.execute(select(Delta)).scalars()] == [one.id]
    assert not_imported(world) == [("release.delta.skipped", f"release:{result.release.id}",
                                    "pump-2", outcomes["pump-2"].reason)]


def test_a_delta_that_does_not_verify_is_refused_and_the_release_stays(
        world: World, vendor: Vendor) -> None:
    vendor.publish("pump-1", 1, payload=image(1))
    vendor.publish("pump-2", 2, payload=image(2), delta_from=["pump-1"])
    # The patch changed on the repository, and its listing rewritten to match: the signed
    # manifest's patch digest still refuses it.
    where = vendor.settings.releases_dir / "pump-2"
    listing = json.loads((where / "release.json").read_text())
    entry = listing["deltas"]["pump-1"]["patch"]
    evil = bytearray((where / entry["file"]).read_bytes())
    evil[-1] ^= 0xFF
    (where / entry["file"]).write_bytes(evil)
    entry["sha256"] = hashlib.sha256(evil).hexdigest()
    (where / "release.json").write_text(json.dumps(listing))
    vendor.mirror("pump-1")
    result = vendor.mirror_result("pump-2")
    assert [(d.source, d.status) for d in result.deltas] == [("pump-1", "refused")]
    assert "the patch does not match the manifest's delta digest" in result.deltas[0].reason
    assert result.release.sequence_number == 2
    assert deltas_stored(world) == 0
    assert not_imported(world) == [("release.delta.refused", f"release:{result.release.id}",
                                    "pump-1", result.deltas[0].reason)]
    # A device on release 1 gets the full payload.
    on_one = world.device("pump-a", installed={"app": 1})
    start_rollout(world, vendor, result.release.id)
    assert str(on_one.poll()[K_PAYLOAD_URI]).endswith(f"/releases/{result.release.id}/payload")


def test_a_delta_listing_that_does_not_match_its_file_is_refused(
        world: World, vendor: Vendor) -> None:
    vendor.publish("pump-1", 1, payload=image(1))
    vendor.publish("pump-2", 2, payload=image(2), delta_from=["pump-1"])
    patch = vendor.settings.releases_dir / "pump-2" / "deltas" / "pump-1" / "patch.bin"
    data = bytearray(patch.read_bytes())
    data[-1] ^= 0xFF
    patch.write_bytes(data)
    vendor.mirror("pump-1")
    result = vendor.mirror_result("pump-2")
    assert [(d.status, d.reason) for d in result.deltas] == [
        ("refused", "its patch does not match the repository listing")]
    assert deltas_stored(world) == 0


def test_a_malformed_delta_listing_refuses_the_mirror_before_anything_is_imported(
        world: World, vendor: Vendor) -> None:
    vendor.publish("pump-1", 1, payload=image(1))
    vendor.publish("pump-2", 2, payload=image(2), delta_from=["pump-1"])
    vendor.mirror("pump-1")
    path = vendor.settings.releases_dir / "pump-2" / "release.json"
    listing = json.loads(path.read_text())
    listing["deltas"]["pump-1"]["patch"]["size"] = "big"
    path.write_text(json.dumps(listing))
    with pytest.raises(MirrorError, match="malformed delta from pump-1"):
        vendor.mirror("pump-2")
    with world.session() as s:
        assert [r.vendor_release for r in s.execute(select(Release)).scalars()] == ["pump-1"]
    assert deltas_stored(world) == 0

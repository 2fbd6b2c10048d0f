"""The vendor's data drives the plan: the release metadata imported with a mirrored release
(supported device classes, required component versions, versions to pass through, criticality
and recall) is validated, shown and enforced by the planner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sched_world import SimDevice, World
from suture.scheduler.errors import InvalidInputError
from suture.scheduler.models import Release
from suture.scheduler.schemas import ReleasePublic
from suture.scheduler.services import releases, vendor_releases
from suture.vendor_services.repository.release_meta import (
    CRITICALITIES,
    MetadataError,
    validate_metadata,
    validate_recall,
)
from vendor_loop import Vendor, add_devices, make_vendor


@pytest.fixture
def vendor(world: World, tmp_path: Path) -> Iterator[Vendor]:
    yield from make_vendor(world, tmp_path)


def test_metadata_is_imported_shown_and_enforced(world: World, vendor: Vendor) -> None:
    vendor.publish("pump-2.0", 2)
    vendor.publish("pump-3.0", 3, metadata={
        "device_classes": ["esp32-s3"], "pass_through": [2],
        "requires": [{"component": "loader", "min_version": 2}],
        "criticality": "urgent", "criticality_note": "fixes the occlusion alarm"})
    two = vendor.mirror("pump-2.0")
    three = vendor.mirror("pump-3.0")
    with world.session() as s:
        two_now = s.get(Release, two.id)
        assert two_now is not None
        assert two_now.must_pass_through  # named by 3.0's pass_through
    shown = ReleasePublic.model_validate(releases.get_release(world.session(),
                                                              release_id=three.id))
    assert shown.vendor == "acme"
    assert shown.vendor_release == "pump-3.0"
    assert shown.vendor_metadata["criticality"] == "urgent"
    assert shown.vendor_metadata["criticality_note"] == "fixes the occlusion alarm"
    assert [r.model_dump() for r in shown.requires] == [{"component": "loader",
                                                         "min_version": 2}]
    # A device of another class (board) may not be targeted.
    add_devices(world, ["pump-s3"], board="esp32-s3", installed={"app": 1, "loader": 2})
    add_devices(world, ["pump-pico"], board="rpi-pico", installed={"app": 1, "loader": 2})
    with pytest.raises(InvalidInputError, match=r"esp32-s3 only; 1 targeted device.*pump-pico"):
        world.rollout(three.id, waves=["100%"])
    # Narrowed to the supported class: the device on #1 passes through #2 first.
    ro = world.rollout(three.id, waves=["100%"], target_filter="board == 'esp32-s3'")
    assert ro.target_count == 1
    from suture.scheduler.services import vendor_grants

    assert vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                    authority=vendor.authority(), actor=world.alice,
                                    now=world.clock.now()).allows_start
    world.start(ro.id)
    doc = SimDevice(world, "pump-s3", {"app": 1, "loader": 2}).poll()
    assert doc[20] == two.id  # the release to pass through, before #3


def test_a_device_below_the_vendors_requirement_is_held(world: World, vendor: Vendor) -> None:
    vendor.publish("pump-4.0", 4, metadata={
        "requires": [{"component": "loader", "min_version": 5}]})
    four = vendor.mirror("pump-4.0")
    add_devices(world, ["pump-old"], installed={"app": 1, "loader": 1})
    ro = world.rollout(four.id, waves=["100%"])
    held = world.status(ro.id).blocked
    assert [h.device_id for h in held] == ["pump-old"]
    assert "requires loader >= 5 (device has 1)" in held[0].reason


def test_bad_metadata_is_refused_and_nothing_is_imported(world: World,
                                                         vendor: Vendor) -> None:
    vendor.publish("pump-5.0", 5)
    listing = vendor.settings.releases_dir / "pump-5.0" / "release.json"
    import json

    data = json.loads(listing.read_text())
    data["vendor"] = {"device_classes": ["esp32-s3"], "criticality": "whenever"}
    listing.write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match="criticality must be one of"):
        vendor.mirror("pump-5.0")
    assert releases.list_releases(world.session()) == []
    with pytest.raises(MetadataError, match="unknown vendor metadata fields: colour"):
        validate_metadata({"colour": "red"})
    with pytest.raises(MetadataError, match="min_version"):
        validate_metadata({"requires": [{"component": "loader", "min_version": 0}]})
    with pytest.raises(MetadataError, match="recall"):
        validate_recall({"reason": "x"})
    with pytest.raises(InvalidInputError, match="not an object"):
        vendor_releases.check_metadata([1])


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["device_classes", "requires", "pass_through", "criticality",
                         "criticality_note", "component", "min_version", "x"]),
        inner, max_size=5),
    max_leaves=12))
def test_metadata_validation_accepts_only_the_format(data: object) -> None:
    try:
        out = validate_metadata(data)
    except MetadataError:
        return
    assert set(out) == {"device_classes", "requires", "pass_through", "criticality",
                        "criticality_note"}
    assert out["criticality"] in CRITICALITIES
    assert all(isinstance(c, str) for c in out["device_classes"])
    assert all(type(n) is int and n > 0 for n in out["pass_through"])
    assert validate_metadata(out) == out

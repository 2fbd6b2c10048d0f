"""The HIL scenarios: provision, update over the local link, power cuts during staging and
during install, revert (asked for, and after unconfirmed trial boots), decommission.

The same tests run on every target: the simulator in CI (``--target sim``, the default) and a
real board on the bench (``--target rpi-pico --port /dev/ttyACM0``, docs/hil.md). Tests that
need a capability a target lacks declare it with ``hil_needs``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

import pytest
from suture import keys
from suture.boardops.decommission import decommission
from suture.boardops.provision import ProvisionRequest, provision
from suture.bundle import build_bundle
from suture.devicectl import DeviceError, device_ops
from suture.hil.dut import MicroPythonDut
from suture.keys import PrivateKey
from suture.sim.testing import CLASS_ID, VENDOR_ID, sign_payload

pytestmark = pytest.mark.hil


def app_bundle(version: int, filler: int = 0) -> bytes:
    files = {"main.py": f"def main():\n    print('APP', {version})\n".encode()}
    if filler:
        files["data/blob.bin"] = bytes((version * 7 + i) & 0xFF for i in range(filler))
    return build_bundle(files)


@pytest.fixture
def provisioned(mpy_dut: MicroPythonDut, hil_vendor_key: PrivateKey) -> MicroPythonDut:
    """The board provisioned with application version 1 and an identity, then rebooted."""
    request = ProvisionRequest(
        app_bundle=app_bundle(1), app_version=1,
        vendor_keys=[keys.public_key_bytes(hil_vendor_key.public_key())],
        vendor_id=uuid.UUID(str(VENDOR_ID)), class_id=uuid.UUID(str(CLASS_ID)),
        device_id="hil-device", force=True,
    )
    provision(mpy_dut, request)
    mpy_dut.hard_reset()
    return mpy_dut


def test_provision_installs_the_app_and_the_identity(
    provisioned: MicroPythonDut, hil_vendor_key: PrivateKey
) -> None:
    status = provisioned.status()
    assert (status["state"], status["installed_version"]) == ("CONFIRMED", 1)
    assert status["device_id"] == "hil-device"
    assert {"id.device", "id.key", "trust.vendor"} <= set(status["nvm_keys"])
    assert provisioned.boot_state == "CONFIRMED"
    assert "APP 1" in provisioned.link.boot_log
    again = provision(provisioned, ProvisionRequest(
        app_bundle=app_bundle(9), app_version=9,
        vendor_keys=[keys.public_key_bytes(hil_vendor_key.public_key())],
        vendor_id=uuid.UUID(str(VENDOR_ID)), class_id=uuid.UUID(str(CLASS_ID))))
    assert not again.changed  # idempotent: the identity and the app stay
    assert provisioned.status()["installed_version"] == 1


def test_local_update_trial_then_confirm(
    provisioned: MicroPythonDut, hil_vendor_key: PrivateKey
) -> None:
    payload = app_bundle(2, filler=3000)
    staged = device_ops.stage(provisioned.link, sign_payload(payload, 2, hil_vendor_key), payload)
    assert staged == 2
    assert provisioned.hard_reset() == "TRIAL"
    assert "APP 2" in provisioned.link.boot_log
    status = provisioned.status()
    assert status["installed_version"] == 2
    assert status["backup_version"] == 1
    assert device_ops.confirm(provisioned.link) == "CONFIRMED"
    assert provisioned.hard_reset() == "CONFIRMED"
    assert provisioned.status()["installed_version"] == 2


def test_unsigned_or_altered_updates_change_nothing(provisioned: MicroPythonDut) -> None:
    payload = app_bundle(2)
    rogue = keys.generate_private_key("ES256")
    before = provisioned.status()
    with pytest.raises(DeviceError, match="SignatureError"):
        device_ops.stage(provisioned.link, sign_payload(payload, 2, rogue), payload)
    after = provisioned.status()
    assert (after["seq"], after["installed_version"]) == (before["seq"], 1)
    assert provisioned.hard_reset() == "CONFIRMED"
    assert "APP 1" in provisioned.link.boot_log


@pytest.mark.hil_needs("armed_power_cut", "flash_snapshot")
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.6, 0.95])
def test_power_cut_during_staging_keeps_the_running_version(
    provisioned: MicroPythonDut, hil_vendor_key: PrivateKey, fraction: float,
    figures: Callable[[str, object], None],
) -> None:
    payload = app_bundle(2, filler=6000)
    envelope = sign_payload(payload, 2, hil_vendor_key)
    # Measure the flash operations staging takes, then put the flash back and cut inside it.
    snapshot = provisioned.target.snapshot()
    before = provisioned.flash_operations()
    device_ops.stage(provisioned.link, envelope, payload)
    staging_ops = provisioned.flash_operations() - before
    provisioned.power_cut()
    provisioned.target.restore(snapshot)
    assert provisioned.power_on() == "CONFIRMED"
    cut = int(staging_ops * fraction)
    provisioned.arm_power_cut(cut)
    with pytest.raises(DeviceError, match="PowerCut"):
        device_ops.stage(provisioned.link, envelope, payload)
    provisioned.power_cut()
    state = provisioned.power_on()
    assert state in ("CONFIRMED", "DOWNLOADING", "FAILED", "STAGED")
    assert "APP 1" in provisioned.link.boot_log
    assert provisioned.status()["installed_version"] == 1
    # The same update, staged again, installs.
    device_ops.stage(provisioned.link, envelope, payload)
    assert provisioned.hard_reset() == "TRIAL"
    assert provisioned.status()["installed_version"] == 2
    figures("staging flash ops / cut after", f"{staging_ops} / {cut} -> {state}")


@pytest.mark.hil_needs("armed_power_cut", "flash_snapshot")
@pytest.mark.parametrize("fraction", [0.1, 0.35, 0.6, 0.9])
def test_power_cut_during_install_finishes_at_the_next_boot(
    provisioned: MicroPythonDut, hil_vendor_key: PrivateKey, fraction: float,
    figures: Callable[[str, object], None],
) -> None:
    payload = app_bundle(2, filler=6000)
    device_ops.stage(provisioned.link, sign_payload(payload, 2, hil_vendor_key), payload)
    snapshot = provisioned.target.snapshot()
    # Measure the flash operations of the boot that installs, then cut inside it.
    assert provisioned.hard_reset() == "TRIAL"
    install_ops = provisioned.flash_operations()
    provisioned.power_cut()
    provisioned.target.restore(snapshot)
    cut = max(1, int(install_ops * fraction))
    provisioned.arm_power_cut_at_boot(cut)
    assert provisioned.power_on() == "POWERCUT"
    provisioned.power_cut()
    assert provisioned.power_on() == "TRIAL"
    assert "APP 2" in provisioned.link.boot_log
    status = provisioned.status()
    assert status["installed_version"] == 2
    assert status["installed_digest"] == hashlib.sha256(payload).hexdigest()
    figures("install boot flash ops / cut at", f"{install_ops} / {cut}")


def test_revert_on_request_restores_the_previous_version(
    provisioned: MicroPythonDut, hil_vendor_key: PrivateKey
) -> None:
    payload = app_bundle(2)
    device_ops.stage(provisioned.link, sign_payload(payload, 2, hil_vendor_key), payload)
    assert provisioned.hard_reset() == "TRIAL"
    device_ops.request_revert(provisioned.link)
    assert provisioned.hard_reset() == "REVERTED"
    assert "APP 1" in provisioned.link.boot_log
    assert provisioned.status()["installed_version"] == 1


@pytest.mark.hil_needs("hard_reset")
def test_an_unconfirmed_trial_reverts_after_its_trial_boots(
    provisioned: MicroPythonDut, hil_vendor_key: PrivateKey
) -> None:
    payload = app_bundle(2)
    device_ops.stage(provisioned.link, sign_payload(payload, 2, hil_vendor_key), payload)
    states = [provisioned.hard_reset() for _ in range(4)]
    assert states[:3] == ["TRIAL", "TRIAL", "TRIAL"]
    assert states[3] == "REVERTED"
    assert provisioned.status()["installed_version"] == 1


def test_decommission_erases_the_identity_and_the_journal(provisioned: MicroPythonDut) -> None:
    result = decommission(provisioned, reboot=provisioned.hard_reset)
    assert result.device_id == "hil-device"
    assert [r.name for r in result.report.regions] == ["journal", "nvm", "staging", "backup"]
    assert result.report.fs_files_removed > 0
    assert device_ops.fs_files(provisioned.link) == []
    status = provisioned.status()
    assert status["installed_version"] == 0
    assert status["device_id"] is None
    assert status["nvm_keys"] == []
    assert status["journal"] == []
    assert provisioned.hard_reset() == "IDLE"

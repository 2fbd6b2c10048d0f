"""The device stack as real firmware on an emulated Cortex-M3 (mps2-an385): stage0 verifies and
starts MicroPython with the frozen loader, which recovers, installs, confirms and reverts, and
updates itself through stage0."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from suture.image import HEADER_SIZE, parse_header, sign_image, verify_image
from suture.qemu import QemuDevice, QemuError
from suture.sim.testing import example_app, sign_payload
from suture.suit.sbom_build import build_sbom

from .conftest import Firmware

pytestmark = pytest.mark.qemu
LOADER_OFF = 0x20000
COUNT_ONLY = 0xFFFFFFFF


def _loader_release(fw: Firmware, seq: int, counter: int) -> tuple[bytes, bytes]:
    """The same firmware body signed as loader image 1.<counter>.0, in a SUIT release."""
    image = sign_image(fw.build.binary.read_bytes(), private_key=fw.loader_key,
                       version=(1, counter, 0), security_counter=counter,
                       load_address=parse_header(fw.build.loader_image.read_bytes())
                       .load_address)
    return sign_payload(image, seq, fw.vendor_key, component="loader",
                        sbom=_loader_sbom(image, counter)), image


def _loader_sbom(image: bytes, counter: int) -> bytes:
    """The SBOM :func:`_loader_release` binds (the same bytes for the same image)."""
    return build_sbom("suture-loader", f"1.{counter}.0", {"loader.img": image})


def _slot_version(dev: QemuDevice) -> tuple[int, int, int]:
    data = dev.read_flash()
    return parse_header(data[LOADER_OFF : LOADER_OFF + HEADER_SIZE]).version


def test_firmware_is_a_signed_loader_image_without_simulator_modules(firmware: Firmware) -> None:
    fw = firmware.build
    image = fw.loader_image.read_bytes()
    hdr = verify_image(image, firmware.loader_key.public_key())
    assert hdr.load_address == 0x21020200
    assert hdr.image_size == fw.flash_bytes == len(image) - HEADER_SIZE
    assert 100_000 < fw.flash_bytes < 0xE0000 - HEADER_SIZE  # fits the loader slot
    body = fw.binary.read_bytes()
    assert b"suture_boot" in body
    assert b"loader_image" in body
    for sim_only in (b"simflash", b"simcli", b"SUTURE_CUT_AFTER"):
        assert sim_only not in body


def test_stage0_boots_the_firmware_and_the_loader_reports(device: QemuDevice) -> None:
    boot = device.reset()[-1]
    assert "stage0: starting the loader" in boot.console
    assert boot.line("suture: boot application CONFIRMED") is not None
    assert "APP 1" in boot.console
    assert "mps2-an385 with cortex-m3" in boot.console
    report = device.report()
    assert report["installed_version"] == 1
    assert report["loader_seq"] == 0


def test_application_update_installs_and_confirms(firmware: Firmware, device: QemuDevice) -> None:
    app2 = example_app(2)
    device.stage(sign_payload(app2, 2, firmware.vendor_key), app2)
    boots = device.reset()
    assert "APP 2" in boots[-1].console
    report = device.report()
    assert (report["state"], report["installed_version"]) == ("TRIAL", 2)
    device.exec("from loader import api\napi.confirm()")
    assert device.reset()[-1].line("suture: boot application CONFIRMED") is not None
    assert device.report()["installed_version"] == 2


def test_release_for_the_other_component_is_refused(firmware: Firmware,
                                                    device: QemuDevice) -> None:
    # an application bundle released as a loader: refused while staging
    app2 = example_app(2)
    with pytest.raises(QemuError, match="LoaderImageError"):
        device.stage(sign_payload(app2, 2, firmware.vendor_key, component="loader"), app2)
    report = device.report()
    assert (report["component"], report["state"]) == ("loader", "FAILED")
    # a loader image released as an application: refused before anything is installed
    _env, image = _loader_release(firmware, 3, 2)
    app_env = sign_payload(image, 3, firmware.vendor_key)
    device.stage(app_env, image)
    device.reset()
    report = device.report()
    assert (report["component"], report["state"], report["installed_version"]) == (
        "application", "FAILED", 1)
    assert _slot_version(device) == (1, 0, 0)


def test_loader_updates_itself_through_stage0(firmware: Firmware, device: QemuDevice) -> None:
    env, image = _loader_release(firmware, 5, 2)
    device.stage(env, image)
    assert device.report()["state"] == "STAGED"
    boots = device.reset()
    text = "".join(b.console for b in boots)
    assert "suture: loader confirmed (release 5)" in text
    assert _slot_version(device) == (1, 2, 0)
    report = device.report()
    assert (report["component"], report["state"], report["loader_seq"]) == (
        "loader", "CONFIRMED", 5)
    assert "APP 1" in boots[-1].console  # the application still runs on the new loader
    # the same release again is refused: the confirmed loader release is kept in NVM
    with pytest.raises(QemuError, match="RollbackError"):
        device.stage(env, image)


def test_unhealthy_loader_is_restored_by_stage0(firmware: Firmware, device: QemuDevice) -> None:
    env, image = _loader_release(firmware, 5, 2)
    device.stage(env, image)
    # damage the installed application: the new loader's health check reads it back and fails
    device.exec("f = open('/flash/app/main.py', 'ab')\nf.write(b'# damaged\\n')\nf.close()")
    boots = device.reset()
    text = "".join(b.console for b in boots)
    assert "suture: loader unhealthy" in text
    assert _slot_version(device) == (1, 0, 0)  # stage0 restored the previous loader
    report = device.report()
    assert (report["component"], report["state"], report["loader_seq"]) == (
        "loader", "REVERTED", 0)



# Files and directory iterators left open and dropped, while the collector runs every 2 KiB of
# allocation: their finalisers close them whenever a collection runs. littlefs must never be
# re-entered that way in the middle of one of its operations (a Python block device allocates,
# so a collection could start inside littlefs and free a node of its list of open files: a
# HardFault in lfs2_dir_orphaningcommit). The firmware's block device is in C and allocates
# nothing (firmware/qemu/cmodule/suture_qemu/modsuture_qemu.c, NorBlockDev).
FS_CHURN = """
import gc, os
gc.threshold(2048)
for i in range(200):
    name = '/flash/churn%d' % (i % 3)
    with open(name, 'wb') as f:
        f.write(b'x' * (200 + 37 * (i % 11)))
    g = open(name, 'rb')
    g.read(16)
    g = None
    d = os.ilistdir('/flash')
    next(d)
    d = None
    if i % 2:
        os.remove(name)
gc.threshold(-1)
gc.collect()
print('CHURN', sorted(n for n in os.listdir('/flash') if n.startswith('churn')))
"""


def test_open_files_dropped_while_the_collector_runs(device: QemuDevice) -> None:
    out = device.exec(FS_CHURN, timeout_s=30)
    assert "CHURN ['churn0']" in out  # the last writes of churn1 and churn2 were removed
    assert device.report()["state"] == "CONFIRMED"  # littlefs still serves the loader

@pytest.mark.powercut
def test_power_cut_during_application_install(firmware: Firmware, device: QemuDevice) -> None:
    """A deterministic sample of cut points of the boot that installs an application (stage0's
    and the loader's flash operations counted together), clean and half-done: after each cut
    the device boots a verified firmware, runs v1 or v2, and its journal is settled."""
    app2 = example_app(2)
    device.stage(sign_payload(app2, 2, firmware.vendor_key), app2)
    device.exec("import machine\nmachine.reset()")
    before = device.read_flash()
    device.run(cut=(0xFFFFFFFF, False))  # counts the operations, never cuts
    total = int(device.exec("from loader.hal import board\nprint(board().ops())"))
    assert total > 20
    points = sorted({1, 2, total // 4, total // 2, 3 * total // 4, total - 1, total})
    for at in points:
        for half in (False, True):
            device.power_off()
            device.write_flash(before)
            boots = device.run(cut=(at, half))
            assert boots[0].power_cut, f"cut {at}: {boots[0].console[-300:]}"
            device.power_off()  # the plug, pulled after the cut
            boots = device.run()
            last = boots[-1]
            assert "stage0: starting the loader" in last.console
            report = device.report()
            assert report["state"] in ("TRIAL", "CONFIRMED"), (at, half, report)
            assert f"APP {report['installed_version']}" in last.console


def test_damaged_loader_slot_restores_the_confirmed_loader(firmware: Firmware,
                                                           device: QemuDevice) -> None:
    env, image = _loader_release(firmware, 5, 2)
    device.stage(env, image)
    device.reset()  # stage0 installs, the new loader confirms itself
    boots = device.reset()  # stage0 raises the counter and refreshes its backup
    assert "refreshing the backup with the confirmed loader" in boots[0].console
    flash = bytearray(device.read_flash())
    flash[LOADER_OFF + HEADER_SIZE + 4096] ^= 0x01  # one bit of the firmware's body
    device.write_flash(bytes(flash))
    boots = device.run()
    assert "stage0: starting the loader" in boots[-1].console
    assert _slot_version(device) == (1, 2, 0)  # restored from the refreshed backup
    assert device.report()["loader_seq"] == 5


def _points(total: int) -> list[int]:
    """A deterministic sample of a power-on's cut points: its edges and quarters."""
    return sorted({1, 2, total // 4, total // 2, 3 * total // 4, total - 1, total})


def _consistent_loader(device: QemuDevice) -> str:
    """Boot until the REPL; the firmware in the slot and the journal's loader record agree,
    and the application runs. Returns which loader runs: "new" or "old"."""
    boots = device.run()
    assert "stage0: starting the loader" in boots[-1].console, boots[-1].console[-500:]
    assert "APP 1" in boots[-1].console
    report = device.report()
    version = _slot_version(device)
    if version == (1, 2, 0):
        assert (report["component"], report["state"]) == ("loader", "CONFIRMED"), report
        assert report["loader_seq"] == 5
        return "new"
    assert version == (1, 0, 0), version
    assert report["loader_seq"] == 0, report
    return "old"


@pytest.mark.powercut
def test_power_cut_during_loader_update(firmware: Firmware, device: QemuDevice,
                                        figures: Callable[[str, object], None]) -> None:
    """The power-on that installs a new loader (stage0 copies it with a backup, the new
    firmware checks its health and confirms) and the next one (stage0 raises its counter and
    refreshes its backup), cut at a deterministic sample of their flash operations, clean and
    half-done: every cut ends in a verified firmware, the application running, and the slot
    and the journal agreeing."""
    env, image = _loader_release(firmware, 5, 2)
    device.stage(env, image)
    device.exec("import machine\nmachine.reset()")
    staged = device.read_flash()
    device.run(cut=(COUNT_ONLY, False))
    install_ops = int(device.exec("from loader.hal import board\nprint(board().ops())"))
    device.power_off()
    confirmed = device.read_flash()
    device.run(cut=(COUNT_ONLY, False))
    refresh_ops = int(device.exec("from loader.hal import board\nprint(board().ops())"))
    assert install_ops > 1000  # a whole firmware image copied sector by sector
    outcomes = {"new": 0, "old": 0}
    cuts = 0
    for before, total in ((staged, install_ops), (confirmed, refresh_ops)):
        for at in _points(total):
            for half in (False, True):
                device.power_off()
                device.write_flash(before)
                boots = device.run(cut=(at, half))
                assert any(b.power_cut for b in boots), f"cut {at}: {boots[-1].console[-300:]}"
                device.power_off()
                outcomes[_consistent_loader(device)] += 1
                cuts += 1
    figures("loader update on QEMU: flash ops of the install / refresh power-on",
            f"{install_ops} / {refresh_ops}")
    figures("loader update on QEMU: cuts sampled (new loader / old loader after)",
            f"{cuts} ({outcomes['new']} / {outcomes['old']})")
    assert outcomes["new"] > 0

"""A delta update through the real firmware on the QEMU board: the patch from the installed
application is applied by the frozen loader into the staging slot, verified against the target
digest and installed like a full update (docs/formats/delta.md)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from suture import suit
from suture.boards import load_board
from suture.delta import make_delta
from suture.qemu import QemuDevice
from suture.sim.testing import CLASS_ID, VENDOR_ID, example_app

from .conftest import BOARD, Firmware

pytestmark = pytest.mark.qemu

APP1 = example_app(1, filler=20000)
APP2 = example_app(2, filler=20000)  # one line of main.py and lib/util.py changed


@pytest.fixture
def device_v1(firmware: Firmware, tmp_path: Path) -> Iterator[QemuDevice]:
    """A device from the factory with APP1 (a 20 KB data file beside the code) confirmed."""
    dev = QemuDevice(load_board(BOARD), firmware.stage0_elf, tmp_path / "dev")
    dev.factory_flash(firmware.build.loader_image.read_bytes(),
                      firmware.loader_key.public_key())
    dev.power_on()
    report = dev.provision(APP1, 1)
    assert (report["state"], report["installed_version"]) == ("CONFIRMED", 1)
    yield dev
    dev.power_off()


def test_application_delta_installs_and_confirms(firmware: Firmware,
                                                 device_v1: QemuDevice) -> None:
    device = device_v1
    # the firmware names its MicroPython release, not the commit of the tree it was built in
    assert "MicroPython v1.28.0 on " in device.exec("import sys\nprint(sys.version)")
    d = make_delta(APP1, APP2, segment_size=8192)
    assert len(d.patch) < len(APP2) // 4
    with tempfile.TemporaryDirectory() as tmp:
        envelope = suit.create_envelope({
            "sequence-number": 2, "vendor-id": str(VENDOR_ID), "class-id": str(CLASS_ID),
            "components": [d.component(["app"], "https://updates.example/app.delta")],
        }, firmware.vendor_key, base_dir=Path(tmp))
    device.stage(envelope, d.patch)
    staged = device.report()
    assert staged["state"] == "STAGED", staged
    boots = device.reset()
    assert "APP 2" in boots[-1].console
    report = device.report()
    assert (report["state"], report["installed_version"]) == ("TRIAL", 2)
    device.exec("from loader import api\napi.confirm()")
    assert device.reset()[-1].line("suture: boot application CONFIRMED") is not None
    assert device.report()["installed_version"] == 2

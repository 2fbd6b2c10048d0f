"""power cuts on the real firmware in QEMU, swept (CI runs a sample: tests/qemu/test_firmware.py)

- the application install: the power-on that installs application v2, cut at every one of its
  flash operations (stage0's and the loader's, counted together), clean and half done;
- the loader update: the power-on in which stage0 installs a new loader and the new loader
  confirms itself, and the next one (counter raise, backup refresh), cut every ``STRIDE``
  operations (``SUTURE_QEMU_SWEEP_STRIDE``, default 32; 1 cuts every one of the about 3,200
  operations, about 3.5 hours on 2 cores), clean and half done. stage0's copy is the bulk of
  these operations (one per page); the host port's sweeps (tests/stage0/test_powercut.py) cut
  every one of them in CI.

After every cut the device must boot a verified firmware, run its application, and have a
settled journal that agrees with the slot.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

COUNT_ONLY = 0xFFFFFFFF
STRIDE = max(1, int(os.environ.get("SUTURE_QEMU_SWEEP_STRIDE", "32")))


def _ops(dev: Any) -> int:
    return int(dev.exec("from loader.hal import board\nprint(board().ops())"))


def run() -> dict[str, Any]:
    from suture.boards import load_board
    from suture.qemu import QemuDevice
    from suture.sim.testing import example_app, sign_payload

    from tests.qemu.conftest import BOARD, Firmware, build
    from tests.qemu.test_firmware import _consistent_loader, _loader_release

    repo = Path(__file__).resolve().parents[1]
    fw: Firmware = build(repo, BOARD)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dev = QemuDevice(load_board(BOARD), fw.stage0_elf, Path(tmp) / "dev")
        dev.factory_flash(fw.build.loader_image.read_bytes(), fw.loader_key.public_key())
        dev.power_on()
        dev.provision(example_app(1), 1)
        factory = dev.read_flash()

        # the application install, every operation
        app2 = example_app(2)
        dev.stage(sign_payload(app2, 2, fw.vendor_key), app2)
        dev.exec("import machine\nmachine.reset()")
        staged = dev.read_flash()
        dev.run(cut=(COUNT_ONLY, False))
        total = _ops(dev)
        bad = 0
        for at in range(1, total + 1):
            for half in (False, True):
                dev.power_off()
                dev.write_flash(staged)
                dev.run(cut=(at, half))
                dev.power_off()
                boots = dev.run()
                report = dev.report()
                if (report["state"] not in ("TRIAL", "CONFIRMED")
                        or f"APP {report['installed_version']}" not in boots[-1].console
                        or "stage0: starting the loader" not in boots[-1].console):
                    bad += 1
        results["app_install_flash_ops"] = total
        results["app_install_cuts"] = 2 * total
        results["app_install_cuts_not_recovered"] = bad

        # the loader update, every STRIDE-th operation of both power-ons
        dev.power_off()
        dev.write_flash(factory)
        dev.power_on()
        env, image = _loader_release(fw, 5, 2)
        dev.stage(env, image)
        dev.exec("import machine\nmachine.reset()")
        before_install = dev.read_flash()
        dev.run(cut=(COUNT_ONLY, False))
        install_ops = _ops(dev)
        dev.power_off()
        before_refresh = dev.read_flash()
        dev.run(cut=(COUNT_ONLY, False))
        refresh_ops = _ops(dev)
        cuts = 0
        bad = 0
        outcomes = {"new": 0, "old": 0}
        for snapshot, ops in ((before_install, install_ops), (before_refresh, refresh_ops)):
            for at in sorted({*range(1, ops + 1, STRIDE), ops}):
                for half in (False, True):
                    dev.power_off()
                    dev.write_flash(snapshot)
                    dev.run(cut=(at, half))
                    dev.power_off()
                    cuts += 1
                    try:
                        outcomes[_consistent_loader(dev)] += 1
                    except AssertionError:
                        bad += 1
        dev.power_off()
        results["loader_install_flash_ops"] = install_ops
        results["loader_refresh_flash_ops"] = refresh_ops
        results["loader_update_stride_ops"] = STRIDE
        results["loader_update_cuts"] = cuts
        results["loader_update_cuts_new_loader_after"] = outcomes["new"]
        results["loader_update_cuts_old_loader_after"] = outcomes["old"]
        results["loader_update_cuts_not_recovered"] = bad
    return results

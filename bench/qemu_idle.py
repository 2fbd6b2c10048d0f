"""host CPU of one idle QEMU device (the real firmware sleeping in time.sleep)

A QEMU mps2-an385 device running the real firmware under stage0 waits 6 s at its REPL, in
``time.sleep`` and in a ``select.poll`` on its console (the agent's wait between two schedule
polls, which answers the status protocol meanwhile); the QEMU process's CPU time (user + system,
from /proc) over each wait, as a fraction of one host core. Without the firmware's WFI sleeps
MicroPython's qemu port busy-waits and both are about 1.0.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

SLEEP_S = 6.0


def run() -> dict[str, Any]:
    from suture.boards import load_board
    from suture.qemu import QemuDevice

    from tests.qemu.conftest import BOARD, Firmware, build

    repo = Path(__file__).resolve().parents[1]
    fw: Firmware = build(repo, BOARD)
    with tempfile.TemporaryDirectory() as tmp:
        dev = QemuDevice(load_board(BOARD), fw.stage0_elf, Path(tmp) / "dev")
        dev.factory_flash(fw.build.loader_image.read_bytes(), fw.loader_key.public_key())
        dev.power_on()
        try:
            fraction = dev.idle_cpu(SLEEP_S)
            waiting = dev.idle_cpu(SLEEP_S, console=True)
        finally:
            dev.power_off()
    return {"idle_device_cpu_fraction": round(fraction, 3),
            "console_wait_cpu_fraction": round(waiting, 3), "sleep_s": SLEEP_S}

"""The real-board HAL (loader/hal/mcu.py) against a simulated JEDEC SPI NOR chip: the driver's
command sequences (READ 03h, WREN 06h, RDSR 05h, PP 02h, SE 20h) carry the journal correctly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from suture.sim.fake_spi_nor import MACHINE_PY

FAKES = {
    "machine.py": MACHINE_PY,
    "board_config.py": '''
NAME = "fake"
SPI_ID = 0
SPI_BAUD = 1000000
SPI_CS = 5
EXT_SIZE = 65536
EXT_SECTOR = 4096
EXT_PAGE = 256
EXT_REGIONS = {"journal": (0, 8192), "nvm": (8192, 16384), "staging": (24576, 20480),
               "backup": (45056, 20480)}
VENDOR_ID = b"v" * 16
CLASS_ID = b"c" * 16
DEVICE_ID = b""
KEYS = []
MAX_TRIAL_BOOTS = 3
MOUNT = "/flash"
WDT_MS = 5000
''',
}

SCRIPT = """
import json
from loader.hal.mcu import McuBoard
from loader.journal import Journal, Record
import loader.journal as J
import machine
b = McuBoard()
j = Journal(b.region("journal"))
for i in range(70):  # more than one sector of 64 records: the journal switches sectors
    j.append(Record(state=J.IDLE if i % 2 else J.CONFIRMED, version=i))
again = Journal(b.region("journal"))
b.feed_watchdog()
print("RESULT " + json.dumps({"seq": again.current.seq, "version": again.current.version,
      "ops": sorted(set(machine.BUS.log))}))
"""


def test_spi_nor_driver_carries_the_journal(
    run_mpy: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    for name, src in FAKES.items():
        (tmp_path / name).write_text(src)
    got = run_mpy(SCRIPT, heapsize="256K")
    assert got == {"seq": 70, "version": 69, "ops": [0x02, 0x03, 0x05, 0x06, 0x20]}

"""The simulated board: MicroPython's unix port with file-backed NOR flash.

``SimBoard`` is one device's folder (its flash images, erase counters, configuration and the
compiled loader); ``SimDevice`` starts its MicroPython process, optionally with a power cut, and
returns a ``RunResult``. ``read_journal`` decodes the journal from the external flash image in
CPython, for assertions. See docs/architecture.md for the flash maps.

Example::

    geometry = load_board(repo / "boards/sim/board.toml")
    board = SimBoard(tmp_path / "dev1", geometry, identity)
    board.create()
    device = SimDevice(board)
    device.run(["provision", board.put_file("app.bundle", data), "1"])
    result = device.run(["boot"], power_cut=PowerCut(after_ops=17))
"""

from suture.sim.board import BoardGeometry, FlashGeometry, Region, load_board, small_geometry
from suture.sim.device import (
    DeviceIdentity,
    PowerCut,
    RunResult,
    SimBoard,
    SimDevice,
)
from suture.sim.errors import SimError
from suture.sim.journal import JournalRecord, read_journal

__all__ = [
    "BoardGeometry",
    "DeviceIdentity",
    "FlashGeometry",
    "JournalRecord",
    "PowerCut",
    "Region",
    "RunResult",
    "SimBoard",
    "SimDevice",
    "SimError",
    "load_board",
    "read_journal",
    "small_geometry",
]

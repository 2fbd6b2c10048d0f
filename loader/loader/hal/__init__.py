# The hardware abstraction: one object that says what "flash", "reset", "watchdog" and "clock"
# are on this board. `board()` returns the simulated board under the unix port, the QEMU board
# in the firmware for QEMU's mps2 machines, and the real one elsewhere; loader code only ever
# talks to the returned object.
import sys

_board = None


def board():
    global _board
    if _board is None:
        if sys.platform in ("linux", "darwin"):
            from loader.hal.sim import SimBoard

            _board = SimBoard()
        elif sys.platform == "qemu":
            from loader.hal.qemu import QemuBoard

            _board = QemuBoard()
        else:
            from loader.hal.mcu import McuBoard

            _board = McuBoard()
    return _board

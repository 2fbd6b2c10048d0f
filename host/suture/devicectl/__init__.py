"""Device control: how the host reaches a running MicroPython board and what it asks of it.

- :mod:`~suture.devicectl.repl`: the board's raw REPL (:class:`MicroPythonLink`): exec, eval,
  files, host-data streams, resets; absent, busy and wrong-kind boards told apart.
- :mod:`~suture.devicectl.device_ops`: the loader operations the host runs over that REPL
  (status, provisioning, staging, NVM, erase), with their MicroPython in ``board_side/``.
- :mod:`~suture.devicectl.status_protocol`: watch a running agent without stopping it.
- :mod:`~suture.devicectl.simport`, :mod:`~suture.devicectl.sim_target`: the simulated board
  on a pseudo-terminal.
- :mod:`~suture.devicectl.targets`, :mod:`~suture.devicectl.qemu_firmware_target`,
  :mod:`~suture.devicectl.qemu_target`: boards the HIL suite powers, resets and cuts.
"""

from suture.devicectl.repl import (
    BoardAbsentError,
    BoardBusyError,
    DeviceError,
    LinkError,
    MicroPythonLink,
    WrongBoardError,
)

__all__ = [
    "BoardAbsentError",
    "BoardBusyError",
    "DeviceError",
    "LinkError",
    "MicroPythonLink",
    "WrongBoardError",
]

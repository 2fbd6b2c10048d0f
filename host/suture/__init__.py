"""suture: dependable remote firmware updates for medical IoT devices.

Host-side packages:

- ``suture.suit``: SUIT envelopes (decode, verify, build, sign, sever); pure, no I/O.
- ``suture.keys``: key generation and PEM handling shared by every signing command.
- ``suture.image``: stage0 loader images (header, sign, inspect).
- ``suture.scheduler``: the hospital's scheduler service.
- ``suture.vendor_services``: the vendor's release repository and GNAP authorization server.
- ``suture.boards``: board definitions and their checks.
- ``suture.devicectl``: a running board's REPL, the status protocol, the simulated board's port
  and the boards the HIL suite drives.
- ``suture.boardops``: flashing, provisioning, deploying and the local update (USB, SWD).
- ``suture.firmware``: the MicroPython firmware with the frozen loader, built for a board.
- ``suture.sim``: the MicroPython unix-port simulator harness and the ward simulator.
- ``suture.hil``: the pytest-embedded plugin for hardware-in-the-loop tests (alone).
"""

__version__ = "0.1.0"

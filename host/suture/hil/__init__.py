"""The pytest plugin of suture's hardware-in-the-loop suite (``suture.hil.plugin``, registered as
the ``suture_hil`` pytest11 entry point) and the device under test its fixtures hand to the
scenarios (:class:`suture.hil.dut.MicroPythonDut`). The boards themselves are reached through
:mod:`suture.devicectl`."""

"""The QEMU mps2 boards running the real firmware: stage0 from the boot ROM, MicroPython with the
frozen loader from the loader slot, both flash devices in a file-backed RAM (docs/boards.md,
"QEMU"). :class:`QemuDevice` powers one on, talks to its REPL and cuts its power."""

from suture.qemu.device import Boot, QemuDevice, QemuError

__all__ = ["Boot", "QemuDevice", "QemuError"]

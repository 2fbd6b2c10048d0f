# The simulated board: MicroPython's unix port, started by the harness (suture.sim) in the
# device's folder. `board.json` there describes both flash chips, their regions, the device's
# identity and its trusted keys; a reset is the end of the process (the harness restarts it).
import json
import sys

from loader.errors import Reset
from loader.flash import Region
from loader.hal.simflash import SimNorFlash, supply

CONFIG = "board.json"
MOUNT = "/flash"




class SimBoard:
    name = "sim"

    def __init__(self, config=CONFIG):
        with open(config) as f:
            cfg = json.load(f)
        self.config = cfg
        i = cfg["internal"]
        e = cfg["external"]
        self.internal = SimNorFlash(i["path"], i["size"], i["sector"], i["page"])
        self.external = SimNorFlash(e["path"], e["size"], e["sector"], e["page"])
        self._regions = {}
        for name, (off, size) in e["regions"].items():
            self._regions[name] = Region(self.external, off, size, name)
        slot = cfg.get("loader")
        if slot is not None:
            # the installed loader image: on a real board the internal flash's loader slot,
            # which stage0 writes; the simulator's internal flash is littlefs whole, so the slot
            # is a flash file of its own, read only (the source of a loader-image delta)
            flash = SimNorFlash(slot["path"], slot["size"], slot["sector"], slot["page"])
            self._regions["loader"] = Region(flash, 0, slot["size"], "loader")
        self.vendor_id = bytes.fromhex(cfg["vendor_id"])
        self.class_id = bytes.fromhex(cfg["class_id"])
        self.device_id = bytes.fromhex(cfg.get("device_id", ""))
        self.keys = [bytes.fromhex(k) for k in cfg["keys"]]
        self.max_trial_boots = cfg.get("max_trial_boots", 3)
        self.mount_point = MOUNT

    def region(self, name):
        return self._regions[name]

    def ops(self):
        return supply.ops

    def reset(self):
        raise Reset()

    def feed_watchdog(self):
        pass

    def ticks_ms(self):
        import time

        return time.ticks_ms()

    def app_path(self):
        return sys.path


class _BlockDev:
    """littlefs block device over a NOR chip (the extended interface: erase via ioctl 6)."""

    def __init__(self, flash):
        self.flash = flash
        self.region = Region(flash, 0, flash.size, "internal")

    def readblocks(self, block, buf, off=0):
        self.region.read(block * self.flash.sector + off, buf)

    def writeblocks(self, block, buf, off=None):
        if off is None:
            self.region.erase(block * self.flash.sector)
            off = 0
        self.region.program(block * self.flash.sector + off, buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.flash.size // self.flash.sector
        if op == 5:
            return self.flash.sector
        if op == 6:
            self.region.erase(arg * self.flash.sector)
            return 0
        return 0


def _lfs_args(flash):
    return {"readsize": 64, "progsize": flash.page, "lookahead": 32}


def mount(board, format_if_blank=False):
    """Mount littlefs (the internal flash) at board.mount_point."""
    import vfs

    dev = _BlockDev(board.internal)
    if format_if_blank:
        vfs.VfsLfs2.mkfs(dev, **_lfs_args(board.internal))
    fs = vfs.VfsLfs2(dev, mtime=False, **_lfs_args(board.internal))
    vfs.mount(fs, board.mount_point)


SimBoard.mount = mount

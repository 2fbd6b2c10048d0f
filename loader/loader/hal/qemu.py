# The QEMU mps2 Cortex-M boards (qemu-mps2-an385, -an386) running the real MicroPython firmware.
# They have no flash chips: both flash devices live in the 16 MiB RAM at 0x21000000, which the
# harness backs with a file (QEMU's memory-backend-file), so every write persists at once, as on
# flash. This HAL gives that memory NOR semantics, as stage0's QEMU port does: erase sets a sector
# to 0xFF, program stays inside one page and only clears bits (programming an erased bit back is a
# FlashProgramError, as in the simulator), and counts each erase and program as one operation.
#
# Power cuts: the harness may preload stage0's control block (docs/stage0.md, "QEMU": magic
# "SCUT", cut at operation N, half-done flag, operations so far) at CUT_WORD. stage0 and this HAL
# count operations in the same block, so a cut number covers a whole power-on: stage0's copy of a
# loader image and the loader's install alike. At the cut, a half-done operation applies half its
# bytes, PowerCut is raised, and nothing more is written. The boot entry (suture_boot) then
# prints the POWER CUT line and stops the machine.
#
# The flash map, identity and trust anchors come from the frozen `board_config` that
# `suture board firmware-config` renders from boards/<board>/board.toml (see hal/mcu.py for the
# fields common to every board) plus INT_BASE, INT_SIZE, FS_REGION = (offset, size) of littlefs
# on the internal flash, LOADER_REGION = (offset, size) of the loader slot there, EXT_BASE and
# CUT_WORD.
import machine
import uctypes
from micropython import const

from loader.errors import FlashError, FlashProgramError, PowerCut, Reset
from loader.flash import Region

_CUT_MAGIC = const(0x54554353)


class _Supply:
    """stage0's power-cut control block, shared by both flash devices."""

    def __init__(self, addr):
        self.addr = addr
        self.dead = False
        self.heap_peak = 0

    def ops(self):
        return machine.mem32[self.addr + 12]

    def next_op(self):
        """Count one operation: -1 to run it fully, else how many bytes to apply first."""
        if self.dead:
            raise PowerCut()
        a = self.addr
        if machine.mem32[a] != _CUT_MAGIC:
            return -1
        n = machine.mem32[a + 12] + 1
        machine.mem32[a + 12] = n
        if n == machine.mem32[a + 4]:
            self.dead = True
            return 1 if machine.mem32[a + 8] else 0
        return -1


class RamNor:
    """NOR flash semantics over a memory range that persists (a file-backed RAM in QEMU)."""

    def __init__(self, base, size, sector, page, supply):
        self.size = size
        self.sector = sector
        self.page = page
        self.mem = uctypes.bytearray_at(base, size)
        self.supply = supply
        self._ff = b"\xff" * sector

    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError("flash access outside the chip")

    def read(self, addr, buf):
        self._check(addr, len(buf))
        if self.supply.dead:
            raise PowerCut()
        buf[:] = self.mem[addr : addr + len(buf)]

    def erase(self, addr):
        if addr % self.sector:
            raise FlashError("erase address not sector-aligned")
        self._check(addr, self.sector)
        half = self.supply.next_op()
        if half >= 0:
            if half:
                n = self.sector // 2
                self.mem[addr : addr + n] = self._ff[:n]
            raise PowerCut()
        self.mem[addr : addr + self.sector] = self._ff

    def program(self, addr, data):
        n = len(data)
        self._check(addr, n)
        if n > self.page or (addr % self.page) + n > self.page:
            raise FlashError("program crosses a page boundary")
        o = int.from_bytes(self.mem[addr : addr + n], "little")
        d = int.from_bytes(data, "little")
        if o & d != d:
            raise FlashProgramError("program over non-erased bits at 0x%x" % addr)
        half = self.supply.next_op()
        if half >= 0:
            if half:
                k = n // 2
                self.mem[addr : addr + k] = data[:k]
            raise PowerCut()
        self.mem[addr : addr + n] = data


class _BlockDev:
    """littlefs block device over a region of the internal flash (erase through ioctl 6)."""

    def __init__(self, region):
        self.region = region
        self.sector = region.sector

    def readblocks(self, block, buf, off=0):
        self.region.read(block * self.sector + off, buf)

    def writeblocks(self, block, buf, off=None):
        if off is None:
            self.region.erase(block * self.sector)
            off = 0
        self.region.program(block * self.sector + off, buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.region.size // self.sector
        if op == 5:
            return self.sector
        if op == 6:
            self.region.erase(arg * self.sector)
            return 0
        return 0




class QemuBoard:
    def __init__(self):
        import board_config as cfg

        self.name = cfg.NAME
        self.supply = _Supply(cfg.CUT_WORD)
        self.internal = RamNor(cfg.INT_BASE, cfg.INT_SIZE, cfg.EXT_SECTOR, cfg.EXT_PAGE,
                               self.supply)
        self.external = RamNor(cfg.EXT_BASE, cfg.EXT_SIZE, cfg.EXT_SECTOR, cfg.EXT_PAGE,
                               self.supply)
        self._regions = {}
        for name, (off, size) in cfg.EXT_REGIONS.items():
            self._regions[name] = Region(self.external, off, size, name)
        off, size = cfg.FS_REGION
        self.fs_region = Region(self.internal, off, size, "littlefs")
        # the loader slot (stage0 writes it; the loader only reads it: a loader-image delta's
        # source)
        slot = getattr(cfg, "LOADER_REGION", None)
        if slot is not None:
            self._regions["loader"] = Region(self.internal, slot[0], slot[1], "loader")
        self.vendor_id = cfg.VENDOR_ID
        self.class_id = cfg.CLASS_ID
        self.device_id = cfg.DEVICE_ID
        self.keys = cfg.KEYS
        self.max_trial_boots = cfg.MAX_TRIAL_BOOTS
        self.mount_point = cfg.MOUNT
        self.loader_address = cfg.LOADER_ADDRESS

    def region(self, name):
        return self._regions[name]

    def mount(self, format_if_blank=False):
        """Mount littlefs at mount_point (formatting it first when asked)."""
        import suture_qemu
        import vfs

        r = self.fs_region  # in C: nothing allocates, so no GC runs finalisers inside littlefs
        dev = suture_qemu.NorBlockDev(_BlockDev(r), r.dev.mem, r.offset, r.size, r.sector,
                                      r.page, self.supply.addr)
        args = {"readsize": 64, "progsize": self.fs_region.page, "lookahead": 32}
        if format_if_blank:
            try:
                vfs.umount(self.mount_point)  # formatted at the first boot: format again
            except OSError:
                pass
            vfs.VfsLfs2.mkfs(dev, **args)
        try:
            vfs.mount(vfs.VfsLfs2(dev, mtime=False, **args), self.mount_point)
        except OSError:
            # Erased from the factory (both superblocks blank), as MicroPython's ports do at a
            # first boot: format it. Anything else is left as it is for the loader to report.
            if format_if_blank or not self._fs_blank():
                raise
            print("suture: formatting the blank filesystem")
            vfs.VfsLfs2.mkfs(dev, **args)
            vfs.mount(vfs.VfsLfs2(dev, mtime=False, **args), self.mount_point)
        import os

        os.chdir(self.mount_point)  # relative paths land in littlefs, as on a real board

    def _fs_blank(self):
        buf = bytearray(256)
        for off in range(0, 2 * self.fs_region.sector, len(buf)):
            self.fs_region.read(off, buf)
            for b in buf:
                if b != 0xFF:
                    return False
        return True

    def ops(self):
        return self.supply.ops()

    def reset(self):
        raise Reset()

    def feed_watchdog(self):
        pass

    def ticks_ms(self):
        import time

        return time.ticks_ms()

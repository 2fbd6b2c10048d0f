# A real board: the external flash behind machine.SPI (a JEDEC SPI NOR driver), littlefs on the
# internal flash as the port mounts it, machine.reset and machine.WDT. The flash map comes from
# the frozen module `board_config` generated from boards/<board>/board.toml by
# `suture board firmware-config` (suture.firmware.board_config), which defines:
#   NAME, SPI_ID, SPI_BAUD, SPI_CS, SPI_PINS ((sck, mosi, miso) or () for fixed-pin buses),
#   EXT_SIZE, EXT_SECTOR, EXT_PAGE,
#   EXT_REGIONS = {"journal": (offset, size), "nvm": ..., "staging": ..., "backup": ...},
#   VENDOR_ID, CLASS_ID, DEVICE_ID (bytes), KEYS (list of 65-byte P-256 points),
#   MAX_TRIAL_BOOTS, MOUNT (where the port mounts littlefs, e.g. "/flash"), WDT_MS.
from micropython import const

from loader.flash import Region

_CMD_READ = const(0x03)
_CMD_WREN = const(0x06)
_CMD_RDSR = const(0x05)
_CMD_PP = const(0x02)
_CMD_SE = const(0x20)


class SpiNor:
    """JEDEC SPI NOR flash: 24-bit addresses, 4 KiB sector erase (0x20), page program (0x02)."""

    def __init__(self, spi, cs, size, sector=4096, page=256):
        self.spi = spi
        self.cs = cs
        self.size = size
        self.sector = sector
        self.page = page
        self._cmd = bytearray(4)
        self._sr = bytearray(1)

    def _addr_cmd(self, cmd, addr):
        c = self._cmd
        c[0] = cmd
        c[1] = (addr >> 16) & 0xFF
        c[2] = (addr >> 8) & 0xFF
        c[3] = addr & 0xFF
        return c

    def _wait(self):
        while True:
            self.cs(0)
            self.spi.write(bytes((_CMD_RDSR,)))
            self.spi.readinto(self._sr)
            self.cs(1)
            if not self._sr[0] & 1:
                return

    def _wren(self):
        self.cs(0)
        self.spi.write(bytes((_CMD_WREN,)))
        self.cs(1)

    def read(self, addr, buf):
        self.cs(0)
        self.spi.write(self._addr_cmd(_CMD_READ, addr))
        self.spi.readinto(buf)
        self.cs(1)

    def erase(self, addr):
        self._wren()
        self.cs(0)
        self.spi.write(self._addr_cmd(_CMD_SE, addr))
        self.cs(1)
        self._wait()

    def program(self, addr, data):
        self._wren()
        self.cs(0)
        self.spi.write(self._addr_cmd(_CMD_PP, addr))
        self.spi.write(data)
        self.cs(1)
        self._wait()


class McuBoard:
    def __init__(self):
        import board_config as cfg
        import machine

        self.name = cfg.NAME
        pins = getattr(cfg, "SPI_PINS", ())
        if pins:
            pin = machine.Pin
            spi = machine.SPI(cfg.SPI_ID, baudrate=cfg.SPI_BAUD, sck=pin(pins[0]),
                              mosi=pin(pins[1]), miso=pin(pins[2]))
        else:
            spi = machine.SPI(cfg.SPI_ID, baudrate=cfg.SPI_BAUD)
        cs = machine.Pin(cfg.SPI_CS, machine.Pin.OUT, value=1)
        self.external = SpiNor(spi, cs, cfg.EXT_SIZE, cfg.EXT_SECTOR, cfg.EXT_PAGE)
        self._regions = {}
        for name, (off, size) in cfg.EXT_REGIONS.items():
            self._regions[name] = Region(self.external, off, size, name)
        self.vendor_id = cfg.VENDOR_ID
        self.class_id = cfg.CLASS_ID
        self.device_id = cfg.DEVICE_ID
        self.keys = cfg.KEYS
        self.max_trial_boots = cfg.MAX_TRIAL_BOOTS
        self.mount_point = cfg.MOUNT
        self.loader_address = getattr(cfg, "LOADER_ADDRESS", None)
        self._wdt = machine.WDT(timeout=cfg.WDT_MS)
        self._machine = machine

    def region(self, name):
        return self._regions[name]

    def mount(self, format_if_blank=False):
        """The port mounts littlefs at boot (its _boot.py); nothing to do here."""

    def ops(self):
        return 0

    def reset(self):
        self._machine.reset()

    def feed_watchdog(self):
        self._wdt.feed()

    def ticks_ms(self):
        import time

        return time.ticks_ms()

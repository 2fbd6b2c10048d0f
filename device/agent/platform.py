# What the agent needs from the board beyond the loader's HAL: wall-clock time, sleeping, a
# random source for jitter, and (on the simulator) being told to stop.
#
# On the simulator a ward may run time faster than real time: SUTURE_CLOCK="T0,SCALE" makes
# the clock read T0 + (real - T0) * SCALE, and sleep(s) last s / SCALE real seconds; the
# scheduler of the same ward uses the same clock. A file named `stop` in the device folder
# ends the agent's loop.
import os
import time


class Clock:
    """The agent's clock: the device's time plus an offset, which a verified resync from the
    scheduler sets (client.py, resync_to). SUTURE_CLOCK="t0,scale[,skew]" runs it `scale` times
    faster from t0 (the ward simulator) and starts it `skew` seconds wrong (a device with no
    RTC).

    Kept in integer milliseconds: most boards' MicroPython has single-precision floats (the
    Pico, the nRF52840, the pyboard, QEMU), whose step at today's Unix time is 128 s, so a
    wall clock in float seconds would stand still for minutes at a time."""

    def __init__(self, spec=None):
        self.t0 = 0.0
        self.scale = 1.0
        self.skew = 0.0
        self.offset_ms = 0
        if spec is None:
            try:
                spec = os.getenv("SUTURE_CLOCK")
            except AttributeError:
                spec = None
        self.scaled = bool(spec)
        if spec:
            parts = spec.split(",")
            self.t0 = float(parts[0])
            self.scale = float(parts[1])
            if len(parts) > 2:
                self.skew = float(parts[2])

    @property
    def offset(self):
        """Whole seconds the resync moved the clock by."""
        return self.offset_ms // 1000

    def _local_ms(self):
        """The device's own time in ms (scaled on the simulator), an int."""
        if self.scaled:  # the unix port: double-precision floats
            r = time.time_ns() / 1e9
            return int((self.t0 + (r - self.t0) * self.scale + self.skew) * 1000)
        try:
            return time.time_ns() // 1000000
        except AttributeError:
            pass
        try:
            return int(time.time()) * 1000
        except AttributeError:
            return _uptime.ms_total()

    def now_ms(self):
        return self._local_ms() + self.offset_ms

    def now_f(self):
        return self.now_ms() / 1000

    def now(self):
        return self.now_ms() // 1000

    def mono(self):
        """For durations: the device's own time, which a resync does not move."""
        return self._local_ms() / 1000

    def now_us(self):
        return self.now_ms() * 1000

    def resync_to(self, server_time):
        """Set the clock to the scheduler's ``server_time`` (whole seconds)."""
        self.offset_ms += server_time * 1000 - self.now_ms()

    def sleep(self, seconds):
        if seconds > 0:
            time.sleep(seconds / self.scale)


class _Uptime:
    """Seconds since power-on from ticks_ms (which wraps), for boards without an RTC: their
    wall clock starts at 0 and the scheduler's signed resync sets it (Clock.offset)."""

    def __init__(self):
        self.last = time.ticks_ms()
        self.ms = 0

    def ms_total(self):
        now = time.ticks_ms()
        self.ms += time.ticks_diff(now, self.last)
        self.last = now
        return self.ms


_uptime = _Uptime()


def random_below(n):
    """A uniform-enough integer in [0, n) for jitter."""
    if n <= 1:
        return 0
    try:
        b = os.urandom(4)
    except AttributeError:  # no os.urandom on this port
        import random

        return random.getrandbits(30) % n
    return int.from_bytes(b, "little") % n


def stop_requested():
    try:
        os.stat("stop")
        return True
    except OSError:
        return False

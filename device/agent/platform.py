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
    """The agent's clock: the device's time plus `offset`, which a verified resync from the
    scheduler sets (client.py). SUTURE_CLOCK="t0,scale[,skew]" runs it `scale` times faster
    from t0 (the ward simulator) and starts it `skew` seconds wrong (a device with no RTC)."""

    def __init__(self, spec=None):
        self.t0 = 0.0
        self.scale = 1.0
        self.skew = 0.0
        self.offset = 0.0
        if spec is None:
            try:
                spec = os.getenv("SUTURE_CLOCK")
            except AttributeError:
                spec = None
        if spec:
            parts = spec.split(",")
            self.t0 = float(parts[0])
            self.scale = float(parts[1])
            if len(parts) > 2:
                self.skew = float(parts[2])

    def _real(self):
        try:
            return time.time_ns() / 1e9
        except AttributeError:
            pass
        try:
            return float(time.time())
        except AttributeError:
            return _uptime.seconds()

    def now_f(self):
        r = self._real()
        return self.t0 + (r - self.t0) * self.scale + self.skew + self.offset

    def now(self):
        return int(self.now_f())

    def mono(self):
        """For durations: the device's own time, which a resync does not move."""
        return self.now_f() - self.offset

    def now_us(self):
        return int(self.now_f() * 1000000)

    def sleep(self, seconds):
        if seconds > 0:
            time.sleep(seconds / self.scale)


class _Uptime:
    """Seconds since power-on from ticks_ms (which wraps), for boards without an RTC: their
    wall clock starts at 0 and the scheduler's signed resync sets it (Clock.offset)."""

    def __init__(self):
        self.last = time.ticks_ms()
        self.ms = 0

    def seconds(self):
        now = time.ticks_ms()
        self.ms += time.ticks_diff(now, self.last)
        self.last = now
        return self.ms / 1000


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

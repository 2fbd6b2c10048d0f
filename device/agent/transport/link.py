# The device link: the transport's request() carried as frames over a byte stream (a UART, a
# USB CDC port, a pty on the simulator) to a gateway on the host that makes the HTTP request for
# the device (suture.gateway). For boards without IP. Byte-exact format:
# docs/formats/device-link.md. In short, every frame is
#     type (1) | request id (u16 LE) | sequence (u16 LE) | payload (0..1024) | CRC-32 (u32 LE)
# COBS-encoded and followed by one 0x00 delimiter. The device sends a request as Q (head), B
# (body) and E (end) frames, then pulls the response with A frames (next sequence wanted, window,
# resend flag); the gateway answers S (head), B (body), E (end), or X (no such request).
#
# Loss and damage: a frame that does not decode, fails its CRC, carries another request id or an
# unexpected sequence number is dropped; the device asks for the missing frame again (A with
# the resend flag) when it sees a gap or damage, or after a silence, at most MAX_TRIES times
# without progress, then raises TransportError (the download layer resumes with a Range request
# from what is staged). Nothing here is trusted: the scheduler's MAC, the schedule's signature
# and the SUIT checks above this layer catch whatever a gateway alters.
#
# Memory: a few fixed buffers (about 3.5 KiB) allocated once; response bodies are decoded frame
# by frame and copied into the caller's buffer.
import struct
import time
from binascii import crc32

from micropython import const

from agent.errors import TransportError
from agent.transport import Transport

MAX_PAYLOAD = const(1024)  # payload bytes per frame
_OVER = const(9)  # type, request id, sequence, CRC-32
MAX_FRAME = const(1033)  # a decoded frame: _OVER + MAX_PAYLOAD
MAX_ENCODED = const(1039)  # COBS of MAX_FRAME bytes (+1 per 254) and the 0x00 delimiter
WINDOW = const(4)  # response frames the gateway may send ahead of the device

T_REQUEST = const(0x51)  # 'Q'
T_BODY = const(0x42)  # 'B'
T_END = const(0x45)  # 'E'
T_ACK = const(0x41)  # 'A'
T_STATUS = const(0x53)  # 'S'
T_NONE = const(0x58)  # 'X'
F_RESEND = const(1)

# recv() results
TIMEOUT = const(0)
FRAME = const(1)
DAMAGED = const(2)

MAX_TRIES = const(8)
_KEEP = ("content-length", "content-range", "etag", "content-type", "date",
         "suture-schedule-number", "suture-server-time", "suture-counter-floor",
         "suture-resync-mac")


def cobs_encode(src, n, dst):
    """COBS of src[:n] into dst (at least n + n // 254 + 1 bytes); returns the length written
    (no delimiter)."""
    smv = memoryview(src)
    dmv = memoryview(dst)
    w = 0
    i = 0
    full = False  # the last block written was a full 0xFF block
    while True:
        z = src.find(b"\x00", i, n)
        end = z if z >= 0 else n
        while end - i >= 254:
            dst[w] = 0xFF
            dmv[w + 1 : w + 255] = smv[i : i + 254]
            w += 255
            i += 254
            full = True
        k = end - i
        if z < 0 and k == 0 and full:
            return w
        dst[w] = k + 1
        if k:
            dmv[w + 1 : w + 1 + k] = smv[i:end]
        w += k + 1
        full = False
        if z < 0:
            return w
        i = z + 1


class Framer:
    """Frames over a link object with write(data) and readinto(buf, timeout_ms) -> n (0 when
    nothing came in timeout_ms). Decodes COBS as bytes arrive, into one frame buffer."""

    def __init__(self, link, raw_size=256):
        self.link = link
        self.raw = bytearray(raw_size)
        self.rmv = memoryview(self.raw)
        self.rpos = 0
        self.rfill = 0
        self.out = bytearray(MAX_FRAME)
        self.omv = memoryview(self.out)
        self.tx = bytearray(MAX_FRAME)
        self.txe = bytearray(MAX_ENCODED)
        self._reset()
        self.damaged = 0  # frames dropped because they did not decode or check
        # the last frame received (valid after recv() returned FRAME)
        self.kind = 0
        self.rid = 0
        self.seq = 0
        self.plen = 0

    def _reset(self):
        self.olen = 0
        self.left = 0  # data bytes left in the current COBS block
        self.pend0 = False  # a zero to insert before the next block
        self.started = False
        self.bad = False

    # ---- sending -------------------------------------------------------------------------
    def send(self, kind, rid, seq, payload=None):
        tx = self.tx
        n = 0 if payload is None else len(payload)
        if n > MAX_PAYLOAD:
            raise TransportError("link payload of %d bytes" % n)
        tx[0] = kind
        struct.pack_into("<HH", tx, 1, rid & 0xFFFF, seq & 0xFFFF)
        if n:
            memoryview(tx)[5 : 5 + n] = payload
        struct.pack_into("<I", tx, 5 + n, crc32(memoryview(tx)[: 5 + n]) & 0xFFFFFFFF)
        m = cobs_encode(tx, n + _OVER, self.txe)
        self.txe[m] = 0
        self.link.write(memoryview(self.txe)[: m + 1])

    def delimit(self):
        """One lone delimiter: the peer drops any partial frame it holds."""
        self.link.write(b"\x00")

    # ---- receiving -----------------------------------------------------------------------
    def feed(self):
        """Decode buffered bytes up to the end of one frame: FRAME, DAMAGED, or TIMEOUT when
        the buffered bytes ran out first (call again after more arrived)."""
        raw = self.raw
        i = self.rpos
        end = self.rfill
        while i < end:
            if self.left:
                stop = i + self.left
                if stop > end:
                    stop = end
                z = raw.find(b"\x00", i, stop)
                if z >= 0:
                    stop = z
                k = stop - i
                if k:
                    if not self.bad:
                        if self.olen + k > MAX_FRAME:
                            self.bad = True
                        else:
                            self.omv[self.olen : self.olen + k] = self.rmv[i:stop]
                            self.olen += k
                    self.left -= k
                    i = stop
                if z < 0:
                    continue
                self.bad = True  # a delimiter inside a block: the frame was cut short
            c = raw[i]
            i += 1
            if c:
                self.started = True
                if self.pend0 and not self.bad:
                    if self.olen >= MAX_FRAME:
                        self.bad = True
                    else:
                        self.out[self.olen] = 0
                        self.olen += 1
                self.left = c - 1
                self.pend0 = c != 0xFF
                continue
            # the delimiter: a frame ends
            if not self.started:
                continue  # an empty frame (a lone delimiter) is ignored
            self.rpos = i
            ok = not self.bad and not self.left and self._check()
            self._reset()
            if ok:
                return FRAME
            self.damaged += 1
            return DAMAGED
        self.rpos = end
        return TIMEOUT

    def _check(self):
        n = self.olen
        if n < _OVER:
            return False
        want = struct.unpack_from("<I", self.out, n - 4)[0]
        if crc32(self.omv[: n - 4]) & 0xFFFFFFFF != want:
            return False
        self.kind = self.out[0]
        self.rid, self.seq = struct.unpack_from("<HH", self.out, 1)
        self.plen = n - _OVER
        return True

    def payload(self):
        return self.omv[5 : 5 + self.plen]

    def recv(self, timeout_ms):
        """The next frame: FRAME (kind, rid, seq, payload() set), DAMAGED, or TIMEOUT when
        no whole frame arrived within timeout_ms."""
        start = time.ticks_ms()
        while True:
            r = self.feed()
            if r != TIMEOUT:
                return r
            left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
            n = self.link.readinto(self.rmv, left if left > 0 else 0)
            self.rpos = 0
            self.rfill = n if n else 0
            if not n and left <= 0:
                return TIMEOUT


class Response:
    def __init__(self, t, status, headers):
        self.t = t
        self.status = status
        self.headers = headers
        cl = headers.get("content-length")
        try:
            self.length = int(cl) if cl is not None else None
        except ValueError:
            raise TransportError("bad Content-Length")
        self.got = 0
        self._pos = 0  # pending payload bytes in the framer's buffer: [_pos, _end)
        self._end = 0
        self._done = False

    def readinto(self, buf):
        mv = memoryview(buf)
        while self._pos >= self._end:
            if self._done:
                return 0
            f = self.t.pull(self)
            if f.kind == T_END:
                self._done = True
                if self.length is not None and self.got != self.length:
                    raise TransportError("link body ended %d bytes early"
                                         % (self.length - self.got))
                return 0
            if f.kind != T_BODY:
                raise TransportError("link: unexpected frame in a body")
            self.got += f.plen
            if self.length is not None and self.got > self.length:
                raise TransportError("link body longer than its Content-Length")
            self._pos = 5
            self._end = 5 + f.plen
        n = self._end - self._pos
        if n > len(mv):
            n = len(mv)
        mv[:n] = self.t.f.omv[self._pos : self._pos + n]
        self._pos += n
        return n

    def read_all(self, limit):
        from agent.errors import ResponseTooLarge

        if self.length is not None and self.length > limit:
            raise ResponseTooLarge("body of %d bytes (limit %d)" % (self.length, limit))
        out = bytearray()
        chunk = bytearray(256)
        while True:
            n = self.readinto(chunk)
            if not n:
                return bytes(out)
            out += chunk[:n]
            if len(out) > limit:
                raise ResponseTooLarge("body over %d bytes" % limit)

    def close(self):
        """Stop pulling: the gateway drops this response at the next request."""
        self._done = True
        self._pos = self._end = 0
        if self.t.current is self:
            self.t.current = None


class LinkTransport(Transport):
    def __init__(self, link, timeout_ms=2000, tries=MAX_TRIES, window=WINDOW, raw_size=256):
        from agent.platform import random_below

        self.f = Framer(link, raw_size)
        self.timeout_ms = timeout_ms
        self.tries = tries
        self.window = window
        self.rid = random_below(0x10000)  # a reset of the device starts elsewhere
        self.current = None
        self.next = 0  # the response frame wanted next
        self.resends = 0  # frames asked for again (figures for tests and benchmarks)
        self._req = None  # (head, body) of the request in flight, to send again
        self._ack = bytearray(2)

    def request(self, method, url, headers=None, body=None):
        head = "%s %s\n" % (method, url)
        if headers:
            for k in headers:
                head += "%s: %s\n" % (k, headers[k])
        head = head.encode()
        if len(head) > MAX_PAYLOAD:
            raise TransportError("request head over %d bytes" % MAX_PAYLOAD)
        if self.current is not None:
            self.current.close()
        self.rid = (self.rid + 1) & 0xFFFF
        self.next = 0
        self._req = (head, body)
        self.f.delimit()
        self._send_request()
        f = self.pull(None)
        if f.kind != T_STATUS:
            raise TransportError("link: expected a response head")
        try:
            lines = bytes(f.payload()).decode().split("\n")
            status = int(lines[0])
        except (UnicodeError, ValueError):
            raise TransportError("link: bad response head")
        hdrs = {}
        for line in lines[1:]:
            i = line.find(":")
            if i > 0:
                name = line[:i].strip().lower()
                if name in _KEEP:
                    hdrs[name] = line[i + 1 :].strip()
        r = Response(self, status, hdrs)
        if status == 304 or status == 204 or 100 <= status < 200:
            r.length = 0
        self.current = r
        return r

    def _send_request(self):
        head, body = self._req
        f = self.f
        f.send(T_REQUEST, self.rid, 0, head)
        seq = 1
        if body:
            mv = memoryview(body)
            for i in range(0, len(mv), MAX_PAYLOAD):
                f.send(T_BODY, self.rid, seq, mv[i : i + MAX_PAYLOAD])
                seq += 1
        f.send(T_END, self.rid, seq)
        self._pull_from(F_RESEND)

    def _pull_from(self, flags):
        self._ack[0] = self.window
        self._ack[1] = flags
        self.f.send(T_ACK, self.rid, self.next, self._ack)

    def pull(self, response):
        """The next in-sequence frame of the response in flight (the framer holds it)."""
        f = self.f
        tries = 0
        nak = -1  # the sequence number already asked for again after a gap or damage
        while True:
            r = f.recv(self.timeout_ms)
            if r == FRAME:
                k = f.kind
                if f.rid != self.rid or (k != T_STATUS and k != T_BODY and k != T_END
                                         and k != T_NONE):
                    continue  # stale, or not a frame a gateway sends
                if k == T_NONE:
                    if self.next:
                        raise TransportError("the gateway lost the request")
                    r = TIMEOUT  # it never had the whole request: send it again
                elif f.seq == self.next:
                    self.next += 1
                    if k != T_END:
                        self._pull_from(0)
                    return f
                else:
                    if f.seq > self.next and nak != self.next:
                        nak = self.next
                        self.resends += 1
                        self._pull_from(F_RESEND)
                    continue
            tries += 1
            if tries >= self.tries:
                raise TransportError("the gateway did not answer (link: %d tries)" % tries)
            if r == DAMAGED:
                if nak != self.next:
                    nak = self.next
                    self.resends += 1
                    self._pull_from(F_RESEND)
                continue
            nak = -1
            self.resends += 1
            if self.next == 0:
                self._send_request()
            else:
                self._pull_from(F_RESEND)


class QemuUart1:
    """The QEMU mps2 boards' second UART, through the firmware's native suture_qemu module."""

    def __init__(self):
        import suture_qemu

        self._m = suture_qemu

    def write(self, data):
        self._m.uart1_write(data)

    def readinto(self, buf, timeout_ms):
        # the first byte within timeout_ms, then whatever follows without a 2 ms gap
        mv = memoryview(buf)
        n = self._m.uart1_readinto(mv[:1], timeout_ms)
        if n and len(mv) > 1:
            n += self._m.uart1_readinto(mv[1:], 2)
        return n


class TtyLink:
    """A serial device node on a unix host (the simulated board: a pty to the gateway)."""

    def __init__(self, path):
        import select

        self.file = open(path, "r+b")  # noqa: SIM115  (the link's line, open as long as it)
        try:
            import termios

            termios.setraw(self.file.fileno())
            a = termios.tcgetattr(self.file.fileno())
            a[6][6] = 0  # VMIN: a read returns what is there
            a[6][5] = 0  # VTIME
            termios.tcsetattr(self.file.fileno(), termios.TCSANOW, a)
        except (ImportError, OSError, AttributeError, IndexError, TypeError):
            pass  # the host side set the line up
        self.poll = select.poll()
        self.poll.register(self.file, select.POLLIN)

    def write(self, data):
        mv = memoryview(data)
        while len(mv):
            n = self.file.write(mv)
            mv = mv[n if n else 0 :]

    def readinto(self, buf, timeout_ms):
        if not self.poll.poll(timeout_ms):
            return 0
        return self.file.readinto(buf) or 0


class UartLink:
    """machine.UART on a real board (a Pico's UART0, a pyboard's UART): `rxbuf` must hold a
    window of frames (WINDOW * MAX_ENCODED bytes)."""

    def __init__(self, uart):
        self.uart = uart

    def write(self, data):
        self.uart.write(data)

    def readinto(self, buf, timeout_ms):
        start = time.ticks_ms()
        while not self.uart.any():
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                return 0
            time.sleep_ms(1)
        return self.uart.readinto(buf, min(len(buf), self.uart.any())) or 0


def from_spec(spec):
    """The link a provisioning record names: "qemu" (QEMU's UART1), "tty:/dev/path", or
    "uart:ID:BAUD" (machine.UART)."""
    if spec == "qemu":
        return QemuUart1()
    if spec.startswith("tty:"):
        return TtyLink(spec[4:])
    if spec.startswith("uart:"):
        import machine

        parts = spec.split(":")
        return UartLink(machine.UART(int(parts[1]), int(parts[2]),
                                     rxbuf=WINDOW * MAX_ENCODED + 64))
    raise TransportError("unknown link %r" % spec)

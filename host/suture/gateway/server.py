"""The gateway: it speaks the device link (docs/formats/device-link.md) with each device on a
byte stream and makes the HTTP requests the device frames, to its one upstream scheduler only
(any other URL is answered 403 without leaving the host).

A session serves one stream: it assembles a request from Q, B and E frames, forwards it once
(a request sent again with the same id and content is not forwarded twice: the scheduler
would refuse its counter), and answers the device's A (pull) frames from the response as it
streams in, keeping only the frames the device has not acknowledged. The gateway is not
trusted by the device: everything it relays is checked end to end (scheduler MAC, schedule
signature, SUIT).

Streams: TCP on the loopback address (QEMU connects a board's UART with
``-serial tcp:127.0.0.1:PORT``: :class:`LinkGateway`) and serial ports (:class:`SerialGateway`,
glob patterns, a port that appears later or comes back is served again).
"""

from __future__ import annotations

import glob
import hashlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from suture.gateway.frames import (
    ACK,
    BODY,
    END,
    F_RESEND,
    MAX_PAYLOAD,
    NONE,
    REQUEST,
    STATUS,
    FrameError,
    FrameReader,
    GatewayError,
    LinkFrame,
    encode_frame,
)

# Response headers the device reads (device/agent/transport/link.py keeps the same list).
FORWARDED = ("content-length", "content-range", "etag", "content-type", "date",
             "suture-schedule-number", "suture-server-time", "suture-counter-floor",
             "suture-resync-mac")
_HOP = frozenset({"host", "connection", "content-length", "transfer-encoding", "keep-alive"})
MAX_REQUEST_BODY = 64 * 1024
MAX_WINDOW = 16
MAX_SEQ = 0xFFFF
RECENT = 16  # completed requests remembered, so a stale copy is not forwarded again


class Tamper(Protocol):
    """Fault injection for the tests only: what a hostile gateway would relay instead.
    ``direction`` is "request" (the body the device sent, before it goes upstream) or
    "response" (each chunk of the scheduler's body, before it is framed for the device); the
    result replaces ``data``. The device and the scheduler must notice (docs/security.md)."""

    def __call__(self, direction: str, method: str, path: str, data: bytes) -> bytes: ...


class ByteStream(Protocol):
    name: str

    def read(self) -> bytes:
        """Some bytes, or b"" after a short wait; EOFError or OSError when the peer is gone."""
        ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass
class RequestRecord:
    """One device request as the gateway relayed it (a log line)."""

    port: str
    device: str
    method: str
    path: str
    status: int
    bytes: int
    seconds: float
    resent_frames: int
    outcome: str  # "done" (the device got the whole response), "abandoned", "failed"

    def text(self) -> str:
        return (f"{self.port} {self.device or '-'}: {self.method} {self.path} -> {self.status} "
                f"({self.bytes} B in {self.seconds:.2f} s, {self.resent_frames} frames resent"
                f"{'' if self.outcome == 'done' else ', ' + self.outcome})")

    def json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class GatewayStats:
    connections: int = 0
    requests: int = 0  # forwarded upstream (or refused)
    duplicates: int = 0  # requests the device sent again, not forwarded twice
    refused: int = 0
    bytes_to_devices: int = 0  # body bytes, each counted once
    wire_bytes_out: int = 0
    wire_bytes_in: int = 0
    frames_resent: int = 0
    damaged: int = 0  # frames from devices dropped (bad COBS, CRC, length, type)
    unknown: int = 0  # pulls for a request the gateway does not have (answered X)
    errors: list[str] = field(default_factory=list)


class Upstream:
    """The one scheduler the gateway serves, over HTTP(S)."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GatewayError(f"upstream {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout_s, headers={"Accept-Encoding": "identity"})

    def allows(self, url: str) -> bool:
        return url == self.url or url.startswith(self.url + "/")

    def close(self) -> None:
        self.client.close()


class _Response:
    """The frames of one response, produced lazily from the upstream stream; frames the
    device acknowledged are forgotten."""

    def __init__(self, rid: int, key: bytes, frames: Iterator[LinkFrame],
                 record: RequestRecord) -> None:
        self.rid = rid
        self.key = key
        self._frames = frames
        self._kept: dict[int, bytes] = {}
        self.made = 0  # frames produced so far
        self.sent_upto = 0  # frames below this were sent at least once
        self.ended = False  # the E frame was produced
        self.failed = False  # the upstream broke before the end
        self.record = record
        self.started = time.monotonic()
        self.logged = False

    def get(self, seq: int) -> bytes | None:
        while self.made <= seq and not self.ended and not self.failed:
            try:
                frame = next(self._frames)
            except StopIteration:
                self.failed = True
                break
            except (httpx.HTTPError, OSError) as e:
                self.failed = True
                self.record.outcome = f"failed: {e}"
                break
            data = frame.encode()
            # a response starts after a lone delimiter: whatever partial frame the device holds
            # (a reset, noise) ends there instead of spoiling the head
            self._kept[self.made] = b"\x00" + data if frame.kind == STATUS else data
            if frame.kind == BODY:
                self.record.bytes += len(frame.payload)
            self.made += 1
            if frame.kind == END:
                self.ended = True
        return self._kept.get(seq)

    def forget_below(self, seq: int) -> None:
        for s in [s for s in self._kept if s < seq]:
            del self._kept[s]

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


class LinkSession:
    """The gateway's side of the link with one device on one stream."""

    def __init__(self, stream: ByteStream, upstream: Upstream, stats: GatewayStats,
                 lock: threading.Lock,
                 log: Callable[[RequestRecord], None] | None = None,
                 tamper: Tamper | None = None) -> None:
        self.stream = stream
        self.tamper = tamper
        self.upstream = upstream
        self.stats = stats
        self.lock = lock
        self.log = log
        self.reader = FrameReader()
        self.current: _Response | None = None
        self.recent: deque[bytes] = deque(maxlen=RECENT)
        self._asm: tuple[int, bytes, bytearray, int] | None = None  # rid, head, body, next seq
        self.device = ""

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    data = self.stream.read()
                except (EOFError, OSError):
                    return
                if not data:
                    continue
                with self.lock:
                    self.stats.wire_bytes_in += len(data)
                for item in self.reader.feed(data):
                    if isinstance(item, FrameError):
                        with self.lock:
                            self.stats.damaged += 1
                        continue
                    self.on_frame(item)
        finally:
            self._drop_current("abandoned")

    # ---- frames from the device ------------------------------------------------------------
    def on_frame(self, f: LinkFrame) -> None:
        if f.kind == REQUEST:
            self._asm = (f.rid, f.payload, bytearray(), 1) if f.seq == 0 else None
        elif f.kind in (BODY, END):
            asm = self._asm
            if asm is None or asm[0] != f.rid or asm[3] != f.seq:
                self._asm = None  # a gap: the device sends the whole request again
                return
            rid, head, body, nxt = asm
            if f.kind == BODY:
                if len(body) + len(f.payload) > MAX_REQUEST_BODY:
                    self._asm = None
                    return
                body += f.payload
                self._asm = (rid, head, body, nxt + 1)
                return
            self._asm = None
            self._complete(rid, head, bytes(body))
        elif f.kind == ACK:
            self._pull(f)

    def _complete(self, rid: int, head: bytes, body: bytes) -> None:
        key = rid.to_bytes(2, "little") + hashlib.sha256(head + b"\n\n" + body).digest()
        if self.current is not None and self.current.key == key:
            with self.lock:
                self.stats.duplicates += 1
            return
        if key in self.recent:
            return  # a stale copy of a request already answered
        self._drop_current("abandoned")
        self.recent.append(key)
        self.current = self._forward(rid, key, head, body)

    def _pull(self, f: LinkFrame) -> None:
        cur = self.current
        if cur is None or cur.rid != f.rid:
            with self.lock:
                self.stats.unknown += 1
            self._write(b"\x00" + encode_frame(NONE, f.rid, 0, b"no such request"))
            return
        window = f.payload[0] if f.payload else 1
        window = max(1, min(window, MAX_WINDOW))
        resend = len(f.payload) > 1 and bool(f.payload[1] & F_RESEND)
        cur.forget_below(f.seq)
        start = f.seq if resend else max(cur.sent_upto, f.seq)
        for seq in range(start, min(f.seq + window, MAX_SEQ + 1)):
            data = cur.get(seq)
            if data is None:
                if cur.failed:
                    self._write(encode_frame(NONE, cur.rid, 0, b"the upstream response broke"))
                break
            if seq < cur.sent_upto:
                with self.lock:
                    self.stats.frames_resent += 1
            self._write(data)
            cur.sent_upto = max(cur.sent_upto, seq + 1)
        if cur.ended and cur.sent_upto >= cur.made:
            self._log(cur, "done")

    def _write(self, data: bytes) -> None:
        with self.lock:
            self.stats.wire_bytes_out += len(data)
        self.stream.write(data)

    # ---- upstream ---------------------------------------------------------------------------
    def _forward(self, rid: int, key: bytes, head: bytes, body: bytes) -> _Response:
        lines = head.decode(errors="replace").split("\n")
        method, _, url = lines[0].partition(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() not in _HOP:
                headers[name.strip()] = value.strip()
        self.device = headers.get("Suture-Device", self.device)
        path = urlsplit(url).path or url
        record = RequestRecord(self.stream.name, self.device, method, path, 0, 0, 0.0, 0,
                               "abandoned")
        with self.lock:
            self.stats.requests += 1
        if not self.upstream.allows(url) or method not in ("GET", "POST", "PUT", "HEAD"):
            with self.lock:
                self.stats.refused += 1
            return _Response(rid, key, _canned(rid, 403, b"the gateway serves only its "
                                               b"scheduler", record), record)
        if self.tamper is not None:
            body = self.tamper("request", method, path, body)
        return _Response(rid, key, self._stream(rid, method, url, headers, body, record),
                         record)

    def _stream(self, rid: int, method: str, url: str, headers: dict[str, str], body: bytes,
                record: RequestRecord) -> Iterator[LinkFrame]:
        client = self.upstream.client
        try:
            req = client.build_request(method, url, headers=headers,
                                       content=body if body else None)
            r = client.send(req, stream=True)
        except httpx.HTTPError as e:
            with self.lock:
                self.stats.errors.append(f"{method} {url}: {e}")
            yield from _canned(rid, 502, f"the scheduler cannot be reached: {e}".encode(),
                               record)
            return
        try:
            record.status = r.status_code
            kept = "".join(f"{k}: {r.headers[k]}\n" for k in FORWARDED if k in r.headers)
            yield LinkFrame(STATUS, rid, 0, f"{r.status_code}\n{kept}".encode())
            seq = 1
            path = urlsplit(url).path
            for chunk in r.iter_raw(MAX_PAYLOAD):
                if self.tamper is not None:
                    chunk = self.tamper("response", method, path, chunk)
                for i in range(0, len(chunk), MAX_PAYLOAD):
                    if seq >= MAX_SEQ:
                        return  # the device sees a short body and resumes with a Range
                    yield LinkFrame(BODY, rid, seq, chunk[i : i + MAX_PAYLOAD])
                    seq += 1
            yield LinkFrame(END, rid, seq)
        finally:
            r.close()

    def _drop_current(self, outcome: str) -> None:
        cur = self.current
        if cur is None:
            return
        self.current = None
        cur.close()
        self._log(cur, outcome)

    def _log(self, cur: _Response, outcome: str) -> None:
        if cur.logged:
            return
        cur.logged = True
        rec = cur.record
        if outcome != "done" and rec.outcome.startswith("failed"):
            outcome = rec.outcome
        rec.outcome = outcome
        rec.seconds = time.monotonic() - cur.started
        with self.lock:
            self.stats.bytes_to_devices += rec.bytes
        if self.log is not None:
            self.log(rec)


def _canned(rid: int, status: int, text: bytes, record: RequestRecord) -> Iterator[LinkFrame]:
    record.status = status
    yield LinkFrame(STATUS, rid, 0, f"{status}\ncontent-length: {len(text)}\n".encode())
    yield LinkFrame(BODY, rid, 1, text)
    yield LinkFrame(END, rid, 2)


# ---- streams ----------------------------------------------------------------------------------
class SocketStream:
    def __init__(self, conn: socket.socket, name: str) -> None:
        self.conn = conn
        self.name = name
        conn.settimeout(0.2)

    def read(self) -> bytes:
        try:
            data = self.conn.recv(65536)
        except TimeoutError:
            return b""
        if not data:
            raise EOFError
        return data

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)

    def close(self) -> None:
        self.conn.close()


class SerialStream:
    """A serial port through pyserial (a USB CDC board, a UART adapter, a pty in tests)."""

    def __init__(self, path: str, baudrate: int = 115200) -> None:
        import serial

        self.name = path
        try:
            self.port = serial.Serial(path, baudrate=baudrate, timeout=0.2)
        except (serial.SerialException, OSError) as e:
            raise GatewayError(f"cannot open {path}: {e}") from e

    def read(self) -> bytes:
        import serial

        try:
            waiting = self.port.in_waiting
            data: bytes = self.port.read(waiting if waiting > 0 else 1)
        except serial.SerialException as e:
            raise OSError(str(e)) from e
        return data

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
        except serial.SerialException as e:
            raise OSError(str(e)) from e

    def close(self) -> None:
        self.port.close()


# ---- gateways ---------------------------------------------------------------------------------
class _Gateway:
    def __init__(self, upstream: str, timeout_s: float,
                 log: Callable[[RequestRecord], None] | None,
                 tamper: Tamper | None = None) -> None:
        self.upstream = Upstream(upstream, timeout_s)
        self.tamper = tamper  # tests only: a hostile gateway
        self.stats = GatewayStats()
        self.log = log
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _session(self, stream: ByteStream) -> None:
        with self._lock:
            self.stats.connections += 1
        try:
            LinkSession(stream, self.upstream, self.stats, self._lock, self.log,
                        self.tamper).run(self._stop)
        finally:
            stream.close()

    def _spawn(self, target: Callable[..., None], *args: object, name: str) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(t)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self.upstream.close()


class LinkGateway(_Gateway):
    """Serves the device link on TCP 127.0.0.1:``port`` (0: a free one) for ``upstream``,
    one session per connection."""

    def __init__(self, upstream: str, port: int = 0, timeout_s: float = 30.0,
                 log: Callable[[RequestRecord], None] | None = None,
                 tamper: Tamper | None = None) -> None:
        super().__init__(upstream, timeout_s, log, tamper)
        try:
            self._sock = socket.create_server(("127.0.0.1", port))
        except OSError as e:
            raise GatewayError(f"cannot listen on 127.0.0.1:{port}: {e}") from e
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LinkGateway:
        self._spawn(self._accept, name="link-gateway")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        super().stop()

    def __enter__(self) -> LinkGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            stream = SocketStream(conn, f"tcp:{peer[0]}:{peer[1]}")
            self._spawn(self._session, stream, name=f"link-{peer[1]}")


class SerialGateway(_Gateway):
    """Serves every serial port matching one of ``patterns`` (paths or globs such as
    /dev/ttyACM*): a port that appears, or comes back after it went away, is served again."""

    def __init__(self, upstream: str, patterns: list[str], baudrate: int = 115200,
                 timeout_s: float = 30.0, log: Callable[[RequestRecord], None] | None = None,
                 scan_s: float = 0.5, tamper: Tamper | None = None) -> None:
        super().__init__(upstream, timeout_s, log, tamper)
        self.patterns = patterns
        self.baudrate = baudrate
        self.scan_s = scan_s
        self._busy: set[str] = set()
        self.on_port: Callable[[str, str], None] | None = None  # (path, "open"|"closed")

    def start(self) -> SerialGateway:
        self._spawn(self._scan, name="serial-gateway")
        return self

    def __enter__(self) -> SerialGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ports(self) -> list[str]:
        found: set[str] = set()
        for p in self.patterns:
            found.update(glob.glob(p) if glob.has_magic(p) else [p])
        return sorted(found)

    def _scan(self) -> None:
        while not self._stop.is_set():
            for path in self.ports():
                with self._lock:
                    if path in self._busy:
                        continue
                    self._busy.add(path)
                self._spawn(self._serve_port, path, name=f"serial-{path}")
            self._stop.wait(self.scan_s)

    def _serve_port(self, path: str) -> None:
        try:
            try:
                stream = SerialStream(path, self.baudrate)
            except GatewayError as e:
                with self._lock:
                    self.stats.errors.append(str(e))
                self._stop.wait(self.scan_s)
                return
            if self.on_port is not None:
                self.on_port(path, "open")
            self._session(stream)
            if self.on_port is not None:
                self.on_port(path, "closed")
        finally:
            with self._lock:
                self._busy.discard(path)

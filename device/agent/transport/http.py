# HTTP/1.1 over a socket: one request per connection (Connection: close), bounded headers,
# Content-Length bodies read into the caller's buffer. Timeouts on every socket operation.
# Range and conditional requests are plain headers the caller adds; this layer only refuses
# what it cannot frame (chunked bodies, headers beyond their ceiling).
#
# https: TLS that authenticates the scheduler. The server's certificate must chain to the CA
# provisioned into NVM (net.ca, DER), and name the URL's host (mbedTLS checks server_hostname
# against the certificate's names); a handshake that fails either check is a TransportError and
# nothing is sent. Without a pinned CA an https URL is refused rather than left unauthenticated.
# The request MACs and the schedule's and releases' signatures stay: TLS adds confidentiality
# and keeps an impostor from even answering.
import socket

from micropython import const

from agent.errors import ResponseTooLarge, TransportError
from agent.transport import Transport, split_url

MAX_HEADER_LINE = const(512)
MAX_HEADERS = const(32)
_KEEP = ("content-length", "content-range", "etag", "content-type", "transfer-encoding",
         "date", "suture-schedule-number", "suture-server-time", "suture-counter-floor",
         "suture-resync-mac")


class Response:
    def __init__(self, sock, status, headers, length, pending):
        self.sock = sock
        self.status = status
        self.headers = headers
        self.length = length  # body bytes announced (None: until the connection closes)
        self.left = length
        self._pending = pending  # body bytes already read with the headers

    def readinto(self, buf):
        """Fill buf with the next body bytes; 0 at the end. Raises TransportError when the
        connection ends before Content-Length bytes arrived."""
        mv = memoryview(buf)
        want = len(mv)
        if self.left is not None:
            if self.left <= 0:
                return 0
            if want > self.left:
                want = self.left
        if self._pending:
            p = self._pending
            n = len(p) if len(p) < want else want
            mv[:n] = p[:n]
            self._pending = p[n:]
        else:
            try:
                n = self.sock.readinto(mv[:want])
            except OSError as e:
                raise TransportError("connection failed while reading: %s" % e)
            if not n:
                if self.left is None:
                    return 0
                raise TransportError("connection closed %d bytes early" % self.left)
        if self.left is not None:
            self.left -= n
        return n

    def read_all(self, limit):
        """The whole body (at most `limit` bytes: ResponseTooLarge beyond)."""
        if self.length is not None and self.length > limit:
            raise ResponseTooLarge("body of %d bytes (limit %d)" % (self.length, limit))
        out = bytearray(self.length if self.length is not None else 0)
        if self.length is not None:
            mv = memoryview(out)
            got = 0
            while got < self.length:
                n = self.readinto(mv[got:])
                if not n:
                    break
                got += n
            return bytes(out)
        chunk = bytearray(256)
        while True:
            n = self.readinto(chunk)
            if not n:
                return bytes(out)
            out += chunk[:n]
            if len(out) > limit:
                raise ResponseTooLarge("body over %d bytes" % limit)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class HttpTransport(Transport):
    def __init__(self, timeout_s=10, ca=None):
        self.timeout_s = timeout_s
        self._line = bytearray(MAX_HEADER_LINE)
        self.ca = ca  # DER certificate the scheduler's must chain to (NVM net.ca)
        self._tls = None

    def _context(self):
        """The TLS client context, made once: certificate required, the pinned CA only."""
        if self._tls is None:
            if not self.ca:
                raise TransportError("https needs the scheduler's CA (NVM net.ca): refused")
            try:
                import tls  # the native module (MicroPython >= 1.23); ssl wraps it

                ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
                ctx.verify_mode = tls.CERT_REQUIRED
                load = ctx.load_verify_locations
            except ImportError:
                import ssl

                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.verify_mode = ssl.CERT_REQUIRED

                def load(cadata):
                    ctx.load_verify_locations(cadata=cadata)
            try:
                load(self.ca)
            except (ValueError, OSError) as e:
                raise TransportError("the pinned CA is not a certificate: %s" % e)
            self._tls = ctx
        return self._tls

    def request(self, method, url, headers=None, body=None):
        scheme, host, port, path = split_url(url)
        try:
            addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
            sock = socket.socket()
        except OSError as e:
            raise TransportError("cannot resolve %s: %s" % (host, e))
        try:
            ctx = self._context() if scheme == "https" else None
            sock.settimeout(self.timeout_s)
            sock.connect(addr)
            if ctx is not None:
                try:
                    sock = ctx.wrap_socket(sock, server_hostname=host)
                except (OSError, ValueError) as e:
                    raise TransportError("TLS to %s:%d refused: %s" % (host, port, e))
            head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n" % (
                method, path, host, port)
            if headers:
                for k in headers:
                    head += "%s: %s\r\n" % (k, headers[k])
            if body is not None:
                head += "Content-Length: %d\r\n" % len(body)
            head += "\r\n"
            _send(sock, head.encode())
            if body:
                _send(sock, body)
            return self._response(sock)
        except OSError as e:
            sock.close()
            raise TransportError("connection to %s:%d failed: %s" % (host, port, e))
        except TransportError:
            sock.close()
            raise

    def _response(self, sock):
        reader = _LineReader(sock, self._line)
        status_line = reader.line()
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise TransportError("not an HTTP/1.x response")
        try:
            status = int(parts[1])
        except ValueError:
            raise TransportError("bad HTTP status")
        headers = {}
        count = 0
        while True:
            line = reader.line()
            if not line:
                break
            count += 1
            if count > MAX_HEADERS:
                raise ResponseTooLarge("more than %d header lines" % MAX_HEADERS)
            i = line.find(":")
            if i <= 0:
                raise TransportError("malformed header line")
            name = line[:i].strip().lower()
            if name in _KEEP:
                headers[name] = line[i + 1 :].strip()
        if headers.get("transfer-encoding", "identity").lower() != "identity":
            raise TransportError("chunked transfer coding is not supported")
        length = None
        if "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise TransportError("bad Content-Length")
            if length < 0:
                raise TransportError("bad Content-Length")
        if status == 304 or status == 204 or 100 <= status < 200:
            length = 0
        return Response(sock, status, headers, length, reader.rest())


def _send(sock, data):
    mv = memoryview(data)
    sent = 0
    while sent < len(mv):
        n = sock.write(mv[sent:])
        if n is None or n <= 0:
            raise TransportError("connection closed while sending")
        sent += n


class _LineReader:
    """Header lines from a socket, through one bounded buffer; keeps any body bytes read."""

    def __init__(self, sock, buf):
        self.sock = sock
        self.buf = buf
        self.fill = 0
        self.chunk = bytearray(256)

    def line(self):
        while True:
            i = bytes(self.buf[: self.fill]).find(b"\r\n")
            if i >= 0:
                try:
                    text = bytes(self.buf[:i]).decode()
                except UnicodeError:
                    raise TransportError("header line is not text")
                rest = self.fill - i - 2
                self.buf[:rest] = self.buf[i + 2 : self.fill]
                self.fill = rest
                return text
            if self.fill >= len(self.buf):
                raise ResponseTooLarge("header line over %d bytes" % len(self.buf))
            room = len(self.buf) - self.fill
            mv = memoryview(self.chunk)[: room if room < len(self.chunk) else len(self.chunk)]
            n = self.sock.readinto(mv)
            if not n:
                raise TransportError("connection closed in the headers")
            self.buf[self.fill : self.fill + n] = mv[:n]
            self.fill += n

    def rest(self):
        return bytes(self.buf[: self.fill])

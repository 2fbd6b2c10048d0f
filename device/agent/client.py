# The scheduler's device API (docs/formats/device-api.md): signed requests (HMAC-SHA256 over
# method, path, device id, time, counter and the body digest), the schedule poll with
# If-None-Match, reports, and ranged downloads. A 401 carrying a resync MAC'd with the device
# secret over the refused request's counter sets the clock and the counter, then the request
# is sent once more. Reports are also signed with the device key (NVM id.key, ES256 through the
# loader: Suture-Signature), which proves the device itself and not only its secret.
import hashlib
import json

from micropython import const

from agent.errors import HttpError, TransportError
from agent.mac import hexlify, hmac_sha256
from agent.transport import split_url

SCHEME = "suture-device-v1"
SIG_SCHEME = "suture-device-sig-v1"
RESYNC_SCHEME = "suture-resync-v1"
MAX_SCHEDULE = const(2048)
MAX_ACK = const(1024)
SUIT_REPORT_TYPE = "application/suit-report+cose"
_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class Counter:
    """Strictly increasing request counter: the device clock in microseconds, bumped past the
    last value used, so it keeps growing across resets without a flash write per request."""

    def __init__(self, clock):
        self.clock = clock
        self.last = 0

    def next(self):
        v = self.clock.now_us()
        if v <= self.last:
            v = self.last + 1
        self.last = v
        return v

    def resync(self, floor):
        """After a verified resync: continue above the scheduler's last accepted counter (the
        refused request's counter was not consumed, so it need not be passed)."""
        self.last = floor


class SchedulerClient:
    def __init__(self, transport, base_url, device_id, secret, clock):
        self.t = transport
        self.base = base_url.rstrip("/")
        self.device_id = device_id
        self.secret = secret
        self.clock = clock
        self.counter = Counter(clock)
        self.bytes_in = 0
        self.resyncs = 0  # verified resyncs applied (clock or counter corrected)
        self._key = None  # the device key (32 bytes), read from NVM at the first report
        self._mac_key = None  # the SUIT report MAC key, derived at the first keyless report

    def device_key(self):
        """The device's private key (NVM id.key, written at provisioning); b"" when the
        device has none (its reports then carry the MAC alone)."""
        if self._key is None:
            from loader import api

            r = api.nvm().get("id.key")
            self._key = bytes(r[1]) if r is not None and len(r[1]) == 32 else b""
        return self._key

    def report_mac_key(self):
        """The key the device MACs its SUIT reports with when it has no device key (derived
        from the device secret: docs/formats/suit-report.md)."""
        if self._mac_key is None:
            from loader import api

            self._mac_key = api.suit_report_mac_key(self.secret, self.device_id)
        return self._mac_key

    def sign(self, method, path, body=b"", with_key=False):
        now = self.clock.now()
        ctr = self.counter.next()
        digest = hexlify(hashlib.sha256(body).digest()) if body else _EMPTY
        sts = "\n".join((SCHEME, method, path, self.device_id, str(now), str(ctr), digest))
        h = {
            "Suture-Device": self.device_id,
            "Suture-Time": str(now),
            "Suture-Counter": str(ctr),
            "Suture-MAC": hexlify(hmac_sha256(self.secret, sts.encode())),
        }
        key = self.device_key() if with_key else b""
        if key:
            from loader import api

            text = hashlib.sha256(SIG_SCHEME.encode())
            text.update(b"\n")
            text.update(sts.encode())
            h["Suture-Signature"] = hexlify(api.sign_es256(key, text.digest()))
        return h

    def _request(self, method, url, body=None, extra=None, with_key=False,
                 ctype="application/json"):
        path = split_url(url)[3]
        for attempt in (0, 1):
            h = self.sign(method, path, body or b"", with_key)
            if extra:
                for k in extra:
                    h[k] = extra[k]
            if body is not None:
                h["Content-Type"] = ctype
            r = self.t.request(method, url, h, body)
            if r.status != 401 or attempt or not self._resync(r, int(h["Suture-Counter"])):
                return r
            r.close()

    def _resync(self, r, counter):
        """Apply the scheduler's time and counter floor from a 401, if its MAC (device secret,
        over the counter this request used) verifies. Anything else is ignored: an unverified
        time could only be an attacker's."""
        hd = r.headers
        try:
            server_time = int(hd.get("suture-server-time", ""))
            floor = int(hd.get("suture-counter-floor", ""))
        except ValueError:
            return False
        text = "\n".join((RESYNC_SCHEME, self.device_id, str(counter), str(server_time),
                          str(floor)))
        want = hexlify(hmac_sha256(self.secret, text.encode()))
        if hd.get("suture-resync-mac", "") != want:
            return False
        self.clock.resync_to(server_time)
        self.counter.resync(floor)
        self.resyncs += 1
        return True

    def schedule_url(self):
        return "%s/api/v1/devices/%s/schedule" % (self.base, self.device_id)

    def get_schedule(self, etag=None):
        """(status, document or None, etag). 304 gives (304, None, etag)."""
        extra = {"If-None-Match": etag} if etag else None
        r = self._request("GET", self.schedule_url(), extra=extra)
        try:
            if r.status == 304:
                return 304, None, etag
            if r.status != 200:
                raise HttpError(r.status, "on the schedule", r.headers.get("retry-after"))
            doc = r.read_all(MAX_SCHEDULE)
            self.bytes_in += len(doc)
            return 200, doc, r.headers.get("etag")
        finally:
            r.close()

    def report(self, report):
        """POST a report (dict); returns the acknowledgement (dict). An answer that is not a
        JSON object is the peer breaking the protocol (TransportError): not delivered."""
        body = json.dumps(report).encode()
        url = "%s/api/v1/devices/%s/reports" % (self.base, self.device_id)
        r = self._request("POST", url, body, with_key=True)
        try:
            if r.status != 200:
                raise HttpError(r.status, "on a report")
            raw = r.read_all(MAX_ACK)
        finally:
            r.close()
        try:
            ack = json.loads(raw)
        except ValueError:
            ack = None
        if not isinstance(ack, dict):
            raise TransportError("the report's acknowledgement is not a JSON object")
        return ack

    def suit_report(self, data):
        """POST a SUIT report (docs/formats/suit-report.md: a COSE_Sign1 under the device key,
        or a COSE_Mac0 under the report MAC key of a device without one). Raises HttpError
        unless accepted."""
        url = "%s/api/v1/devices/%s/suit-reports" % (self.base, self.device_id)
        r = self._request("POST", url, data, ctype=SUIT_REPORT_TYPE)
        try:
            if r.status != 200:
                raise HttpError(r.status, "on a SUIT report")
            r.read_all(MAX_ACK)
        finally:
            r.close()

    def get(self, url, start=0, etag=None):
        """Open a download from byte `start` (Range + If-Range when resuming). The caller
        reads the Response and closes it; status 200 means the whole file from byte 0."""
        extra = None
        if start:
            extra = {"Range": "bytes=%d-" % start}
            if etag:
                extra["If-Range"] = etag
        r = self._request("GET", url, extra=extra)
        if r.status not in (200, 206):
            r.close()
            raise HttpError(r.status, "on a download")
        return r

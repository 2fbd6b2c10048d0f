# The schedule document (docs/formats/schedule.md; keys from host/suture/scheduler/
# schedule_doc.py, checked equal by tests/agent). Verification is pure: bytes, trusted keys,
# this device's id, the highest number accepted so far and the clock in; a Schedule or a
# named ScheduleError out. Checks in the order the format gives them.
from micropython import const

from agent.errors import (
    ScheduleDeviceError,
    ScheduleError,
    ScheduleReplayError,
    ScheduleSignatureError,
    ScheduleWindowError,
)

MAX_DOCUMENT = const(2048)
FORMAT = const(1)
MAX_SEQUENCE = 0xFFFFFFFF  # a release's sequence number is u32 on the device (journal version)

K_FORMAT = const(1)
K_DEVICE_ID = const(2)
K_NUMBER = const(3)
K_ISSUED_AT = const(4)
K_ACTION = const(5)
K_ROLLOUT_ID = const(6)
K_ENVELOPE_URI = const(7)
K_ENVELOPE_DIGEST = const(8)
K_ENVELOPE_SIZE = const(9)
K_PAYLOAD_URI = const(10)
K_PAYLOAD_SIZE = const(11)
K_PAYLOAD_DIGEST = const(12)
K_NOT_BEFORE = const(13)
K_NOT_AFTER = const(14)
K_NEXT_POLL = const(15)
K_POLL_INTERVAL = const(16)
K_COMPONENT = const(17)
K_SEQUENCE = const(18)
K_FORCED = const(19)
K_RELEASE_ID = const(20)
K_GRANT = const(21)
K_TRUST_UPDATE = const(22)

NONE = const(0)
DOWNLOAD = const(1)
INSTALL = const(2)
REVERT = const(3)
CONFIRM_WAIT = const(4)
ABORT = const(5)
ACTION_NAMES = ("none", "download", "install", "revert", "confirm-wait", "abort")


class Artifact:
    def __init__(self, m):
        self.release_id = _uint(m, K_RELEASE_ID)
        self.component = _tstr(m, K_COMPONENT)
        self.sequence_number = _uint(m, K_SEQUENCE)
        if self.sequence_number > MAX_SEQUENCE:
            raise ScheduleError("sequence number %d does not fit in 32 bits"
                                % self.sequence_number)
        self.envelope_uri = _tstr(m, K_ENVELOPE_URI)
        self.envelope_digest = _digest(m, K_ENVELOPE_DIGEST)
        self.envelope_size = _uint(m, K_ENVELOPE_SIZE)
        self.payload_uri = _tstr(m, K_PAYLOAD_URI)
        self.payload_size = _uint(m, K_PAYLOAD_SIZE)
        self.payload_digest = _digest(m, K_PAYLOAD_DIGEST)
        # A biscuit for the vendor's /direct/ path (key 21's map, item 2): the downloads
        # present it instead of the device credential.
        self.bearer = _grant_biscuit(m.get(K_GRANT))


class Schedule:
    def __init__(self, m):
        self.number = _uint(m, K_NUMBER)
        self.issued_at = _uint(m, K_ISSUED_AT)
        self.action = _uint(m, K_ACTION)
        if self.action >= len(ACTION_NAMES):
            raise ScheduleError("unknown action %d" % self.action)
        self.next_poll = _uint(m, K_NEXT_POLL)
        self.poll_interval = _uint(m, K_POLL_INTERVAL)
        self.rollout_id = _opt_uint(m, K_ROLLOUT_ID)
        self.not_before = _opt_uint(m, K_NOT_BEFORE)
        self.not_after = _opt_uint(m, K_NOT_AFTER)
        if (self.not_before is None) != (self.not_after is None):
            raise ScheduleError("window needs both not-before and not-after")
        self.forced = m.get(K_FORCED) is True
        self.artifact = Artifact(m) if K_RELEASE_ID in m else None
        self.trust_update = m.get(K_TRUST_UPDATE)  # docs/formats/trust-store.md
        if self.trust_update is not None and not isinstance(self.trust_update, bytes):
            raise ScheduleError("key %d is not a byte string" % K_TRUST_UPDATE)
        if self.action in (DOWNLOAD, INSTALL) and self.artifact is None:
            raise ScheduleError("download/install without a release")

    def action_name(self):
        return ACTION_NAMES[self.action]

    def in_window(self, now):
        """Install window check on the device's own clock: not-before <= now < not-after."""
        if self.not_before is None:
            return True
        return self.not_before <= now < self.not_after

    def window_closed(self, now):
        return self.not_after is not None and now >= self.not_after


def _grant_biscuit(grant):
    """The vendor's grant (key 21: {1: reference, 2: biscuit}); returns its biscuit or None."""
    if grant is None:
        return None
    if not isinstance(grant, dict) or not isinstance(grant.get(1), str):
        raise ScheduleError("key %d is not a grant (a map with a reference)" % K_GRANT)
    biscuit = grant.get(2)
    if biscuit is not None and (not isinstance(biscuit, str) or not biscuit):
        raise ScheduleError("the grant's biscuit is not a text string")
    return biscuit


def _uint(m, k):
    v = m.get(k)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ScheduleError("key %d missing or not an unsigned integer" % k)
    return v


def _opt_uint(m, k):
    return None if m.get(k) is None else _uint(m, k)


def _tstr(m, k):
    v = m.get(k)
    if not isinstance(v, str) or not v:
        raise ScheduleError("key %d missing or not a text string" % k)
    return v


def _digest(m, k):
    v = m.get(k)
    if not isinstance(v, bytes) or len(v) != 32:
        raise ScheduleError("key %d is not a 32-byte SHA-256" % k)
    return v


def verify(document, keys, device_id, last_number, now=None):
    """Check a signed schedule and return it (a Schedule). keys: the scheduler's ES256 public
    keys (65-byte SEC1 points); last_number: the highest schedule number accepted so far (-1
    for none); now: the device clock, to refuse a document whose install window has closed.
    The document is untrusted input: whatever its shape, the only exception that leaves is a
    ScheduleError."""
    try:
        return _verify(document, keys, device_id, last_number, now)
    except ScheduleError:
        raise
    except Exception as e:  # a shape no check below foresaw: refused all the same
        raise ScheduleError("malformed schedule document (%s)" % type(e).__name__)


def _verify(document, keys, device_id, last_number, now):
    from loader import api

    # 1. size
    if len(document) > MAX_DOCUMENT:
        raise ScheduleError("schedule document over %d bytes" % MAX_DOCUMENT)
    # 2. a tagged COSE_Sign1 with its payload, ES256 in the protected header, signed with a
    # provisioned key
    try:
        m = api.open_sign1(document, keys)
    except api.LoaderError as e:
        raise ScheduleSignatureError("schedule does not verify: %s" % e)
    # 3. format and device id
    if not isinstance(m, dict) or m.get(K_FORMAT) != FORMAT:
        raise ScheduleError("not a schedule document of format 1")
    if m.get(K_DEVICE_ID) != device_id:
        raise ScheduleDeviceError("schedule is for another device")
    s = Schedule(m)
    # 4. anti-replay
    if s.number < last_number:
        raise ScheduleReplayError("schedule %d is older than %d" % (s.number, last_number))
    # 6. (early part) a window that has already closed is stale
    if now is not None and s.artifact is not None and s.window_closed(now) and not s.forced:
        raise ScheduleWindowError("the schedule's install window closed at %d" % s.not_after)
    return s

# The hospital's manifest over the vendor's (draft-ietf-suit-trust-domains; the template is in
# docs/formats/suit-extensions.md, "The hospital's manifest over the vendor's"): the scheduler
# signs a manifest that depends on the vendor's unchanged envelope, integrated in its own, and
# adds the hospital's conditions. vendor_envelope() is the first step of every staging
# (loader/staging.py check): for a dependent envelope it checks, in this order and before any
# section of the vendor's manifest runs,
#   1. the hospital's signature under the scheduler's trust anchors (HospitalSignatureError);
#   2. the shared sequence's conditions: vendor and class identifiers, the window
#      (suture-not-before, use-before) on the device's clock, the device set (try-each over
#      device-identifier options, no nil) (HospitalConditionFailed);
#   3. the dependency: integrated under its URI, its envelope's size and its manifest's digest
#      as the hospital's manifest sets them (SizeError, SignatureError);
#   4. that every other section only processes that dependency (SuitUnsupported otherwise);
# and returns the vendor's envelope, which the loader then verifies under the vendor's anchors
# and stages as it does any release. A device whose NVM holds trust.hospital refuses a vendor's
# envelope that comes without the hospital's manifest (HospitalManifestRequired).
import hashlib

from micropython import const

from loader import cbor, suit
from loader.errors import (
    HospitalConditionFailed,
    HospitalManifestRequired,
    HospitalSignatureError,
    SignatureError,
    SizeError,
    SuitError,
    SuitUnsupported,
)

REQUIRED = "trust.hospital"  # NVM record: present, every release comes under the hospital's
_SET_INDEX = const(12)
_OVERRIDE = const(20)
_TRY_EACH = const(15)
_FETCH = const(21)
_PROCESS_DEPENDENCY = const(11)
_VENDOR = const(1)
_CLASS = const(2)
_USE_BEFORE = const(4)
_DEPENDENCY_INTEGRITY = const(7)
_DEVICE = const(24)
_NOT_BEFORE = const(-257)
P_VENDOR = const(1)
P_CLASS = const(2)
P_DIGEST = const(3)
P_USE_BEFORE = const(4)
P_SIZE = const(14)
P_URI = const(21)
P_DEVICE = const(24)
P_NOT_BEFORE = const(-257)
# the manifest's sections after common: dependency-resolution, payload-fetch,
# candidate-verification, install, validate, load, invoke
_SECTIONS = (15, 16, 18, 20, 7, 8, 9)
_DEPENDENCY_STEPS = (_SET_INDEX, _FETCH, _DEPENDENCY_INTEGRITY, _PROCESS_DEPENDENCY)


def _eq(a, b):
    """Comparison that does not stop at the first difference."""
    acc = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):
        acc |= a[i] ^ b[i]
    return acc == 0


def _member(env, manifest, key):
    """A section, inline or severable (by digest, its bytes in the envelope; None: severed)."""
    v = manifest.get(key)
    if v is None or isinstance(v, bytes):
        return v
    b = env.get(key)
    if b is None:
        return None
    if not isinstance(b, bytes):
        raise SuitError("severable member is not a byte string")
    h = hashlib.sha256()
    h.update(cbor.head(2, len(b)))
    h.update(b)
    if not _eq(h.digest(), suit.parse_digest(v)):
        raise SignatureError("severable member %d does not match its digest" % key)
    return b


def _common(envelope_bytes):
    """(envelope map, manifest map, common map) of an envelope, unauthenticated: only to tell
    a dependent envelope from a vendor's."""
    env = cbor.decode(envelope_bytes)
    if isinstance(env, cbor.Tag):
        env = env.value
    if not isinstance(env, dict) or not isinstance(env.get(3), bytes):
        raise SuitError("envelope lacks the manifest")
    manifest = cbor.decode(env[3])
    if not isinstance(manifest, dict) or not isinstance(manifest.get(3), bytes):
        raise SuitError("manifest lacks suit-common")
    common = cbor.decode(manifest[3])
    if not isinstance(common, dict):
        raise SuitError("suit-common is not a map")
    return common


def is_dependent(envelope_bytes):
    """True when the envelope's manifest names dependencies (suit-common key 1)."""
    return 1 in _common(envelope_bytes)


def required(ld):
    """The device was provisioned to require the hospital's manifest over every release."""
    return ld.nvm().get(REQUIRED) is not None


def vendor_envelope(ld, envelope_bytes, now=None):
    """The envelope the loader verifies and stages: the vendor's one a hospital's manifest
    carries (once its signature and conditions hold), or envelope_bytes itself when it is a
    vendor's and the device does not require the hospital's."""
    suit.last = None  # a refusal here leaves no trace of an earlier run for the SUIT report
    if not is_dependent(envelope_bytes):
        if required(ld):
            raise HospitalManifestRequired("this device installs a release only under the "
                                           "hospital's manifest")
        return envelope_bytes
    from loader import trust

    b = ld.board
    return unwrap(envelope_bytes, trust.keys(ld, "scheduler"),
                  (b.vendor_id, b.class_id, b.device_id), now)


def _check_id(params, key, have, what):
    want = params.get(key)
    if not isinstance(want, bytes):
        raise SuitError("the hospital's %s condition without a %s identifier" % (what, what))
    if not _eq(want, have):
        raise HospitalConditionFailed("the hospital's manifest is for another %s" % what)


def _time(params, key, what):
    t = params.get(key)
    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
        raise SuitError("the hospital's %s condition without a time" % what)
    return t


class _Shared:
    """The hospital's shared sequence, run against the device's identity and clock."""

    def __init__(self, count, ids, now):
        self.params = [{} for _ in range(count)]
        self.current = [0]
        self.ids = ids
        self.now = now
        self.checked = set()

    def run(self, seq_bytes, depth=0):
        if depth > 1:
            raise SuitError("the hospital's sequences nested too deeply")
        seq = cbor.decode(seq_bytes)
        if not isinstance(seq, list) or len(seq) % 2:
            raise SuitError("command sequence is not [code, argument, ...]")
        for i in range(0, len(seq), 2):
            self.command(seq[i], seq[i + 1], depth)

    def command(self, code, arg, depth):
        if code == _SET_INDEX:
            if not isinstance(arg, int) or isinstance(arg, bool) \
                    or not 0 <= arg < len(self.params):
                raise SuitError("component index %r out of range" % (arg,))
            self.current = [arg]
            return
        if code == _OVERRIDE:
            if not isinstance(arg, dict):
                raise SuitError("parameters are not a map")
            for c in self.current:
                self.params[c].update(arg)
            return
        if code == _TRY_EACH:
            self.try_each(arg, depth)
            return
        p = self.params[self.current[0]]
        if code == _VENDOR:
            _check_id(p, P_VENDOR, self.ids[0], "vendor")
        elif code == _CLASS:
            _check_id(p, P_CLASS, self.ids[1], "class")
        elif code == _DEVICE:
            _check_id(p, P_DEVICE, self.ids[2], "device")
        elif code in (_NOT_BEFORE, _USE_BEFORE):
            if self.now is None:
                raise HospitalConditionFailed("the hospital's window needs the device's clock")
            if code == _NOT_BEFORE and self.now < _time(p, P_NOT_BEFORE, "not-before"):
                raise HospitalConditionFailed("the hospital's window opens at %d, now is %d"
                                              % (p[P_NOT_BEFORE], self.now))
            if code == _USE_BEFORE and self.now >= _time(p, P_USE_BEFORE, "use-before"):
                raise HospitalConditionFailed("the hospital's window closed at %d, now is %d"
                                              % (p[P_USE_BEFORE], self.now))
        else:
            raise SuitUnsupported("command %r in the hospital's shared sequence" % (code,))
        self.checked.add(code)

    def try_each(self, options, depth):
        """The device set: the first option whose conditions hold; none (and no nil): the
        device is not in the set."""
        if not isinstance(options, list) or not options:
            raise SuitError("try-each argument")
        for alt in options:
            if alt is None:
                return
            if not isinstance(alt, bytes):
                raise SuitError("try-each alternative is not a byte string")
            saved = [dict(p) for p in self.params]
            try:
                self.run(alt, depth + 1)
                return
            except HospitalConditionFailed:
                self.params = saved
        raise HospitalConditionFailed("this device is not in the hospital's device set")


def _dependency_only(seq_bytes, index):
    """A section of the hospital's manifest: it may only select, fetch, check and process
    the dependency (the vendor's sections run as the vendor's manifest says)."""
    seq = cbor.decode(seq_bytes)
    if not isinstance(seq, list) or len(seq) % 2:
        raise SuitError("command sequence is not [code, argument, ...]")
    for i in range(0, len(seq), 2):
        if seq[i] not in _DEPENDENCY_STEPS or (seq[i] == _SET_INDEX and seq[i + 1] != index):
            raise SuitUnsupported("command %r in a section of the hospital's manifest"
                                  % (seq[i],))


def unwrap(envelope_bytes, keys, ids, now=None):
    """The vendor's envelope inside the hospital's envelope_bytes, once the hospital's
    signature verifies with keys (the scheduler anchors, 65-byte points) and its conditions
    hold for ids (vendor, class, device identifiers, bytes) at now (unix seconds, or None:
    no clock, a window is then refused)."""
    try:
        env, manifest = suit.authenticate(envelope_bytes, keys)
    except SignatureError as e:
        raise HospitalSignatureError("the hospital's manifest: %s" % e)
    if manifest.get(1) != 1:
        raise SuitUnsupported("manifest version %r" % (manifest.get(1),))
    common = cbor.decode(manifest.get(3) or b"\xa0")
    comps, deps = common.get(2), common.get(1)
    if not isinstance(comps, list) or not comps or len(comps) > 8:
        raise SuitError("suit-components missing, empty or longer than 8")
    if not isinstance(deps, dict) or len(deps) != 1:
        raise SuitUnsupported("the hospital's manifest names one dependency, not %d"
                              % (len(deps) if isinstance(deps, dict) else 0))
    index = next(iter(deps))
    if index != len(comps):
        raise SuitError("the dependency's index does not follow the components")
    shared = common.get(4)
    if not isinstance(shared, bytes):
        raise SuitError("the hospital's manifest has no shared sequence")
    run = _Shared(len(comps) + 1, ids, now)
    run.run(shared)
    if _VENDOR not in run.checked or _CLASS not in run.checked:
        raise HospitalConditionFailed("the hospital's manifest does not check the vendor and "
                                      "class identifiers")
    for key in _SECTIONS:
        s = _member(env, manifest, key)
        if s is not None:
            if not isinstance(s, bytes):
                raise SuitError("command sequence %d is not a byte string" % key)
            _dependency_only(s, index)
    p = run.params[index]
    uri, size, digest = p.get(P_URI), p.get(P_SIZE), p.get(P_DIGEST)
    if not isinstance(uri, str) or not isinstance(digest, bytes):
        raise SuitError("the dependency has no uri or digest")
    data = env.get(uri)
    if not isinstance(data, bytes):
        raise SuitUnsupported("the vendor's envelope is not integrated under %s" % uri)
    if size != len(data):
        raise SizeError("the vendor's envelope is %d bytes, the hospital's manifest says %r"
                        % (len(data), size))
    inner = cbor.decode(data)
    inner = inner.value if isinstance(inner, cbor.Tag) else inner
    if not isinstance(inner, dict) or not isinstance(inner.get(2), bytes):
        raise SuitError("the dependency is not an envelope")
    wrapper = cbor.decode(inner[2])
    if not isinstance(wrapper, list) or not wrapper or not isinstance(wrapper[0], bytes):
        raise SuitError("the dependency's authentication wrapper is malformed")
    if not _eq(suit.parse_digest(cbor.decode(wrapper[0])),
               suit.parse_digest(cbor.decode(digest))):
        raise SignatureError("the vendor's envelope is not the one the hospital's manifest names")
    return data

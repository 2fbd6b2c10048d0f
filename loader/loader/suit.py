# SUIT envelope processing (draft-ietf-suit-manifest, code points of draft -29 and later):
# authentication wrapper, manifest digest, COSE_Sign1 signature, then the command sequences the
# device needs, interpreted against the device's identity. Pure: bytes in, a Plan out; the
# caller does the I/O (staging, install). Each run keeps a Trace (module-level `last`): the
# manifest's digest and the conditions it ran, where they are in the manifest (section, byte
# offset, component index), and the one that failed: the records of the device's SUIT report
# (docs/formats/suit-report.md).
import hashlib

from micropython import const

from loader import cbor, cose
from loader.errors import (
    CborError,
    ConditionFailed,
    RollbackError,
    SequenceNumberError,
    SignatureError,
    SizeError,
    SuitError,
    SuitUnsupported,
    UnsignedError,
)

MAX_ENVELOPE = const(16384)
MAX_SEQ = 0xFFFFFFFF  # the journal's version field is u32: a larger sequence number is refused
TAG_ENVELOPE = const(107)
ALG_SHA256 = const(-16)

# envelope / manifest keys
_AUTH = const(2)
_MANIFEST = const(3)
_M_VERSION = const(1)
_M_SEQ = const(2)
_M_COMMON = const(3)
_M_VALIDATE = const(7)
_M_LOAD = const(8)
_M_INVOKE = const(9)
_M_PAYLOAD_FETCH = const(16)
_M_INSTALL = const(20)
_M_TEXT = const(23)
_C_COMPONENTS = const(2)
_C_SHARED = const(4)
# conditions
_VENDOR = const(1)
_CLASS = const(2)
_IMAGE_MATCH = const(3)
_SLOT = const(5)
_CHECK_CONTENT = const(6)
_ABORT = const(14)
_DEVICE = const(24)
_DELTA_SOURCE = const(-258)  # suture (custom): the installed image is the delta's source
# directives
_SET_INDEX = const(12)
_TRY_EACH = const(15)
_WRITE = const(18)
_SET_PARAMS = const(19)
_OVERRIDE = const(20)
_FETCH = const(21)
_COPY = const(22)
_INVOKE = const(23)
_RUN_SEQUENCE = const(32)
# parameters
P_VENDOR = const(1)
P_CLASS = const(2)
P_DIGEST = const(3)
P_SLOT = const(5)
P_SIZE = const(14)
P_ENCRYPTION_INFO = const(19)
P_CONTENT = const(18)
P_URI = const(21)
P_SOURCE = const(22)
P_DEVICE = const(24)
# suture (custom): a delta payload (docs/formats/delta.md) and the one source image it applies to
P_DELTA_SOURCE_DIGEST = const(-259)
P_DELTA_SOURCE_SIZE = const(-260)
P_DELTA_DIGEST = const(-261)
P_DELTA_SIZE = const(-262)

_SEVERABLE = (_M_PAYLOAD_FETCH, _M_INSTALL, _M_TEXT)
_CONDITIONS = (_VENDOR, _CLASS, _IMAGE_MATCH, _SLOT, _CHECK_CONTENT, _ABORT, _DEVICE,
               _DELTA_SOURCE)
MAX_RECORDS = const(16)


class Trace:
    """What one run of the processor did, for a SUIT report: `digest` (the manifest's SHA-256,
    from the authentication wrapper; None before it was read), `uri` (the manifest's
    reference-uri), `records` ([section, offset, component index, command, held]: each
    condition run, held True, or None when image-match was left to the caller's digest check),
    `failed` ([section, offset, component index, command] of the condition that failed)."""

    def __init__(self):
        self.digest = None
        self.uri = None
        self.records = []
        self.failed = None


last = None  # the Trace of the latest process()


class Component:
    def __init__(self, ident):
        self.id = ident
        self.params = {}
        self.actions = []  # ("fetch" | "write" | "copy" | "invoke", params snapshot)
        self.image_checked = False
        self.delta_checked = None  # (digest, size) of the source the delta condition held for
        self.ids_checked = set()  # condition codes that held for this component

    def digest(self):
        """(alg, bytes) of the image-digest parameter, or None."""
        d = self.params.get(P_DIGEST)
        if d is None:
            return None
        return parse_digest(cbor.decode(d) if isinstance(d, bytes) else d)

    def size(self):
        return self.params.get(P_SIZE)

    def encryption_info(self):
        """The SUIT_Encryption_Info (bstr-wrapped COSE_Encrypt) of an encrypted component, or
        None."""
        info = self.params.get(P_ENCRYPTION_INFO)
        if info is not None and not isinstance(info, bytes):
            raise SuitError("encryption-info is not a byte string")
        return info

    def delta(self):
        """(source digest, source size, patch digest, patch size) when the payload is a delta
        patch, else None."""
        d = self.params.get(P_DELTA_DIGEST)
        if d is None:
            return None
        if self.delta_checked is None:
            raise ConditionFailed("a delta manifest that does not check its source image")
        return self.delta_checked + (_digest_param(d), _uint(self.params.get(P_DELTA_SIZE)))  # noqa: RUF005

    def source(self):
        """(digest, size) of the delta's source image, as the manifest sets them."""
        return (_digest_param(self.params.get(P_DELTA_SOURCE_DIGEST)),
                _uint(self.params.get(P_DELTA_SOURCE_SIZE)))


def _digest_param(d):
    if d is None:
        raise SuitError("a delta parameter's digest is missing")
    return parse_digest(cbor.decode(d) if isinstance(d, bytes) else d)


def _uint(v):
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise SuitError("a delta parameter's size is not an unsigned integer")
    return v


class Plan:
    def __init__(self, seq, components, reference_uri):
        self.seq = seq
        self.components = components
        self.reference_uri = reference_uri


def parse_digest(obj):
    if not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[1], bytes):
        raise SuitError("SUIT_Digest is not [alg, bstr]")
    if obj[0] != ALG_SHA256 or len(obj[1]) != 32:
        raise SuitUnsupported("digest algorithm %r is not SHA-256" % (obj[0],))
    return obj[1]


def _eq(a, b):
    """Comparison that does not stop at the first difference."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


def authenticate(envelope_bytes, keys, trace=None):
    """Check the authentication wrapper; return the decoded envelope map and the manifest map.
    trace (a Trace) gets the manifest's digest as soon as the wrapper gives it."""
    if len(envelope_bytes) > MAX_ENVELOPE:
        raise SizeError("envelope larger than %d bytes" % MAX_ENVELOPE)
    env = cbor.decode(envelope_bytes)
    if isinstance(env, cbor.Tag):
        if env.tag != TAG_ENVELOPE:
            raise SuitError("CBOR tag %d is not a SUIT envelope" % env.tag)
        env = env.value
    if not isinstance(env, dict):
        raise SuitError("envelope is not a map")
    auth_b = env.get(_AUTH)
    man_b = env.get(_MANIFEST)
    if not isinstance(auth_b, bytes) or not isinstance(man_b, bytes):
        raise SuitError("envelope lacks the authentication wrapper or the manifest")
    auth = cbor.decode(auth_b)
    # SUIT_Authentication = [bstr .cbor SUIT_Digest, + bstr .cbor SUIT_Authentication_Block]
    if not isinstance(auth, list) or not auth or not isinstance(auth[0], bytes):
        raise SuitError("authentication wrapper malformed")
    if len(auth) < 2:
        raise UnsignedError("authentication wrapper holds no signature")
    expected = parse_digest(cbor.decode(auth[0]))
    if trace is not None:
        trace.digest = expected
    # The digest covers the manifest's encoded byte string, head included.
    h = hashlib.sha256()
    h.update(cbor.head(2, len(man_b)))
    h.update(man_b)
    if not _eq(h.digest(), expected):
        raise SignatureError("manifest digest does not match the authentication wrapper")
    ok = False
    for block in auth[1:]:
        if not isinstance(block, bytes):
            raise SuitError("authentication block is not a byte string")
        try:
            cose.verify_sign1(block, auth[0], keys)
            ok = True
            break
        except SignatureError:
            pass
    if not ok:
        raise SignatureError("no authentication block verifies with a trusted key")
    manifest = cbor.decode(man_b)
    if not isinstance(manifest, dict):
        raise SuitError("manifest is not a map")
    return env, manifest


def _member(env, manifest, key):
    """A sequence (bstr) that may be severable: inline, or by digest with the bytes in env."""
    v = manifest.get(key)
    if v is None or isinstance(v, bytes):
        return v
    want = parse_digest(v)
    b = env.get(key)
    if b is None:
        return None  # severed: only its digest travels with the manifest
    if not isinstance(b, bytes):
        raise SuitError("severable member is not a byte string")
    h = hashlib.sha256()
    h.update(cbor.head(2, len(b)))
    h.update(b)
    if not _eq(h.digest(), want):
        raise SignatureError("severable member %d does not match its digest" % key)
    return b


class _Interpreter:
    def __init__(self, components, ids, image_match, source_match=None, trace=None):
        self.components = components
        self.ids = ids
        self.image_match = image_match
        self.source_match = source_match
        self.current = [0] if len(components) == 1 else []
        self.trace = trace if trace is not None else Trace()
        self.section = 0  # the manifest key of the sequence running (3: common's shared one)
        self.at = 0  # byte offset of the running top-level command in its section

    def run(self, seq_bytes, depth=0):
        if depth > 4:
            raise SuitError("command sequences nested too deeply")
        offsets = None
        if depth:
            seq = cbor.decode(seq_bytes)  # nested: its records keep the outer command's offset
        else:
            try:
                seq, offsets = cbor.decode_offsets(seq_bytes)
            except CborError:
                seq = cbor.decode(seq_bytes)  # not an array: refused below
        if not isinstance(seq, list) or len(seq) % 2:
            raise SuitError("command sequence is not [code, argument, ...]")
        for i in range(0, len(seq), 2):
            if offsets is not None:
                self.at = offsets[i]
            if seq[i] in _CONDITIONS:
                self._condition(seq[i], seq[i + 1])
            else:
                self.command(seq[i], seq[i + 1], depth)

    def _condition(self, code, arg):
        """Run condition code, keeping its record (held) or the failure's."""
        tr = self.trace
        try:
            deferred = self.command(code, arg, 0)
        except ConditionFailed:
            tr.failed = [self.section, self.at, self._index(), code]
            raise
        if len(tr.records) < MAX_RECORDS:
            tr.records.append([self.section, self.at, self._index(), code,
                               None if deferred else True])

    def _index(self):
        return self.current[0] if self.current else 0

    def _targets(self):
        return [self.components[i] for i in self.current]

    def _check_id(self, param, have, what):
        for c in self._targets():
            want = c.params.get(param)
            if not isinstance(want, bytes):
                raise SuitError("%s condition without a %s identifier" % (what, what))
            if not _eq(want, have):
                raise ConditionFailed("%s identifier does not match this device" % what)
            c.ids_checked.add(param)

    def command(self, code, arg, depth):
        if code == _VENDOR:
            self._check_id(P_VENDOR, self.ids[0], "vendor")
        elif code == _CLASS:
            self._check_id(P_CLASS, self.ids[1], "class")
        elif code == _DEVICE:
            self._check_id(P_DEVICE, self.ids[2], "device")
        elif code == _IMAGE_MATCH:
            if self.image_match is None:
                return True  # deferred: the caller checks the digest as it stages
            for c in self._targets():
                if not self.image_match(c, c.digest(), c.size()):
                    raise ConditionFailed("image does not match its digest")
                c.image_checked = True
        elif code == _DELTA_SOURCE:
            for c in self._targets():
                src = c.source()
                if self.source_match is None or not self.source_match(c, src[0], src[1]):
                    raise ConditionFailed("the delta's source image is not on this device")
                c.delta_checked = src
        elif code == _SLOT:
            for c in self._targets():
                if c.params.get(P_SLOT, 0) != 0:
                    raise ConditionFailed("component slot is not 0")
        elif code == _CHECK_CONTENT:
            raise SuitUnsupported("check-content")
        elif code == _ABORT:
            raise ConditionFailed("abort")
        elif code == _SET_INDEX:
            if arg is True:
                self.current = list(range(len(self.components)))
            elif isinstance(arg, int) and not isinstance(arg, bool):
                self.current = [arg]
            elif isinstance(arg, list):
                self.current = arg
            else:
                raise SuitError("set-component-index argument")
            for i in self.current:
                if not isinstance(i, int) or not 0 <= i < len(self.components):
                    raise SuitError("component index %r out of range" % (i,))
        elif code in (_OVERRIDE, _SET_PARAMS):
            if not isinstance(arg, dict):
                raise SuitError("parameters are not a map")
            for c in self._targets():
                for k in arg:
                    if code == _OVERRIDE or k not in c.params:
                        c.params[k] = arg[k]
        elif code == _TRY_EACH:
            if not isinstance(arg, list) or not arg:
                raise SuitError("try-each argument")
            for alt in arg:
                if alt is None:
                    return
                if not isinstance(alt, bytes):
                    raise SuitError("try-each alternative is not a byte string")
                saved = [dict(c.params) for c in self.components]
                held = len(self.trace.records)
                try:
                    self.run(alt, depth + 1)
                    return
                except ConditionFailed:
                    for c, p in zip(self.components, saved):
                        c.params = p
                    del self.trace.records[held:]  # an alternative that failed is no record
                    self.trace.failed = None
            self.trace.failed = [self.section, self.at, self._index(), code]
            raise ConditionFailed("no try-each alternative succeeded")
        elif code == _RUN_SEQUENCE:
            if not isinstance(arg, bytes):
                raise SuitError("run-sequence argument")
            self.run(arg, depth + 1)
        elif code in (_FETCH, _WRITE, _COPY, _INVOKE):
            name = {_FETCH: "fetch", _WRITE: "write", _COPY: "copy", _INVOKE: "invoke"}[code]
            for c in self._targets():
                c.actions.append((name, dict(c.params)))
        else:
            raise SuitUnsupported("SUIT command %r" % (code,))


def process(envelope_bytes, keys, ids, min_seq=0, image_match=None, max_image=None,
            source_match=None):
    """Authenticate and interpret an envelope for this device.

    keys: trusted 65-byte P-256 points; ids: (vendor_id, class_id, device_id) as bytes;
    min_seq: lowest acceptable sequence number (anti-rollback); image_match(component, digest,
    size) -> bool checks a payload when it is available (None: checked later by the caller);
    max_image: largest image the device can hold (its staging slot); source_match(component,
    digest, size) -> bool checks a delta's source image (None: every delta is refused).
    The run's Trace is `last` (also when it raises)."""
    global last
    last = trace = Trace()
    env, m = authenticate(envelope_bytes, keys, trace)
    if isinstance(m.get(4), str):
        trace.uri = m.get(4)
    if m.get(_M_VERSION) != 1:
        raise SuitUnsupported("manifest version %r" % (m.get(_M_VERSION),))
    seq = m.get(_M_SEQ)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SuitError("sequence number missing or not an unsigned integer")
    if seq > MAX_SEQ:
        raise SequenceNumberError("sequence number %d does not fit in 32 bits (max %d)"
                                  % (seq, MAX_SEQ))
    if seq < min_seq:
        raise RollbackError("sequence number %d is below %d" % (seq, min_seq))
    common_b = m.get(_M_COMMON)
    if not isinstance(common_b, bytes):
        raise SuitError("manifest lacks suit-common")
    common = cbor.decode(common_b)
    if not isinstance(common, dict):
        raise SuitError("suit-common is not a map")
    comp_ids = common.get(_C_COMPONENTS)
    if not isinstance(comp_ids, list) or not comp_ids or len(comp_ids) > 8:
        raise SuitError("suit-components missing, empty or longer than 8")
    components = [Component(c) for c in comp_ids]
    it = _Interpreter(components, ids, image_match, source_match, trace)
    shared = common.get(_C_SHARED)
    sequences = []
    for key in (_M_PAYLOAD_FETCH, _M_INSTALL, _M_VALIDATE, _M_LOAD, _M_INVOKE):
        s = _member(env, m, key) if key in _SEVERABLE else m.get(key)
        if s is not None:
            if not isinstance(s, bytes):
                raise SuitError("command sequence %d is not a byte string" % key)
            sequences.append((key, s))
    if _M_TEXT in m:
        _member(env, m, _M_TEXT)
    if not sequences:
        sequences.append((0, None))  # the shared sequence (identity conditions) always runs
    for key, s in sequences:
        it.current = [0] if len(components) == 1 else []
        if shared is not None:
            it.section = _M_COMMON
            it.run(shared)
        if s is not None:
            it.section = key
            it.run(s)
    for c in components:
        # Fail closed: a manifest that never checks the vendor and class identifiers could
        # install on any device.
        if P_VENDOR not in c.ids_checked or P_CLASS not in c.ids_checked:
            raise ConditionFailed("manifest does not check the vendor and class identifiers")
        size = c.size()
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise SuitError("image size is not an unsigned integer")
        if size is not None and max_image is not None and size > max_image:
            raise SizeError("image of %d bytes exceeds the slot (%d)" % (size, max_image))
        c.delta()  # a delta payload whose source condition never held is refused here
    return Plan(seq, components, m.get(4))

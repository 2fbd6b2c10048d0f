# The device's trust anchors (docs/formats/trust-store.md): the keys it accepts SUIT envelopes
# from (role "vendor") and schedules from (role "scheduler"), one NVM record each. A record of
# schema 1 is what provisioning wrote (the 65-byte points, version 0); schema 2 is what a
# trust-store update wrote (version u32 big-endian, then the points): keys and version in one
# record, so a power cut leaves the old anchors or the new ones, never one without the other.
# The record is kept across a revert (NVM keep flag) and an application's NVM migration never
# sees it (loader/nvm.py), so only a newer signed update replaces it. Without a vendor record
# the loader trusts the keys of its board configuration (the factory's).
from micropython import const

from loader.errors import SignatureError, TrustRollbackError, TrustStoreError

VENDOR = "trust.vendor"
SCHEDULER = "trust.scheduler"
SCHEMA_PROVISIONED = const(1)
SCHEMA_VERSIONED = const(2)
FORMAT = const(1)
K_FORMAT = const(1)
K_ROLE = const(2)
K_VERSION = const(3)
K_KEYS = const(4)
MAX_DOCUMENT = const(1024)
MAX_KEYS = const(7)
MAX_VERSION = 0xFFFFFFFF
_POINT = const(65)


def _record(role):
    if role == "vendor":
        return VENDOR
    if role == "scheduler":
        return SCHEDULER
    raise TrustStoreError("unknown trust role %r" % (role,))


def anchors(ld, role):
    """(version, [65-byte points]) of role as the device trusts it now. The vendor's fall back
    to the board configuration's keys (version 0) until a record exists; the scheduler's are
    ([]) until provisioned."""
    got = ld.nvm().get(_record(role))
    if got is None:
        return 0, list(ld.board.keys) if role == "vendor" else []
    schema = got[0]
    value = bytes(got[1])
    version = 0
    if schema == SCHEMA_VERSIONED and len(value) >= 4:
        version = int.from_bytes(value[:4], "big")
        value = value[4:]
    elif schema != SCHEMA_PROVISIONED:
        return 0, []  # a record this loader cannot read trusts nothing
    return version, [bytes(value[i : i + _POINT])
                     for i in range(0, len(value) - len(value) % _POINT, _POINT)]


def keys(ld, role):
    """The 65-byte points the device trusts for role now."""
    return anchors(ld, role)[1]


def check(ld, document):
    """Verify a trust-store update against the anchors of its role: (role, version, points).
    The update already in place passes as it is. Otherwise raises TrustStoreError (shape,
    keys), SignatureError (not signed by a current anchor of the role) or TrustRollbackError
    (a version not above the current one)."""
    from loader import cbor, cose, ecdsa_p256

    if not isinstance(document, (bytes, bytearray)) or len(document) > MAX_DOCUMENT:
        raise TrustStoreError("a trust-store update is a byte string of at most %d bytes"
                              % MAX_DOCUMENT)
    try:
        obj = cbor.decode(document)
        payload = obj.value[2] if isinstance(obj, cbor.Tag) and isinstance(obj.value, list) \
            and len(obj.value) == 4 else None
        m = cbor.decode(payload) if isinstance(payload, bytes) else None
    except Exception:
        m = None
    if not isinstance(m, dict) or m.get(K_FORMAT) != FORMAT:
        raise TrustStoreError("not a trust-store update of format 1")
    role = m.get(K_ROLE)
    if not isinstance(role, str):
        raise TrustStoreError("the role is not a text string")
    _record(role)
    version = m.get(K_VERSION)
    new = m.get(K_KEYS)
    if not isinstance(version, int) or isinstance(version, bool) \
            or not 1 <= version <= MAX_VERSION:
        raise TrustStoreError("the version is not an integer in 1..2^32-1")
    if not isinstance(new, list) or not 1 <= len(new) <= MAX_KEYS:
        raise TrustStoreError("a trust-store update names 1..%d keys" % MAX_KEYS)
    for p in new:
        if not isinstance(p, bytes):
            raise TrustStoreError("a key is not a byte string")
        try:
            ecdsa_p256.decode_point(p)
        except ValueError as e:
            raise TrustStoreError("%s" % e)
    cur_version, cur_keys = anchors(ld, role)
    if version == cur_version and new == cur_keys:
        return role, version, new  # the update in place already (its signer may be revoked)
    if not cur_keys:
        raise SignatureError("no %s key is trusted: nothing can sign a rotation" % role)
    cose.open_sign1(document, cur_keys)
    if version <= cur_version:
        raise TrustRollbackError("%s trust version %d is not above %d"
                                 % (role, version, cur_version))
    return role, version, new


def update(ld, document):
    """Verify a trust-store update (check) and make it the role's anchors: one NVM record,
    written with one atomic put. Applying the update already in place writes nothing. Returns
    (role, version)."""
    role, version, new = check(ld, document)
    value = version.to_bytes(4, "big") + b"".join(new)
    store = ld.nvm()
    rec = _record(role)
    got = store.get(rec)
    if got is None or got[0] != SCHEMA_VERSIONED or bytes(got[1]) != value:
        store.put(rec, value, SCHEMA_VERSIONED, keep=True)
    return role, version

# SUIT reports (draft-ietf-suit-report) from the device (docs/formats/suit-report.md): what it
# did with an update, the records of the conditions that held (loader.suit.Trace), the failing
# command as the result's record, the installed versions and digest as system-property-claims,
# suture's report fields as the report extensions -1..-7. Signed as a tagged COSE_Sign1 (ES256)
# with the device key, or, on a device without one, MACed as a tagged COSE_Mac0 (HMAC 256/256)
# under the report MAC key derived from the device secret (mac_key).
# The values below are a copy of suture.formats.suit_report's DEVICE_CONSTANTS, checked both
# ways by tests/formats/test_suit_report_format.py, as is the encoding (byte for byte the
# host's: definite lengths, shortest heads, map keys length-first then bytewise).
import hashlib

from loader import cbor, ecdsa_p256, mac0

REFERENCE = 99
NONCE = 2
RECORDS = 3
RESULT = 4
RESULT_CODE = 5
RESULT_RECORD = 6
RESULT_REASON = 7
COMPONENT_ID = 0
REASON_CONDITION_FAILED = 10
REASON_OPERATION_FAILED = 11
EXT_STATE = -1
EXT_SCHEDULE_NUMBER = -2
EXT_ROLLOUT_ID = -3
EXT_RELEASE_ID = -4
EXT_PROGRESS = -5
EXT_ERROR_MESSAGE = -6
EXT_BUSY = -7
P_IMAGE_DIGEST = 3
P_SEQUENCE_NUMBER = -263
P_COMMAND = -264
SECTION_COMMON = 3
ALG_SHA256 = -16
MAX_RECORDS = 16
MAC_KEY_INFO = b"suture-suit-report-mac-v1"
# loader error code -> the report's reason (any other: operation-failed)
REASONS = {20: 1, 21: 5, 22: 4, 23: 4, 24: 10, 25: 10, 27: 10, 28: 1, 31: 10}

_FIELDS = (("state", EXT_STATE), ("schedule_number", EXT_SCHEDULE_NUMBER),
           ("rollout_id", EXT_ROLLOUT_ID), ("release_id", EXT_RELEASE_ID),
           ("progress", EXT_PROGRESS), ("busy", EXT_BUSY))


def encode(v):
    """Deterministic CBOR of ints, byte and text strings, lists, dicts, True/False/None."""
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if v is None:
        return b"\xf6"
    if isinstance(v, int):
        return cbor.head(0, v) if v >= 0 else cbor.head(1, -1 - v)
    if isinstance(v, (bytes, bytearray)):
        return cbor.enc_bstr(bytes(v))
    if isinstance(v, str):
        return cbor.enc_tstr(v)
    if isinstance(v, (list, tuple)):
        return cbor.head(4, len(v)) + b"".join(encode(x) for x in v)
    if isinstance(v, dict):
        pairs = [(encode(k), k) for k in v]
        pairs.sort(key=lambda p: (len(p[0]), p[0]))
        return cbor.head(5, len(v)) + b"".join(k + encode(v[key]) for k, key in pairs)
    raise TypeError("cannot encode %r" % (type(v),))


def record(section, offset, component, command=None):
    """A SUIT_Record of the top-level manifest: where a command ran; its property -264 names
    the command (a condition's code)."""
    return [[], section, offset, component, {} if command is None else {P_COMMAND: command}]


def report(manifest_digest, fields, records=(), failed_at=None, uri=None, nonce=None,
           installed_digest=None):
    """The SUIT_Report map for suture's report `fields` (state, installed, error, ...).
    records: [section, offset, component, command] of the conditions that held; failed_at:
    the failing one (None: the manifest's start); installed_digest: the application's
    SHA-256, claimed with its version."""
    ref = [] if uri is None else [uri]
    ref.append([ALG_SHA256, manifest_digest])
    out = {REFERENCE: ref}
    if nonce is not None:
        out[NONCE] = nonce
    recs = [record(r[0], r[1], r[2], r[3]) for r in records]
    for name, version in sorted((fields.get("installed") or {}).items()):
        claim = {COMPONENT_ID: [name.encode()], P_SEQUENCE_NUMBER: version}
        if name == "app" and installed_digest is not None:
            claim[P_IMAGE_DIGEST] = [ALG_SHA256, installed_digest]
        recs.append(claim)
    out[RECORDS] = recs
    error = fields.get("error")
    if error:
        code = error["code"]
        where = record(SECTION_COMMON, 0, 0) if failed_at is None else record(*failed_at)
        out[RESULT] = {RESULT_CODE: code, RESULT_RECORD: where,
                       RESULT_REASON: REASONS.get(code, REASON_OPERATION_FAILED)}
        if error.get("message"):
            out[EXT_ERROR_MESSAGE] = error["message"]
    else:
        out[RESULT] = True
    for name, key in _FIELDS:
        if fields.get(name) is not None:
            out[key] = fields[name]
    return out


def sign(report_map, key):
    """The report in a tagged COSE_Sign1, ES256 with the device's 32-byte P-256 key, payload
    attached (RFC 9052 section 4.2; deterministic RFC 6979 signature)."""
    payload = encode(report_map)
    protected = b"\xa1\x01\x26"  # {1: -7}
    h = hashlib.sha256()
    h.update(b"\x84")
    h.update(cbor.enc_tstr("Signature1"))
    h.update(cbor.enc_bstr(protected))
    h.update(b"\x40")
    h.update(cbor.enc_bstr(payload))
    sig = ecdsa_p256.sign(key, h.digest())
    return b"\xd2\x84" + cbor.enc_bstr(protected) + b"\xa0" + cbor.enc_bstr(payload) \
        + cbor.enc_bstr(sig)


def mac_key(secret, device_id):
    """The report MAC key of a device without a key pair: HKDF-SHA-256 of its secret (salt 32
    zero bytes, info MAC_KEY_INFO || 0x00 || device id), 32 bytes; not the request MAC key."""
    return mac0.hkdf_sha256(secret, MAC_KEY_INFO + b"\x00" + device_id.encode(), 32)


def mac(report_map, key):
    """The report in a tagged COSE_Mac0, HMAC 256/256 with the 32-byte report MAC key, payload
    attached (RFC 9052 section 6.2)."""
    payload = cbor.enc_bstr(encode(report_map))
    protected = b"\xa1\x01\x05"  # {1: 5}
    tag = mac0.hmac_sha256(key, b"\x84", cbor.enc_tstr("MAC0"), cbor.enc_bstr(protected),
                           b"\x40", payload)
    return b"\xd1\x84" + cbor.enc_bstr(protected) + b"\xa0" + payload + cbor.enc_bstr(tag)

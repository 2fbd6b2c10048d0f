# SUIT reports (draft-ietf-suit-report) from the device: what it did with an update (the
# records of the conditions that passed or failed, the failing command, the installed result),
# in a COSE_Mac0 under the device's symmetric key (its provisioned credential). The host's
# suture.suit.report decodes and verifies it; suture's report fields travel as the report
# extensions -1..-7 and the installed versions as system-property-claims (-259), as there.
from loader import cbor, mac0

REFERENCE = 99
RECORDS = 3
RESULT = 4
EXT_STATE = -1
EXT_SCHEDULE_NUMBER = -2
EXT_ROLLOUT_ID = -3
EXT_RELEASE_ID = -4
EXT_PROGRESS = -5
EXT_ERROR_MESSAGE = -6
P_SEQUENCE_NUMBER = -259
# loader error code -> SUIT report reason (docs/formats/suit-report.md)
_REASONS = {20: 1, 21: 5, 22: 4, 23: 4, 24: 10, 25: 10, 27: 10, 28: 1, 31: 10}


def encode(v):
    """CBOR of ints, byte and text strings, lists, dicts (keys as given), True/False/None."""
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
        return cbor.head(5, len(v)) + b"".join(encode(k) + encode(v[k]) for k in v)
    raise TypeError("cannot encode %r" % (type(v),))


def record(section, offset, component, properties=None, manifest_id=()):
    """A SUIT_Record: where a command ran and what it measured."""
    return [list(manifest_id), section, offset, component, properties or {}]


def report(manifest_digest, fields, records=(), failed_at=None, uri=None, nonce=None):
    """The SUIT_Report map for suture's report `fields` (state, installed, error, ...)."""
    ref = [] if uri is None else [uri]
    ref.append([-16, manifest_digest])
    out = {REFERENCE: ref}
    if nonce is not None:
        out[2] = nonce
    recs = list(records)
    for name, version in sorted((fields.get("installed") or {}).items()):
        recs.append({0: [name.encode()], P_SEQUENCE_NUMBER: version})
    out[RECORDS] = recs
    error = fields.get("error")
    if error:
        code = error["code"]
        out[RESULT] = {5: code, 6: failed_at or record(3, 0, 0),
                       7: _REASONS.get(code, 11)}
    else:
        out[RESULT] = True
    out[EXT_STATE] = fields["state"]
    for name, key in (("schedule_number", EXT_SCHEDULE_NUMBER), ("rollout_id", EXT_ROLLOUT_ID),
                      ("release_id", EXT_RELEASE_ID), ("progress", EXT_PROGRESS)):
        if fields.get(name) is not None:
            out[key] = fields[name]
    if error and error.get("message"):
        out[EXT_ERROR_MESSAGE] = error["message"]
    return out


def mac(report_map, key, kid=None):
    """The report in a tagged COSE_Mac0 (HMAC 256/256), attached."""
    payload = encode(report_map)
    protected = b"\xa1\x01\x05"
    head = b"\x84" + cbor.enc_tstr("MAC0") + cbor.enc_bstr(protected) + b"\x40"
    tag = mac0.hmac_sha256(key, head, cbor.enc_bstr(payload))
    unprotected = {} if kid is None else {4: kid}
    return b"\xd1" + encode([protected, unprotected, payload, tag])

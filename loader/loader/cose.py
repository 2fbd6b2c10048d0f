# COSE_Sign1 (RFC 9052 section 4.2) verification for ES256 (alg -7, RFC 9053 section 2.1) and
# its fully specified twin ESP256 (alg -9), with a detached payload as SUIT uses it.
import hashlib

from loader import cbor, ecdsa_p256
from loader.errors import SignatureError, SuitError

ALG_ES256 = -7
ALG_ESP256 = -9
TAG_SIGN1 = 18


def _parse(cose_bytes):
    obj = cbor.decode(cose_bytes)
    if isinstance(obj, cbor.Tag):
        if obj.tag != TAG_SIGN1:
            raise SuitError("COSE tag %d is not COSE_Sign1" % obj.tag)
        obj = obj.value
    # RFC 9052 4.2: COSE_Sign1 = [protected: bstr, unprotected: map, payload: bstr/nil, signature]
    if not isinstance(obj, list) or len(obj) != 4:
        raise SuitError("COSE_Sign1 is not a 4-element array")
    protected, unprotected, payload, signature = obj
    if not isinstance(protected, bytes) or not isinstance(unprotected, dict):
        raise SuitError("COSE_Sign1 headers malformed")
    if not isinstance(signature, bytes):
        raise SuitError("COSE_Sign1 signature is not a byte string")
    return protected, unprotected, payload, signature


def verify_sign1(cose_bytes, detached_payload, keys):
    """Check a COSE_Sign1 over detached_payload against any of keys (65-byte SEC1 points).
    Raises SignatureError unless one key verifies."""
    protected, unprotected, payload, signature = _parse(cose_bytes)
    if payload is not None and payload != detached_payload:
        raise SignatureError("COSE_Sign1 payload differs from the SUIT digest")
    hdr = cbor.decode(protected) if protected else {}
    if not isinstance(hdr, dict):
        raise SuitError("COSE protected header is not a map")
    alg = hdr.get(1)
    if alg is None:
        alg = unprotected.get(1)
    if alg not in (ALG_ES256, ALG_ESP256):
        raise SignatureError("COSE algorithm %r is not ES256/ESP256" % (alg,))
    # RFC 9052 4.4: Sig_structure = ["Signature1", body_protected, external_aad, payload]
    h = hashlib.sha256()
    h.update(b"\x84")
    h.update(cbor.enc_tstr("Signature1"))
    h.update(cbor.enc_bstr(protected))
    h.update(b"\x40")
    h.update(cbor.enc_bstr(detached_payload))
    digest = h.digest()
    for key in keys:
        if ecdsa_p256.verify(key, digest, signature):
            return True
    raise SignatureError("no trusted key verifies the signature")


def open_sign1(document, keys):
    """The payload of document, a tagged COSE_Sign1 with its payload attached, signed with ES256
    (in the protected header) by one of keys, decoded from CBOR. Raises a LoaderError
    (SignatureError for a document of another shape) unless it verifies."""
    obj = cbor.decode(document)
    if not isinstance(obj, cbor.Tag) or obj.tag != TAG_SIGN1:
        raise SignatureError("not a tagged COSE_Sign1")
    arr = obj.value
    if not isinstance(arr, list) or len(arr) != 4 or not isinstance(arr[2], bytes):
        raise SignatureError("COSE_Sign1 without an attached payload")
    if not isinstance(arr[0], bytes):
        raise SignatureError("COSE_Sign1 protected header is not a byte string")
    hdr = cbor.decode(arr[0]) if arr[0] else {}
    if not isinstance(hdr, dict) or hdr.get(1) != ALG_ES256:
        raise SignatureError("COSE_Sign1 is not signed with ES256")
    payload = arr[2]
    obj = arr = None
    verify_sign1(document, payload, keys)
    return cbor.decode(payload)

# SUIT_Encryption_Info (draft-ietf-suit-firmware-encryption): a COSE_Encrypt (tag 96) with a
# detached ciphertext. open_payload() finds the recipient one of the device's keys opens, unwraps
# the content-encryption key (A128KW/A192KW/A256KW with a provisioned KEK, or
# ECDH-ES+A128KW/A192KW/A256KW with the device's P-256 key and HKDF-SHA-256 over the draft's
# KDF context) and returns a streaming decryptor (loader.aesstream) for A1xxGCM or A1xxCTR.
#
# keys: a list of (kind, kid, key): ("kw", kid or None, KEK bytes) or ("ecdh", kid or None, d as
# an int). A key with a kid only tries recipients with the same kid or none. Provisioning and
# rotating them (NVM records per device or group) is the caller's.
from loader import aeskw, aesstream, cbor
from loader.errors import EncryptionUnsupported, KeyUnwrapError, SuitError

TAG_ENCRYPT = 96
_GCM = {1: 16, 2: 24, 3: 32}
_CTR = {-65534: 16, -65533: 24, -65532: 32}
_KW = {-3: 16, -4: 24, -5: 32}
_ECDH = {-29: -3, -30: -4, -31: -5}
_OTHER = b"SUIT Payload Encryption"


def _int(n):
    return cbor.head(0, n) if n >= 0 else cbor.head(1, -1 - n)


def kdf_context(kw_alg, recipient_protected):
    bits = _KW[kw_alg] * 8
    nils = b"\x83\xf6\xf6\xf6"
    return (b"\x84" + _int(kw_alg) + nils + nils + b"\x83" + cbor.head(0, bits)
            + cbor.enc_bstr(recipient_protected) + cbor.enc_bstr(_OTHER))


def _headers(protected, unprotected):
    if not isinstance(protected, bytes) or not isinstance(unprotected, dict):
        raise SuitError("COSE_Encrypt headers malformed")
    hdr = cbor.decode(protected) if protected else {}
    if not isinstance(hdr, dict):
        raise SuitError("COSE protected header is not a map")
    if 2 in hdr:
        raise EncryptionUnsupported("COSE_Encrypt with critical headers")
    alg = hdr.get(1)
    if alg is None:
        alg = unprotected.get(1)
    if alg is not None and not isinstance(alg, (int, str)):
        raise SuitError("COSE alg is not an integer or a text string")
    return hdr, alg


def _recipient_alg(recipient):
    if not isinstance(recipient, list) or len(recipient) != 3:
        return None
    try:
        return _headers(recipient[0], recipient[1])[1]
    except SuitError:
        return None


def _unwrap(recipient, keys):
    if not isinstance(recipient, list) or len(recipient) != 3:
        raise SuitError("COSE_recipient is not a 3-element array")
    rprot, runprot, wrapped = recipient
    _, ralg = _headers(rprot, runprot)
    if not isinstance(wrapped, bytes):
        raise SuitError("COSE_recipient ciphertext is not a byte string")
    rkid = runprot.get(4)
    for kind, kid, key in keys:
        if kid is not None and rkid is not None and kid != rkid:
            continue
        try:
            if ralg in _KW and kind == "kw" and len(key) == _KW[ralg]:
                return aeskw.unwrap(key, wrapped)
            if ralg in _ECDH and kind == "ecdh":
                epk = runprot.get(-1)
                if not isinstance(epk, dict) or epk.get(1) != 2 or epk.get(-1) != 1:
                    raise EncryptionUnsupported("ECDH-ES ephemeral key is not EC2 on P-256")
                x, y = epk.get(-2), epk.get(-3)
                if not isinstance(x, bytes) or not isinstance(y, bytes) or \
                        len(x) != 32 or len(y) != 32:
                    raise SuitError("ECDH-ES ephemeral key coordinates")
                from loader import ecdh_p256, mac0  # only for an ECDH-ES recipient

                secret = ecdh_p256.shared_secret(key, int.from_bytes(x, "big"),
                                                 int.from_bytes(y, "big"))
                kw = _ECDH[ralg]
                kek = mac0.hkdf_sha256(secret, kdf_context(kw, rprot), _KW[kw])
                return aeskw.unwrap(kek, wrapped)
        except KeyUnwrapError:
            continue
    return None


def open_payload(info_bytes, keys, offset=0, state=None):
    """A decryptor (update(chunk) -> plaintext, finish()) for the payload this
    SUIT_Encryption_Info describes; a CTR decryptor starts at byte `offset`, a GCM decryptor
    from the `state` a previous one saved (resuming)."""
    obj = cbor.decode(info_bytes)
    if not isinstance(obj, cbor.Tag) or obj.tag != TAG_ENCRYPT:
        raise SuitError("SUIT_Encryption_Info is not a COSE_Encrypt (tag 96)")
    body = obj.value
    if not isinstance(body, list) or len(body) != 4:
        raise SuitError("COSE_Encrypt is not a 4-element array")
    protected, unprotected, ciphertext, recipients = body
    _, alg = _headers(protected, unprotected)
    if ciphertext is not None:
        raise SuitError("COSE_Encrypt ciphertext must be detached")
    if alg in _CTR and protected:
        raise SuitError("AES-CTR with a protected header")
    if alg not in _GCM and alg not in _CTR:
        raise EncryptionUnsupported("content encryption %r" % (alg,))
    iv = unprotected.get(5)
    if not isinstance(iv, bytes):
        raise SuitError("COSE_Encrypt has no IV")
    if not isinstance(recipients, list) or not recipients:
        raise SuitError("COSE_Encrypt has no recipient")
    cek = None
    known = False
    for r in recipients:
        known = known or _recipient_alg(r) in _KW or _recipient_alg(r) in _ECDH
        cek = _unwrap(r, keys)
        if cek is not None:
            break
    if cek is None:
        if not known:
            raise EncryptionUnsupported("no recipient uses A128KW/A256KW or ECDH-ES+AES-KW")
        raise KeyUnwrapError("no provisioned key opens a recipient of the encryption info")
    if alg in _GCM:
        if len(cek) != _GCM[alg]:
            raise SuitError("CEK of %d bytes" % len(cek))
        if offset:
            raise SuitError("AES-GCM resumes from its saved state, not from an offset")
        aad = b"\x83" + cbor.enc_tstr("Encrypt") + cbor.enc_bstr(protected) + b"\x40"
        return aesstream.Gcm(cek, iv, aad, state)
    if len(cek) != _CTR[alg]:
        raise SuitError("CEK of %d bytes" % len(cek))
    return aesstream.Ctr(cek, iv, offset)

# ECDSA over NIST P-256 (FIPS 186-5), for ES256. SHA-256 comes from hashlib; only the curve
# arithmetic is here: Jacobian coordinates (a = -3 doubling) and Shamir's trick with 2-bit joint
# windows for u1*G + u2*Q. Verification is validated against every Wycheproof case
# (tests/loader/test_ecdsa.py) and cross-checked against `cryptography`.
#
# Signing (the device key signs the agent's reports, docs/formats/device-api.md) takes its nonce
# from RFC 6979 (HMAC-SHA256 over hashlib), so a device needs no random source to sign and the
# same key and message always give the same signature (tests/loader/test_ecdsa_sign.py: the
# RFC's vectors, and `cryptography` verifying and re-deriving the deterministic signature).
# k*G is a 4-bit fixed window over a 16-point table made per call (about 2 KiB, freed after).
# MicroPython's integers are not constant time: signing assumes nobody can time many of the
# device's signatures closely, which holds for a report every few minutes over a network.
import hashlib

from micropython import const

_BLOCK = const(64)
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5


def double(pt):
    """2 * pt in Jacobian coordinates (None: the point at infinity); shared with ECDH."""
    if pt is None:
        return None
    x, y, z = pt
    if y == 0:
        return None
    p = P
    delta = z * z % p
    gamma = y * y % p
    beta = x * gamma % p
    alpha = 3 * (x - delta) * (x + delta) % p
    x3 = (alpha * alpha - 8 * beta) % p
    z3 = ((y + z) * (y + z) - gamma - delta) % p
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % p
    return (x3, y3, z3)


def add(p1, p2):
    """p1 + p2 in Jacobian coordinates (None: the point at infinity); shared with ECDH."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    p = P
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1 = z1 * z1 % p
    z2z2 = z2 * z2 % p
    u1 = x1 * z2z2 % p
    u2 = x2 * z1z1 % p
    s1 = y1 * z2 * z2z2 % p
    s2 = y2 * z1 * z1z1 % p
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    if h == 0:
        if r == 0:
            return double(p1)
        return None
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - s1 * hhh) % p
    z3 = z1 * z2 * h % p
    return (x3, y3, z3)


def on_curve(x, y):
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x - 3 * x + B)) % P == 0


def decode_point(pub):
    """(x, y) from a 65-byte uncompressed SEC1 point; ValueError when not a curve point."""
    if len(pub) != 65 or pub[0] != 4:
        raise ValueError("public key is not an uncompressed P-256 point")
    x = int.from_bytes(pub[1:33], "big")
    y = int.from_bytes(pub[33:65], "big")
    if not on_curve(x, y):
        raise ValueError("public key is not on P-256")
    return x, y


def _joint_mul(u1, u2, qx, qy):
    """u1*G + u2*Q in Jacobian coordinates (None = infinity)."""
    g = (GX, GY, 1)
    q = (qx, qy, 1)
    g2 = double(g)
    g3 = add(g2, g)
    q2 = double(q)
    q3 = add(q2, q)
    gs = (None, g, g2, g3)
    qs = (None, q, q2, q3)
    table = [add(gs[i & 3], qs[i >> 2]) for i in range(16)]
    acc = None
    for shift in range(254, -2, -2):
        acc = double(double(acc))
        i = ((u1 >> shift) & 3) | (((u2 >> shift) & 3) << 2)
        if i:
            acc = add(acc, table[i])
    return acc


def verify_digest(point, e, r, s):
    """ECDSA verification of the integers r, s over the hash value e (SEC1 4.1.4)."""
    if not (0 < r < N and 0 < s < N):
        return False
    w = pow(s, N - 2, N)
    u1 = e * w % N
    u2 = r * w % N
    pt = _joint_mul(u1, u2, point[0], point[1])
    if pt is None:
        return False
    x, _, z = pt
    zz = z * z % P
    # x(R) mod n == r  <=>  X == r' * Z^2 (mod p) for r' = r or r + n (when below p).
    if x == r * zz % P:
        return True
    return r + N < P and x == (r + N) * zz % P


def verify(pub, message_hash, sig):
    """ES256: sig = r || s (64 bytes), message_hash = SHA-256 of the signed bytes."""
    if len(sig) != 64 or len(message_hash) != 32:
        return False
    try:
        point = decode_point(pub)
    except ValueError:
        return False
    e = int.from_bytes(message_hash, "big")
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    return verify_digest(point, e, r, s)


def _hmac(key, *parts):
    """HMAC-SHA256 (RFC 2104) of the concatenated parts, on hashlib.sha256."""
    pad = bytearray(_BLOCK)
    pad[: len(key)] = key
    for i in range(_BLOCK):
        pad[i] ^= 0x36
    inner = hashlib.sha256(pad)
    for part in parts:
        inner.update(part)
    for i in range(_BLOCK):
        pad[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(pad)
    outer.update(inner.digest())
    return outer.digest()


def _nonces(d, h):
    """RFC 6979 section 3.2 for P-256 and SHA-256: the candidate nonces k, in order, for the
    private scalar d and the 32-byte message hash h (qlen = hlen = 256, so bits2int is a plain
    big-endian read and a candidate is V itself)."""
    x = d.to_bytes(32, "big")
    h1 = (int.from_bytes(h, "big") % N).to_bytes(32, "big")
    v = b"\x01" * 32
    k = bytes(32)
    k = _hmac(k, v, b"\x00", x, h1)
    v = _hmac(k, v)
    k = _hmac(k, v, b"\x01", x, h1)
    v = _hmac(k, v)
    while True:
        v = _hmac(k, v)
        t = int.from_bytes(v, "big")
        if 0 < t < N:
            yield t
        k = _hmac(k, v, b"\x00")
        v = _hmac(k, v)


def _base_mul(k):
    """k*G in Jacobian coordinates: a 4-bit fixed window over the table 0..15 * G."""
    table = [None, (GX, GY, 1)]
    for i in range(2, 16):
        table.append(double(table[i >> 1]) if not i & 1 else add(table[i - 1], table[1]))
    acc = None
    for shift in range(252, -4, -4):
        acc = double(double(double(double(acc))))
        w = (k >> shift) & 15
        if w:
            acc = add(acc, table[w])
    return acc


def _affine(pt):
    x, y, z = pt
    zi = pow(z, P - 2, P)
    zi2 = zi * zi % P
    return x * zi2 % P, y * zi2 * zi % P


def public_point(d):
    """The 65-byte uncompressed SEC1 point of the private scalar d (1 <= d < n)."""
    if not 0 < d < N:
        raise ValueError("a P-256 private key is an integer in 1..n-1")
    x, y = _affine(_base_mul(d))
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def sign_digest(d, h):
    """(r, s): the deterministic ECDSA signature (RFC 6979) of the 32-byte hash h with the
    private scalar d."""
    e = int.from_bytes(h, "big")
    for k in _nonces(d, h):
        x, _ = _affine(_base_mul(k))
        r = x % N
        if r:
            s = pow(k, N - 2, N) * (e + r * d) % N
            if s:
                return r, s


def sign(private_key, message_hash):
    """ES256: the 64-byte r || s of the 32-byte message_hash with the 32-byte big-endian
    private_key (NVM record id.key)."""
    if len(private_key) != 32 or len(message_hash) != 32:
        raise ValueError("ES256 signs a 32-byte hash with a 32-byte private key")
    d = int.from_bytes(private_key, "big")
    if not 0 < d < N:
        raise ValueError("a P-256 private key is an integer in 1..n-1")
    r, s = sign_digest(d, message_hash)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")

# Streaming AES-CTR (RFC 9459: A128CTR/A192CTR/A256CTR) and AES-GCM (A128GCM/A192GCM/A256GCM)
# decryption over MicroPython's cryptolib, whose unix and board ports give AES-ECB only: the
# counter mode and GHASH are here. Bounded memory: a CTR decryptor keeps its offset; a GCM
# decryptor the GHASH accumulator, its 4-bit multiplication tables (32 integers) and the 16
# bytes that may be the tag, whatever the payload's size, so a payload is decrypted while it is
# staged (each call allocates its output, the size of its input).
#
# Resumable: a CTR decryptor starts at any byte offset (the counter is the IV plus the block
# number); a GCM decryptor resumes from a saved state (offset, GHASH accumulator, held-back
# bytes: state() and Gcm(..., state=...)), or from the plaintext already staged, whose
# ciphertext reabsorb() computes and runs through GHASH again (what loader.encrypted does after
# a reset: docs/formats/suit-encryption.md).
import cryptolib

from loader.errors import EncryptionUnsupported, SuitError, TagMismatchError

_ECB = 1
_MASK = (1 << 128) - 1


def _check_key(key):
    if len(key) == 24:
        raise EncryptionUnsupported("AES-192: cryptolib has AES-128 and AES-256 only")
    if len(key) not in (16, 32):
        raise SuitError("AES key of %d bytes" % len(key))


class Ctr:
    def __init__(self, key, iv, offset=0):
        if len(iv) != 16:
            raise SuitError("AES-CTR needs a 16-byte IV")
        _check_key(key)
        self._aes = cryptolib.aes(key, _ECB)
        self._iv = int.from_bytes(iv, "big")
        self.offset = offset

    def seek(self, offset):
        self.offset = offset

    def block(self, n):
        counter = (self._iv + n) & _MASK
        return self._aes.encrypt(counter.to_bytes(16, "big"))

    def update(self, data):
        """The plaintext of the next ciphertext bytes (any length; CTR is its own inverse,
        so this also encrypts)."""
        out = bytearray(len(data))
        _xor_stream(self, data, out)
        return out

    def decrypt_into(self, data, out):
        """Decrypt data into out (at least as long): no allocation beyond the block's."""
        return _xor_stream(self, data, out)

    reabsorb_into = decrypt_into  # the ciphertext of staged plaintext: the same XOR

    def verify(self, tag):
        if tag:
            raise SuitError("AES-CTR has no tag")

    def finish(self):
        """CTR has no tag: nothing is held back (the manifest's digest checks the payload)."""
        return b""


def _xor_stream(d, data, out):
    """data XOR the keystream of decryptor d from d.offset on, into out: whole 16-byte blocks
    as integers, the edges byte by byte. Advances d.offset; returns len(data)."""
    n = len(data)
    mv = memoryview(data)
    pos = 0
    while pos < n:
        off = d.offset
        k = off & 15
        ks = d.block(off >> 4)
        if not k and n - pos >= 16:
            v = int.from_bytes(mv[pos:pos + 16], "big") ^ int.from_bytes(ks, "big")
            out[pos:pos + 16] = v.to_bytes(16, "big")
            pos += 16
            d.offset = off + 16
            continue
        take = 16 - k
        if take > n - pos:
            take = n - pos
        for i in range(take):
            out[pos + i] = mv[pos + i] ^ ks[k + i]
        pos += take
        d.offset = off + take
    return n


def _tables(h):
    # GHASH's product X*H four bits at a time (bit 127 of the integer is the coefficient of
    # x^0): M[v] is the 4-bit polynomial v (its bit 3 the lowest degree) times H, R[b] the
    # reduction of the 4 low bits b shifted out by a multiplication with x^4. 32 small
    # integers per key.
    m = [0] * 16
    r = [0] * 16
    v = h
    for bit in (8, 4, 2, 1):
        for i in range(16):
            if i & bit:
                m[i] ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    for b in range(16):
        t = b
        for _ in range(4):
            t = (t >> 1) ^ (0xE1 << 120) if t & 1 else t >> 1
        r[b] = t
    return m, r


class Gcm:
    """AES-GCM decryption of `ciphertext || tag`, streamed: update() returns the plaintext of
    everything but the last 16 bytes seen (they may be the tag); finish() checks the tag and
    raises TagMismatchError when it does not verify. Plaintext given out before finish() is
    not yet authenticated: the caller keeps it out of use until finish() returns."""

    def __init__(self, key, iv, aad=b"", state=None):
        if len(iv) != 12:
            raise SuitError("AES-GCM needs a 12-byte IV")
        _check_key(key)
        self._aes = cryptolib.aes(key, _ECB)
        self._m, self._r = _tables(int.from_bytes(self._aes.encrypt(bytes(16)), "big"))
        self._j0 = int.from_bytes(iv + b"\x00\x00\x00\x01", "big")
        self._aad_len = len(aad)
        self._part = bytearray(16)  # decrypt_into: the ciphertext of a partial block
        self._plen = 0
        if state is None:
            self._y = 0
            for i in range(0, len(aad), 16):
                self._ghash(aad[i:i + 16])
            self.offset = 0
            self._held = b""
        else:
            self.offset, self._y, self._held = state

    def state(self):
        """(offset, GHASH accumulator, held-back bytes): enough to resume after a reset, at
        an offset that is a multiple of 16 (the pending partial block is held back too)."""
        return (self.offset, self._y, self._held)

    def _mul(self, x):
        m = self._m
        r = self._r
        z = m[x & 15]
        x >>= 4
        for _ in range(31):
            z = (z >> 4) ^ r[z & 15] ^ m[x & 15]
            x >>= 4
        return z

    def _ghash(self, block):
        if len(block) < 16:
            block = bytes(block) + bytes(16 - len(block))
        self._y = self._mul(self._y ^ int.from_bytes(block, "big"))

    def block(self, n):
        counter = (self._j0 & ~0xFFFFFFFF) | ((self._j0 + 1 + n) & 0xFFFFFFFF)
        return self._aes.encrypt(counter.to_bytes(16, "big"))

    def update(self, data):
        held = self._held
        n = len(held) + len(data)
        usable = (n - 16) & ~15 if n > 16 else 0
        if not usable:
            self._held = held + bytes(data)
            return b""
        buf = held + bytes(data) if held else data
        mv = memoryview(buf)
        self._held = bytes(mv[usable:])
        out = bytearray(usable)
        self.decrypt_into(mv[:usable], out)
        return out

    # ---- for a caller that knows where the ciphertext ends (the stager): no holding back --
    def decrypt_into(self, data, out):
        """Decrypt the next ciphertext bytes (the tag kept apart by the caller) into out (at
        least as long). Returns len(data)."""
        n = len(data)
        mv = memoryview(data)
        part = self._part
        pos = 0
        while pos < n:
            k = self._plen
            if not k and n - pos >= 16:
                c = int.from_bytes(mv[pos:pos + 16], "big")
                self._y = self._mul(self._y ^ c)
                ks = int.from_bytes(self.block(self.offset >> 4), "big")
                out[pos:pos + 16] = (c ^ ks).to_bytes(16, "big")
                pos += 16
                self.offset += 16
                continue
            take = 16 - k
            if take > n - pos:
                take = n - pos
            ks = self.block(self.offset >> 4)
            for i in range(take):
                b = mv[pos + i]
                part[k + i] = b
                out[pos + i] = b ^ ks[k + i]
            pos += take
            self.offset += take
            self._plen = k + take
            if self._plen == 16:
                self._y = self._mul(self._y ^ int.from_bytes(part, "big"))
                self._plen = 0
        return n

    def reabsorb_into(self, plain, out):
        """The ciphertext of plaintext already staged (whole 16-byte blocks, from an offset
        that is a multiple of 16) into out, run through GHASH as if it had been decrypted
        here: a staging resumes from its staged plaintext instead of a saved GHASH state."""
        n = len(plain)
        if self.offset & 15 or n & 15 or self._held or self._plen:
            raise SuitError("AES-GCM resumes on whole blocks")
        mv = memoryview(plain)
        for i in range(0, n, 16):
            ks = int.from_bytes(self.block(self.offset >> 4), "big")
            c = int.from_bytes(mv[i:i + 16], "big") ^ ks
            self._y = self._mul(self._y ^ c)
            out[i:i + 16] = c.to_bytes(16, "big")
            self.offset += 16
        return n

    def verify(self, tag):
        """Check the 16-byte tag after the last decrypt_into(); TagMismatchError unless it
        verifies."""
        if len(tag) != 16:
            raise TagMismatchError("AES-GCM: the ciphertext is shorter than its tag")
        if self._plen:
            self._ghash(self._part[:self._plen])
            self._plen = 0
        self._check(tag, self.offset)

    def _check(self, tag, length):
        lengths = (self._aad_len * 8).to_bytes(8, "big") + (length * 8).to_bytes(8, "big")
        self._ghash(lengths)
        full = self._aes.encrypt(self._j0.to_bytes(16, "big"))
        expected = (int.from_bytes(full, "big") ^ self._y).to_bytes(16, "big")
        acc = 0
        for k in range(16):
            acc |= expected[k] ^ tag[k]
        if acc:
            raise TagMismatchError("AES-GCM: the authentication tag does not verify")

    def finish(self):
        """The plaintext of the last partial block; raises TagMismatchError unless the tag
        verifies."""
        if len(self._held) < 16:
            raise TagMismatchError("AES-GCM: the ciphertext is shorter than its tag")
        rest, tag = self._held[:-16], self._held[-16:]
        out = bytearray(len(rest))
        if rest:
            self._ghash(rest)
            ks = self.block(self.offset // 16)
            for k in range(len(rest)):
                out[k] = rest[k] ^ ks[k]
        self._check(tag, self.offset + len(rest))
        self.offset += len(rest)
        self._held = b""
        return bytes(out)

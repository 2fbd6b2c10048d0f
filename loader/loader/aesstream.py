# Streaming AES-CTR (RFC 9459: A128CTR/A192CTR/A256CTR) and AES-GCM (A128GCM/A192GCM/A256GCM)
# decryption over MicroPython's cryptolib, whose unix and board ports give AES-ECB only: the
# counter mode and GHASH are here. Bounded memory: a decryptor keeps one keystream block (CTR),
# or a block, the GHASH state and the 16 bytes that may be the tag (GCM), whatever the payload's
# size, so a payload is decrypted while it is staged.
#
# Resumable: a CTR decryptor starts at any byte offset (the counter is the IV plus the block
# number); a GCM decryptor's state (offset, GHASH accumulator, held-back bytes) is saved by
# state() and given back to Gcm(..., state=...) after a reset.
import cryptolib

from loader.errors import DigestError, SuitError, SuitUnsupported

_ECB = 1
_MASK = (1 << 128) - 1


def _check_key(key):
    if len(key) == 24:
        raise SuitUnsupported("AES-192: cryptolib has AES-128 and AES-256 only")
    if len(key) not in (16, 32):
        raise SuitError("AES key of %d bytes" % len(key))


class Ctr:
    def __init__(self, key, iv, offset=0):
        if len(iv) != 16:
            raise SuitError("AES-CTR needs a 16-byte IV")
        _check_key(key)
        self._aes = cryptolib.aes(key, _ECB)
        self._iv = int.from_bytes(iv, "big")
        self.offset = 0
        self._ks = b""
        self.seek(offset)

    def seek(self, offset):
        self.offset = offset
        self._ks = b""
        skip = offset % 16
        if skip:
            self._ks = self._block(offset // 16)[skip:]

    def _block(self, n):
        counter = (self._iv + n) & _MASK
        return self._aes.encrypt(counter.to_bytes(16, "big"))

    def update(self, data):
        out = bytearray(len(data))
        pos = 0
        while pos < len(data):
            if not self._ks:
                self._ks = self._block(self.offset // 16)
            take = min(len(self._ks), len(data) - pos)
            ks = self._ks
            for k in range(take):
                out[pos + k] = data[pos + k] ^ ks[k]
            self._ks = ks[take:]
            pos += take
            self.offset += take
        return bytes(out)

    def finish(self):
        """CTR has no tag: nothing is held back (the manifest's digest checks the payload)."""
        return b""


def _powers(h):
    # The GCM product X*H is the XOR of H*x^i over the set bits of X (bit 127 first): the
    # 128 multiples of H are computed once per key.
    out = []
    v = h
    for _ in range(128):
        out.append(v)
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return out


class Gcm:
    """AES-GCM decryption of `ciphertext || tag`, streamed: update() returns the plaintext of
    everything but the last 16 bytes seen (they may be the tag); finish() checks the tag and
    raises DigestError when it does not verify. Plaintext given out before finish() is not yet
    authenticated: the caller keeps it out of use until finish() returns."""

    def __init__(self, key, iv, aad=b"", state=None):
        if len(iv) != 12:
            raise SuitError("AES-GCM needs a 12-byte IV")
        _check_key(key)
        self._aes = cryptolib.aes(key, _ECB)
        self._h = _powers(int.from_bytes(self._aes.encrypt(bytes(16)), "big"))
        self._j0 = int.from_bytes(iv + b"\x00\x00\x00\x01", "big")
        self._aad_len = len(aad)
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
        z = 0
        hs = self._h
        for i in range(128):
            if (x >> (127 - i)) & 1:
                z ^= hs[i]
        return z

    def _ghash(self, block):
        if len(block) < 16:
            block = block + bytes(16 - len(block))
        self._y = self._mul(self._y ^ int.from_bytes(block, "big"))

    def _block(self, n):
        counter = (self._j0 & ~0xFFFFFFFF) | ((self._j0 + 1 + n) & 0xFFFFFFFF)
        return self._aes.encrypt(counter.to_bytes(16, "big"))

    def update(self, data):
        buf = self._held + bytes(data)
        usable = (len(buf) - 16) // 16 * 16 if len(buf) > 16 else 0
        self._held = buf[usable:]
        out = bytearray(usable)
        for i in range(0, usable, 16):
            block = buf[i:i + 16]
            self._ghash(block)
            ks = self._block(self.offset // 16)
            for k in range(16):
                out[i + k] = block[k] ^ ks[k]
            self.offset += 16
        return bytes(out)

    def finish(self):
        """The plaintext of the last partial block; raises DigestError unless the tag
        verifies."""
        if len(self._held) < 16:
            raise DigestError("AES-GCM: the ciphertext is shorter than its tag")
        rest, tag = self._held[:-16], self._held[-16:]
        out = bytearray(len(rest))
        if rest:
            self._ghash(rest)
            ks = self._block(self.offset // 16)
            for k in range(len(rest)):
                out[k] = rest[k] ^ ks[k]
        lengths = (self._aad_len * 8).to_bytes(8, "big") + \
            ((self.offset + len(rest)) * 8).to_bytes(8, "big")
        self._ghash(lengths)
        full = self._aes.encrypt(self._j0.to_bytes(16, "big"))
        expected = (int.from_bytes(full, "big") ^ self._y).to_bytes(16, "big")
        acc = 0
        for k in range(16):
            acc |= expected[k] ^ tag[k]
        if acc:
            raise DigestError("AES-GCM: the authentication tag does not verify")
        self.offset += len(rest)
        self._held = b""
        return bytes(out)

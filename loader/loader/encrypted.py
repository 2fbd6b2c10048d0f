# Encrypted payloads, decrypted while they are staged (draft-ietf-suit-firmware-encryption;
# docs/formats/suit-encryption.md). What is downloaded is the ciphertext; what the staging slot
# receives, and what the journal's record, the install and the manifest's image digest are
# about, is the plaintext. Nothing is decrypted before a provisioned key opens the
# SUIT_Encryption_Info: a release no key opens is refused before its DOWNLOADING record is
# opened (KeyUnwrapError), so it changes nothing.
#
# At finish: the ciphertext's size and SHA-256 (the manifest's ciphertext component), then
# AES-GCM's tag (TagMismatchError), then the plaintext's size and SHA-256 (the image's), and
# only then STAGED: plaintext that did not authenticate is never installed.
#
# Resuming after a reset: the DOWNLOADING record's progress is the plaintext staged (whole
# sectors, as for a plain payload). The ciphertext of that plaintext is computed again from the
# slot (AES-CTR at the counter of each block; AES-GCM the same, run through GHASH again, so no
# GHASH state is kept anywhere) to re-hash it, and the download continues at that offset: the
# ciphertext and the plaintext have the same offsets (the GCM tag follows the ciphertext).
import hashlib

from micropython import const

from loader.errors import (
    DigestError,
    EncryptionUnsupported,
    KeyUnwrapError,
    SizeError,
    SuitError,
    TagMismatchError,
)
from loader.flash import RegionReader
from loader.staging import Stager, encrypted_source

# NVM record (docs/formats/nvm.md, identity records): the device's decryption keys. Entries
# of kind (1 byte), kid length (1 byte), kid, key length (1 byte), key.
KEYS = "enc.keys"
KIND_KEK = const(1)  # an AES key-encryption key (A128KW: 16 bytes, A256KW: 32 bytes)
KIND_ECDH = const(2)  # a P-256 private key (ECDH-ES+AES-KW), 32 bytes big-endian
_OUT = const(512)  # ciphertext is decrypted this many bytes at a time into one buffer


def parse_keys(data):
    """The entries of an `enc.keys` record as loader.suit_encryption wants them: a list of
    ("kw", kid or None, KEK) and ("ecdh", kid or None, d)."""
    out = []
    pos = 0
    n = len(data)
    while pos < n:
        if pos + 2 > n:
            raise SuitError("enc.keys: a truncated entry")
        kind = data[pos]
        klen = data[pos + 1]
        pos += 2
        if pos + klen + 1 > n:
            raise SuitError("enc.keys: a truncated key id")
        kid = bytes(data[pos:pos + klen]) if klen else None
        pos += klen
        vlen = data[pos]
        pos += 1
        if pos + vlen > n:
            raise SuitError("enc.keys: a truncated key")
        value = bytes(data[pos:pos + vlen])
        pos += vlen
        if kind == KIND_KEK and vlen in (16, 32):
            out.append(("kw", kid, value))
        elif kind == KIND_ECDH and vlen == 32:
            out.append(("ecdh", kid, int.from_bytes(value, "big")))
        else:
            raise SuitError("enc.keys: an entry of kind %d with a %d-byte key" % (kind, vlen))
    return out


def device_keys(ld):
    """The provisioned decryption keys (an empty list when none are)."""
    rec = ld.nvm().get(KEYS)
    return [] if rec is None else parse_keys(bytes(rec[1]))


class EncryptedStager:
    """One encrypted payload being staged: open(checked) -> write(ciphertext)... ->
    finish(install). .offset, .size and .digest are the ciphertext's (what is downloaded);
    .image_size and .image_digest the plaintext's, .version and .component the signed
    release's. The plaintext goes through a plain Stager (.plain), which journals its resume
    point and records STAGED."""

    def __init__(self, ld, checkpoint=True):
        self.ld = ld
        self.plain = Stager(ld, checkpoint)
        self.plain.decrypted = True
        self.plan = None
        self.offset = 0
        self.size = 0
        self.digest = None
        self.image_size = 0
        self.image_digest = None
        self.version = 0
        self.component = 0
        self.encrypted = True
        self.dec = None
        self.ch = None
        self.out = bytearray(_OUT)  # the plaintext of one piece of ciphertext
        self.tag = b""
        self.taglen = 0

    @property
    def rec(self):
        return self.plain.rec

    def open(self, checked, resume=True):
        """Open (or resume) the staging of a verified encrypted release (what
        loader.staging.check returned). Returns the ciphertext offset the download goes on
        from."""
        try:
            return self._open(checked, resume)
        except MemoryError:
            self.out_of_memory()

    def _open(self, checked, resume):
        try:
            from loader import suit_encryption
        except ImportError:  # a firmware built without cryptolib (docs/formats/suit-encryption.md)
            raise EncryptionUnsupported("this firmware has no cryptolib: it cannot decrypt") \
                from None

        _, plan, size, digest, comp = checked
        src = encrypted_source(plan)
        csize = src.size()
        cdigest = src.digest()
        if cdigest is None or not isinstance(csize, int):
            raise SuitError("manifest gives no ciphertext digest and size")
        keys = device_keys(self.ld)
        if not keys:
            raise KeyUnwrapError("an encrypted release, and no decryption key is provisioned")
        # opens the CEK before anything is written: a wrong KEK changes nothing
        dec = suit_encryption.open_payload(plan.components[0].encryption_info(), keys)
        tag = csize - size
        if tag not in (0, 16) or (tag == 16) != hasattr(dec, "state"):
            raise SizeError("the ciphertext's size does not fit the plaintext's and the mode")
        self.plan = plan
        self.size = csize
        self.digest = cdigest
        self.image_size = size
        self.image_digest = digest
        self.version = plan.seq
        self.component = comp
        self.ch = hashlib.sha256()
        self.taglen = tag
        self.tag = bytearray(tag)
        done = self.plain.open(checked, resume)
        if done:
            self._reabsorb(dec, done)
        self.dec = dec
        self.offset = done
        return done

    def _reabsorb(self, dec, done):
        """Hash the ciphertext of the plaintext staged in [0, done) again, and bring the
        decryptor to done (GCM: through GHASH)."""
        buf = self.ld.buf
        mv = memoryview(buf)
        out = self.out
        omv = memoryview(out)
        reader = RegionReader(self.ld.staging, done)
        while True:
            n = reader.readinto(buf)
            if not n:
                break
            for i in range(0, n, _OUT):
                k = n - i if n - i < _OUT else _OUT
                dec.reabsorb_into(mv[i:i + k], out)
                self.ch.update(omv[:k])

    def write(self, data):
        """Hash and decrypt the next ciphertext bytes (any length); the plaintext is hashed
        and programmed. More bytes than the manifest's ciphertext size: FAILED (SizeError)."""
        mv = memoryview(data)
        n = len(mv)
        if self.offset + n > self.size:
            self.plain.refuse(SizeError("ciphertext is longer than the manifest's size"))
        self.ch.update(mv)
        body = self.size - self.taglen  # where the tag starts (GCM), in the ciphertext
        i = 0
        if self.offset < body:
            end = body - self.offset
            if end > n:
                end = n
            out = self.out
            omv = memoryview(out)
            while i < end:
                k = end - i if end - i < _OUT else _OUT
                self.dec.decrypt_into(mv[i:i + k], out)
                self.plain.write(omv[:k])
                i += k
        for j in range(i, n):
            self.tag[self.offset + j - body] = mv[j]
        self.offset += n
        return n

    def finish(self, install=False):
        """Check the ciphertext (size, SHA-256), the GCM tag, then the plaintext (size,
        SHA-256); STAGED, with INSTALL_REQUESTED when install. Returns the STAGED record."""
        st = self.plain
        if self.offset != self.size:
            st.refuse(SizeError("ciphertext is shorter than the manifest's size"))
        if self.ch.digest() != self.digest:
            st.refuse(DigestError("the ciphertext does not match its digest in the manifest"))
        try:
            self.dec.verify(self.tag)
        except TagMismatchError as err:
            st.refuse(err)
        return st.finish(install)

    def out_of_memory(self):
        self.dec = self.ch = None
        self.plain.out_of_memory()

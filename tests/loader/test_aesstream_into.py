"""loader.aesstream's fixed-buffer path, the one the stager uses (decrypt_into, reabsorb_into,
verify): against `cryptography` on random keys, IVs, lengths and piece sizes (pieces that cut
blocks anywhere), a resume from re-encrypted plaintext at a block boundary, and a tag that does
not verify (TagMismatchError)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCRIPT = """
import sys, json
from loader import aesstream
from loader.errors import LoaderError
out = []
for c in json.loads(open(sys.argv[1]).read()):
    key, iv, aad = bytes.fromhex(c["key"]), bytes.fromhex(c["iv"]), bytes.fromhex(c["aad"])
    ct, tag, cut = bytes.fromhex(c["ct"]), bytes.fromhex(c["tag"]), c["resume"]
    buf = bytearray(512)
    def new():
        return aesstream.Gcm(key, iv, aad) if c["mode"] == "gcm" else aesstream.Ctr(key, iv)
    d = new()
    plain = bytearray()
    pos = 0
    for n in c["pieces"]:
        piece = ct[pos:pos + n]
        d.decrypt_into(piece, buf)
        plain += buf[:len(piece)]
        pos += n
    try:
        d.verify(tag)
        first = plain.hex()
    except LoaderError as e:
        first = type(e).__name__
    # a reset: the plaintext staged up to `cut` (whole blocks) is encrypted again
    r = new()
    again = bytearray()
    for i in range(0, cut, 256):
        k = min(256, cut - i)
        r.reabsorb_into(plain[i:i + k], buf)
        again += buf[:k]
    rest = bytearray()
    for i in range(cut, len(ct), 300):
        piece = ct[i:i + 300]
        r.decrypt_into(piece, buf)
        rest += buf[:len(piece)]
    try:
        r.verify(tag)
        second = [again.hex(), (plain[:cut] + rest).hex()]
    except LoaderError as e:
        second = type(e).__name__
    out.append([first, second])
print("RESULT " + json.dumps(out))
"""


def test_fixed_buffer_decryption_matches_cryptography(
    run_mpy: Callable[..., Any], tmp_path: Path
) -> None:
    rng = random.Random(1919)
    cases: list[dict[str, Any]] = []
    for i in range(14):
        mode = "gcm" if i % 2 else "ctr"
        key = os.urandom(rng.choice([16, 32]))
        data = os.urandom(rng.randint(0, 1500))
        aad = os.urandom(rng.randint(0, 30)) if mode == "gcm" else b""
        if mode == "gcm":
            iv = os.urandom(12)
            sealed = AESGCM(key).encrypt(iv, data, aad)
            ct, tag = sealed[:-16], sealed[-16:]
        else:
            iv = os.urandom(16)
            enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
            ct, tag = enc.update(data) + enc.finalize(), b""
        bad = i in (3, 7)
        if bad:
            tag = bytes([tag[0] ^ 0x80]) + tag[1:]
        pieces = []
        left = len(ct)
        while left:
            n = min(left, rng.randint(1, 512))
            pieces.append(n)
            left -= n
        cut = rng.randint(0, len(ct)) // 16 * 16
        cases.append({"mode": mode, "key": key.hex(), "iv": iv.hex(), "aad": aad.hex(),
                      "ct": ct.hex(), "tag": tag.hex(), "pieces": pieces, "resume": cut,
                      "want": "TagMismatchError" if bad else data.hex(),
                      "again": ct[:cut].hex()})
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    got = run_mpy(SCRIPT, str(path), heapsize="1M")
    for case, (first, second) in zip(cases, got, strict=True):
        assert first == case["want"], case
        if case["want"] == "TagMismatchError":
            assert second == "TagMismatchError"
        else:
            assert second == [case["again"], case["want"]], case

"""ECDSA P-256 signing in MicroPython (loader/loader/ecdsa_p256.py): RFC 6979's P-256/SHA-256
vectors, `cryptography` verifying every signature and deriving the same deterministic one, the
public point derived on the device, refusals of bad keys, and the time and heap of one
signature on the unix port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

SIGN_FILE = """
import sys, json, hashlib
from loader import ecdsa_p256
out = {}
for line in open(sys.argv[1]):
    ident, key, msg = line.split()
    msg = b"" if msg == "-" else bytes.fromhex(msg)
    d = bytes.fromhex(key)
    sig = ecdsa_p256.sign(d, hashlib.sha256(msg).digest())
    out[ident] = [sig.hex(), ecdsa_p256.public_point(int.from_bytes(d, "big")).hex()]
print("RESULT " + json.dumps(out))
"""

# RFC 6979 appendix A.2.5: P-256, SHA-256.
RFC_KEY = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
RFC_PUB_X = 0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6
RFC_PUB_Y = 0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299
RFC_CASES = {
    "sample": ("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
               "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"),
    "test": ("F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
             "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"),
}


def _sign_all(run_mpy: Callable[..., dict[str, list[str]]], path: Path,
              cases: list[tuple[str, int, bytes]]) -> dict[str, list[str]]:
    lines = [f"{i} {d.to_bytes(32, 'big').hex()} {m.hex() or '-'}" for i, d, m in cases]
    path.write_text("\n".join(lines) + "\n")
    return run_mpy(SIGN_FILE, str(path))


def test_rfc6979_vectors(run_mpy: Callable[..., dict[str, list[str]]], tmp_path: Path) -> None:
    got = _sign_all(run_mpy, tmp_path / "cases.txt",
                    [(m, RFC_KEY, m.encode()) for m in RFC_CASES])
    for msg, (r, s) in RFC_CASES.items():
        assert got[msg][0] == (r + s).lower()
        assert got[msg][1] == "04" + f"{RFC_PUB_X:064x}{RFC_PUB_Y:064x}"


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(st.integers(min_value=1, max_value=N - 1),
                                st.binary(max_size=300)), min_size=6, max_size=6))
def test_cryptography_verifies_and_agrees(run_mpy: Callable[..., dict[str, list[str]]],
                                          tmp_path: Path,
                                          batch: list[tuple[int, bytes]]) -> None:
    got = _sign_all(run_mpy, tmp_path / "cases.txt",
                    [(str(n), d, m) for n, (d, m) in enumerate(batch)])
    for n, (d, msg) in enumerate(batch):
        key = ec.derive_private_key(d, ec.SECP256R1())
        sig_hex, pub_hex = got[str(n)]
        assert bytes.fromhex(pub_hex) == key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint)
        sig = bytes.fromhex(sig_hex)
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        # raises InvalidSignature when the device's signature does not verify
        key.public_key().verify(encode_dss_signature(r, s), msg, ec.ECDSA(hashes.SHA256()))
        det = key.sign(msg, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        assert decode_dss_signature(det) == (r, s)


def test_bad_keys_refused(run_mpy: Callable[..., dict[str, object]]) -> None:
    src = """
import json
from loader import ecdsa_p256
N = ecdsa_p256.N
res = {}
for name, key in (("zero", bytes(32)), ("n", N.to_bytes(32, "big")), ("short", b"\\x01" * 31),
                  ("one", (1).to_bytes(32, "big"))):
    try:
        ecdsa_p256.sign(key, bytes(32))
        res[name] = "signed"
    except ValueError:
        res[name] = "refused"
try:
    ecdsa_p256.sign((1).to_bytes(32, "big"), bytes(31))
    res["short-hash"] = "signed"
except ValueError:
    res["short-hash"] = "refused"
print("RESULT " + json.dumps(res))
"""
    assert run_mpy(src) == {"zero": "refused", "n": "refused", "short": "refused",
                            "one": "signed", "short-hash": "refused"}


def test_sign_time_and_heap(run_mpy: Callable[..., dict[str, int]],
                            figures: Callable[[str, object], None]) -> None:
    """One signature's time and the heap it needs at its peak, on a small heap: a board
    with 24 KiB of heap signs a report."""
    src = """
import gc, json, time, hashlib
from loader import ecdsa_p256
key = bytes(range(1, 33))
h = hashlib.sha256(b"report").digest()
ecdsa_p256.sign(key, h)
gc.collect()
free = gc.mem_free()
t = time.ticks_us()
sig = ecdsa_p256.sign(key, h)
us = time.ticks_diff(time.ticks_us(), t)
print("RESULT " + json.dumps({"us": us, "sig": len(sig), "free_before": free,
                              "free_after": gc.mem_free()}))
"""
    got = run_mpy(src, heapsize="24K")
    assert got["sig"] == 64
    figures("ES256 sign on the unix port (ms)", got["us"] / 1000)
    figures("heap free before one sign, of 24 KiB (bytes)", got["free_before"])

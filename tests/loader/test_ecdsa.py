"""ECDSA P-256 (ES256) verification in MicroPython: every Wycheproof case, and a cross-check
against `cryptography` with hypothesis-generated keys and messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VERIFY_FILE = """
import sys, json, hashlib
from loader import ecdsa_p256
out = {}
for line in open(sys.argv[1]):
    ident, pub, msg, sig = line.split()
    msg = b"" if msg == "-" else bytes.fromhex(msg)
    sig = b"" if sig == "-" else bytes.fromhex(sig)
    out[ident] = ecdsa_p256.verify(bytes.fromhex(pub), hashlib.sha256(msg).digest(), sig)
print("RESULT " + json.dumps(out))
"""


def _write_cases(path: Path, cases: list[tuple[str, bytes, bytes, bytes]]) -> str:
    lines = [f"{i} {pub.hex()} {msg.hex() or '-'} {sig.hex() or '-'}" for i, pub, msg, sig in cases]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_wycheproof_p1363_all_cases_under_micropython(
    run_mpy: Callable[..., dict[str, object]],
    shared_vectors: Path,
    tmp_path: Path,
    figures: Callable[[str, object], None],
) -> None:
    data = json.loads(
        (shared_vectors / "wycheproof/ecdsa_secp256r1_sha256_p1363_test.json").read_text()
    )
    cases = []
    expected = {}
    for group in data["testGroups"]:
        pub = bytes.fromhex(group["publicKey"]["uncompressed"])
        for t in group["tests"]:
            ident = str(t["tcId"])
            cases.append((ident, pub, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"])))
            expected[ident] = t["result"]
    # There are no "acceptable" cases in this file; valid must verify, invalid must not.
    assert set(expected.values()) == {"valid", "invalid"}
    got = run_mpy(VERIFY_FILE, _write_cases(tmp_path / "cases.txt", cases), heapsize="512K")
    wrong = {i: (expected[i], got[i]) for i in expected if got[i] != (expected[i] == "valid")}
    assert wrong == {}
    assert len(got) == data["numberOfTests"]
    figures("wycheproof ES256 cases run under MicroPython", len(got))


def _raw_sig(key: ec.EllipticCurvePrivateKey, msg: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=2**255),
            st.binary(max_size=300),
            st.integers(min_value=0, max_value=511),
        ),
        min_size=8,
        max_size=8,
    )
)
def test_cross_check_with_cryptography(
    run_mpy: Callable[..., dict[str, object]],
    tmp_path: Path,
    batch: list[tuple[int, bytes, int]],
) -> None:
    cases = []
    expect = {}
    for n, (secret, msg, bit) in enumerate(batch):
        key = ec.derive_private_key(secret, ec.SECP256R1())
        pub = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        sig = _raw_sig(key, msg)
        bad = bytearray(sig)
        bad[bit // 8] ^= 1 << (bit % 8)
        cases.append((f"good{n}", pub, msg, sig))
        cases.append((f"badsig{n}", pub, msg, bytes(bad)))
        cases.append((f"badmsg{n}", pub, msg + b"!", sig))
        expect.update({f"good{n}": True, f"badsig{n}": False, f"badmsg{n}": False})
    got = run_mpy(VERIFY_FILE, _write_cases(tmp_path / "cases.txt", cases))
    assert got == expect


def test_public_key_off_curve_refused(run_mpy: Callable[..., dict[str, object]]) -> None:
    src = """
from loader import ecdsa_p256
G = b"\\x04" + ecdsa_p256.GX.to_bytes(32, "big") + ecdsa_p256.GY.to_bytes(32, "big")
bad = G[:-1] + bytes([G[-1] ^ 1])
res = {}
for name, key in (("g", G), ("off", bad), ("short", G[:64]), ("compressed", b"\\x02" + G[1:33])):
    try:
        ecdsa_p256.decode_point(key)
        res[name] = True
    except ValueError:
        res[name] = False
print("RESULT " + __import__("json").dumps(res))
"""
    assert run_mpy(src) == {"g": True, "off": False, "short": False, "compressed": False}

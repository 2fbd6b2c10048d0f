"""Signed but malformed manifests: the device's SUIT interpreter answers each one with a result
or a named LoaderError, never another exception (hypothesis-generated command sequences)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suture.sim.testing import CLASS_ID, VENDOR_ID

KEY = ec.derive_private_key(0x5EED, ec.SECP256R1())
PUB = KEY.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

PROCESS_ALL = """
import sys, json
from loader import suit
from loader.errors import LoaderError
pub = bytes.fromhex(sys.argv[1])
ids = (bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]), b"")
out = []
for line in open(sys.argv[4]):
    try:
        p = suit.process(bytes.fromhex(line.strip()), [pub], ids, max_image=65536)
        out.append("ok")
    except LoaderError as e:
        out.append(type(e).__name__)
print("RESULT " + json.dumps({"r": out}))
"""


def sign(manifest: dict[int, Any]) -> bytes:
    manifest_b = cbor2.dumps(manifest)
    digest = cbor2.dumps([-16, hashlib.sha256(cbor2.dumps(manifest_b)).digest()])
    protected = cbor2.dumps({1: -7})
    to_sign = cbor2.dumps(["Signature1", protected, b"", digest])
    r, s = decode_dss_signature(KEY.sign(to_sign, ec.ECDSA(hashes.SHA256())))
    sign1 = cbor2.CBORTag(18, [protected, {}, None, r.to_bytes(32, "big") + s.to_bytes(32, "big")])
    auth = cbor2.dumps([digest, cbor2.dumps(sign1)])
    return cbor2.dumps(cbor2.CBORTag(107, {2: auth, 3: manifest_b}))


leaf = (
    st.integers(-30, 40)
    | st.binary(max_size=20)
    | st.just(VENDOR_ID.bytes)
    | st.just(CLASS_ID.bytes)
    | st.booleans()
    | st.none()
    | st.text(max_size=5)
)
value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.integers(0, 30), inner, max_size=4)
    | st.lists(inner, max_size=4).map(cbor2.dumps),
    max_leaves=10,
)
codes = st.sampled_from([1, 2, 3, 5, 6, 12, 14, 15, 18, 19, 20, 21, 22, 23, 24, 32]) | st.integers(
    -5, 40
)
sequence = st.lists(st.tuples(codes, value), max_size=6).map(
    lambda pairs: cbor2.dumps([x for pair in pairs for x in pair])
)
GOOD_SHARED = [20, {1: VENDOR_ID.bytes, 2: CLASS_ID.bytes,
                    3: cbor2.dumps([-16, bytes(32)]), 14: 100}, 1, 15, 2, 15]


@st.composite
def manifests(draw: st.DrawFn) -> dict[int, Any]:
    shared = draw(st.just(cbor2.dumps(GOOD_SHARED)) | sequence)
    components = draw(st.just([[b"app"]]) | value)
    common = draw(st.just(cbor2.dumps({2: components, 4: shared})) | value)
    m: dict[int, Any] = {1: draw(st.just(1) | value), 2: draw(st.integers(0, 5) | value), 3: common}
    for key in draw(st.lists(st.sampled_from([7, 8, 9, 16, 20, 23]), max_size=3)):
        m[key] = draw(sequence | value)
    return m


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(manifests(), min_size=40, max_size=40))
def test_signed_malformed_manifests_get_named_errors(
    run_mpy: Callable[..., dict[str, Any]], tmp_path: Path, batch: list[dict[int, Any]]
) -> None:
    path = tmp_path / "envelopes.txt"
    path.write_text("".join(sign(m).hex() + "\n" for m in batch))
    got = run_mpy(PROCESS_ALL, PUB.hex(), VENDOR_ID.bytes.hex(), CLASS_ID.bytes.hex(), str(path),
                  heapsize="256K")["r"]
    assert len(got) == len(batch)
    # Every envelope is properly signed: the interpreter, not the signature check, decides.
    assert "SignatureError" not in got
    assert "UnsignedError" not in got


def test_well_formed_signed_manifest_accepted(
    run_mpy: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    m = {1: 1, 2: 3, 3: cbor2.dumps({2: [[b"app"]], 4: cbor2.dumps(GOOD_SHARED)}),
         7: cbor2.dumps([3, 15])}
    path = tmp_path / "envelopes.txt"
    path.write_text(sign(m).hex() + "\n")
    got = run_mpy(PROCESS_ALL, PUB.hex(), VENDOR_ID.bytes.hex(), CLASS_ID.bytes.hex(), str(path))
    assert got["r"] == ["ok"]



def _with_shared(shared: list[Any], **extra: Any) -> dict[int, Any]:
    m = {1: 1, 2: 3, 3: cbor2.dumps({2: [[b"app"]], 4: cbor2.dumps(shared)})}
    m.update({int(k[1:]): v for k, v in extra.items()})
    return m


def test_crafted_malformed_manifests(
    run_mpy: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    params = GOOD_SHARED[1]
    cases = {
        "unknown-command": (_with_shared([*GOOD_SHARED, 99, 15]), "SuitUnsupported"),
        "abort": (_with_shared([*GOOD_SHARED, 14, 15]), "ConditionFailed"),
        "odd-sequence": (_with_shared([20, params, 1]), "SuitError"),
        "vendor-not-bytes": (_with_shared([20, {1: 5}, 1, 15]), "SuitError"),
        "index-out-of-range": (_with_shared([12, 3]), "SuitError"),
        "size-not-int": (_with_shared([20, {**params, 14: "big"}, 1, 15, 2, 15]), "SuitError"),
        "too-big": (_with_shared([20, {**params, 14: 1 << 20}, 1, 15, 2, 15]), "SizeError"),
        "bad-version": ({**_with_shared(GOOD_SHARED), 1: 2}, "SuitUnsupported"),
        "try-each-none-match": (
            _with_shared([15, [cbor2.dumps([14, 15]), cbor2.dumps([14, 15])]]),
            "ConditionFailed",
        ),
        "try-each-second-matches": (
            _with_shared([15, [cbor2.dumps([14, 15]), cbor2.dumps(GOOD_SHARED)]]),
            "ok",
        ),
        "nested-bstr-garbage": (_with_shared([*GOOD_SHARED, 32, b"\xff\xff"]), "CborError"),
        "no-identity-check": (_with_shared([20, params]), "ConditionFailed"),
        "vendor-only": (_with_shared([20, params, 1, 15]), "ConditionFailed"),
    }
    path = tmp_path / "envelopes.txt"
    path.write_text("".join(sign(m).hex() + "\n" for m, _ in cases.values()))
    got = run_mpy(PROCESS_ALL, PUB.hex(), VENDOR_ID.bytes.hex(), CLASS_ID.bytes.hex(), str(path))
    assert dict(zip(cases, got["r"], strict=True)) == {k: v[1] for k, v in cases.items()}

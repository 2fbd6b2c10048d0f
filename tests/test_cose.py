"""suture.cose: COSE_Sign1 sign/verify, Wycheproof vectors, pycose interop both ways."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from pycose.algorithms import EdDSA as PyCoseEdDSA
from pycose.algorithms import Es256 as PyCoseEs256
from pycose.headers import KID, Algorithm
from pycose.keys import CoseKey
from pycose.messages import Sign1Message
from suture import cose, keys
from suture.cose import algorithms


@pytest.fixture(params=["ES256", "EdDSA"])
def key(request: pytest.FixtureRequest) -> keys.PrivateKey:
    return keys.generate_private_key(request.param)


def test_attached_round_trip(key: keys.PrivateKey) -> None:
    message = cose.sign1(b"payload", key)
    assert cbor2.loads(message).tag == 18
    assert cose.verify1(message, key.public_key()) == b"payload"
    decoded = cose.decode_sign1(message)
    assert decoded.alg == keys.cose_algorithm(key)
    assert decoded.kid is None
    assert len(decoded.signature) == 64


def test_detached_round_trip_with_kid_and_aad(key: keys.PrivateKey) -> None:
    kid = keys.key_id(key.public_key())
    message = cose.sign1(
        None, key, detached_payload=b"detached", kid=kid, external_aad=b"aad", tagged=False
    )
    body = cbor2.loads(message)
    assert isinstance(body, list)
    assert body[2] is None
    assert body[1] == {4: kid}
    assert (
        cose.verify1(message, key.public_key(), detached_payload=b"detached", external_aad=b"aad")
        == b"detached"
    )
    with pytest.raises(cose.CoseError, match="does not verify"):
        cose.verify1(message, key.public_key(), detached_payload=b"detached")
    with pytest.raises(cose.CoseError, match="does not verify"):
        cose.verify1(message, key.public_key(), detached_payload=b"other", external_aad=b"aad")
    with pytest.raises(cose.CoseError, match=r"detached .* none was supplied"):
        cose.verify1(message, key.public_key())


def test_attached_message_refuses_a_detached_payload(key: keys.PrivateKey) -> None:
    message = cose.sign1(b"x", key)
    with pytest.raises(cose.CoseError, match="carries its payload"):
        cose.verify1(message, key.public_key(), detached_payload=b"x")


def test_es256_signature_is_raw_r_s() -> None:
    key = keys.generate_private_key("ES256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    message = cose.sign1(b"abc", key)
    decoded = cose.decode_sign1(message)
    r = int.from_bytes(decoded.signature[:32], "big")
    s = int.from_bytes(decoded.signature[32:], "big")
    tbs = cose.sig_structure(decoded.protected_bytes, b"", b"abc")
    # cryptography checks the DER form of the same (r, s): raises if it is not a signature.
    key.public_key().verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(("alg_name", "alg"), [("ES256", -9), ("EdDSA", -19)])
def test_fully_specified_algorithms(alg_name: str, alg: int) -> None:
    key = keys.generate_private_key(alg_name)
    message = cose.sign1(b"p", key, alg=alg)
    assert cose.decode_sign1(message).alg == alg
    assert cose.verify1(message, key.public_key()) == b"p"


def test_algorithm_and_key_type_must_agree() -> None:
    p256 = keys.generate_private_key("ES256")
    ed = keys.generate_private_key("EdDSA")
    with pytest.raises(cose.CoseError, match="cannot be used with this key type"):
        cose.sign1(b"p", p256, alg=-8)
    with pytest.raises(cose.CoseError, match="unsupported COSE algorithm -35"):
        cose.sign1(b"p", p256, alg=-35)
    message = cose.sign1(b"p", p256)
    with pytest.raises(cose.CoseError, match="none of the 1 given keys is of that type"):
        cose.verify1(message, ed.public_key())


def test_verify_picks_the_right_key_among_several(key: keys.PrivateKey) -> None:
    others = [keys.generate_private_key(a).public_key() for a in ("ES256", "EdDSA", "ES256")]
    message = cose.sign1(b"p", key)
    payload, signer = cose.verify1_with_key(message, [*others, key.public_key()])
    assert payload == b"p"
    assert keys.key_id(signer) == keys.key_id(key.public_key())
    with pytest.raises(cose.CoseError, match="does not verify"):
        cose.verify1(message, others)


def test_every_signature_byte_matters(key: keys.PrivateKey) -> None:
    message = cose.sign1(b"payload", key)
    signature = cose.decode_sign1(message).signature
    start = message.rindex(signature)
    for i in range(start, start + len(signature)):
        tampered = bytearray(message)
        tampered[i] ^= 0x01
        with pytest.raises(cose.CoseError):
            cose.verify1(bytes(tampered), key.public_key())


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (cbor2.dumps([b"", {}, b"x"]), "expected an array of 4, got array of 3"),
        (cbor2.dumps({"a": 1}), "expected an array of 4, got map"),
        (cbor2.dumps([b"", {}, b"x", b"s" * 64]), r"no algorithm \(label 1\)"),
        (cbor2.dumps([cbor2.dumps({1: "ES256"}), {}, b"x", b"s" * 64]), "expected int, got text"),
        (cbor2.dumps([cbor2.dumps({1: -7}), {1: -7}, b"x", b"s" * 64]), "in both buckets"),
        (cbor2.dumps([cbor2.dumps({1: -7, 2: [99]}), {}, b"x", b"s" * 64]), "not understood"),
        (cbor2.dumps([cbor2.dumps({1: -7}), {}, b"x", b"s" * 10]), "10 bytes, ES256"),
        (cbor2.dumps([cbor2.dumps({1: -257}), {}, b"x", b"s" * 64]), "unsupported algorithm"),
        (cbor2.dumps([cbor2.dumps({1: -7}), {}, 5, b"s" * 64]), "payload: expected bstr or nil"),
        (cbor2.dumps([cbor2.dumps([1]), {}, b"x", b"s" * 64]), "protected header: expected map"),
        (cbor2.dumps(cbor2.CBORTag(98, [b"", {}, b"x", b"s"])), "CBOR tag 98 is not accepted"),
        (b"\x84\x40\xa0", "array of 4 entries, but only 2 bytes remain"),
        (b"", "truncated"),
    ],
)
def test_malformed_messages_are_refused_clearly(message: bytes, match: str) -> None:
    pub = keys.generate_private_key("ES256").public_key()
    with pytest.raises(cose.CoseError, match=match):
        cose.verify1(message, pub)


_FUZZ_KEY = keys.generate_private_key("ES256").public_key()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_cose_error(data: bytes) -> None:
    with contextlib.suppress(cose.CoseError):
        cose.verify1(data, _FUZZ_KEY, detached_payload=b"x")


# --- Wycheproof: the verification primitive against public vectors -----------------------


def _wycheproof(shared_vectors: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_vectors / "wycheproof" / name).read_text())
    return data


def test_wycheproof_ecdsa_p256_p1363(shared_vectors: Path, figures: Any) -> None:
    suite = _wycheproof(shared_vectors, "ecdsa_secp256r1_sha256_p1363_test.json")
    checked = 0
    for group in suite["testGroups"]:
        pub = serialization.load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        for case in group["tests"]:
            ok = algorithms.verify(pub, bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"]))
            if case["result"] == "valid":
                assert ok, case["tcId"]
            elif case["result"] == "invalid":
                assert not ok, case["tcId"]
            checked += 1
    assert checked == suite["numberOfTests"]
    figures("wycheproof ecdsa p1363 cases", checked)


def test_wycheproof_ed25519(shared_vectors: Path, figures: Any) -> None:
    suite = _wycheproof(shared_vectors, "ed25519_test.json")
    checked = 0
    for group in suite["testGroups"]:
        pub = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(group["publicKey"]["pk"]))
        for case in group["tests"]:
            ok = algorithms.verify(pub, bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"]))
            if case["result"] == "valid":
                assert ok, case["tcId"]
            elif case["result"] == "invalid":
                assert not ok, case["tcId"]
            checked += 1
    assert checked == suite["numberOfTests"]
    figures("wycheproof ed25519 cases", checked)


# --- Interop with pycose, an independent COSE implementation -------------------------------


def _pycose_private(key: keys.PrivateKey) -> Any:
    return CoseKey.from_pem_private_key(keys.private_key_pem(key).decode())


def _pycose_public(key: keys.PublicKey) -> Any:
    return CoseKey.from_pem_public_key(keys.public_key_pem(key).decode())


def _pycose_decode(message: bytes) -> Any:
    # pycose 1.1.0's CoseMessage.decode expects cbor2 < 6, which decoded a tag's contents as
    # list and dict (cbor2 6 gives tuple and frozendict); hand it those types and let pycose
    # parse the headers and check the signature itself.
    item = cbor2.loads(message)
    assert item.tag == 18
    protected, unprotected, payload, signature = item.value
    body = [protected, dict(unprotected), payload, signature]
    return Sign1Message.from_cose_obj(body, allow_unknown_attributes=True)


def test_pycose_verifies_suture_signatures(key: keys.PrivateKey) -> None:
    kid = keys.key_id(key.public_key())
    attached = cose.sign1(b"hello", key, kid=kid)
    decoded = _pycose_decode(attached)
    decoded.key = _pycose_public(key.public_key())
    assert decoded.verify_signature()
    assert decoded.payload == b"hello"
    assert decoded.get_attr(KID) == kid

    detached = cose.sign1(None, key, detached_payload=b"detached")
    decoded = _pycose_decode(detached)
    decoded.key = _pycose_public(key.public_key())
    assert decoded.verify_signature(detached_payload=b"detached")
    assert not decoded.verify_signature(detached_payload=b"other")


def test_suture_verifies_pycose_signatures(key: keys.PrivateKey) -> None:
    alg = PyCoseEs256 if keys.cose_algorithm(key) == -7 else PyCoseEdDSA
    message = Sign1Message(phdr={Algorithm: alg}, payload=b"from pycose")
    message.key = _pycose_private(key)
    encoded = message.encode()
    assert cose.verify1(encoded, key.public_key()) == b"from pycose"

    detached = Sign1Message(phdr={Algorithm: alg}, payload=None)
    detached.key = _pycose_private(key)
    encoded = detached.encode(detached_payload=b"outside")
    assert cose.verify1(encoded, key.public_key(), detached_payload=b"outside") == b"outside"
    with pytest.raises(cose.CoseError):
        cose.verify1(encoded, key.public_key(), detached_payload=b"tampered")


def test_private_keys_verify_as_their_public_half(key: keys.PrivateKey) -> None:
    message = cose.sign1(b"p", key)
    assert cose.verify1(message, key) == b"p"  # type: ignore[arg-type]
    with pytest.raises(cose.CoseError, match="str is not a P-256 or Ed25519 public key"):
        cose.verify1(message, "key")  # type: ignore[arg-type]

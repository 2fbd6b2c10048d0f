"""Bad updates are rejected with a named error and change nothing on the device."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suture import keys
from suture.cose import sign1
from suture.keys import PrivateKey
from suture.sim.testing import Provisioned, example_app, sign_payload
from suture.suit.digest import digest_wrapped, encode_digest
from suture.suit.encoder import encode_auth_wrapper, encode_envelope

V2 = example_app(2, filler=500)


def _images(p: Provisioned) -> tuple[bytes, bytes]:
    return p.board.internal_image.read_bytes(), p.board.external_image.read_bytes()


def _stage(p: Provisioned, envelope: bytes, payload: bytes) -> tuple[str, str]:
    env_name = p.board.put_file("e.suit", envelope)
    r = p.device.run(["stage", env_name, p.board.put_file("p", payload)])
    assert r.exit_code == 2, r.stdout + r.stderr
    assert r.error is not None
    return r.error


def _assert_unchanged_and_boots_v1(p: Provisioned) -> None:
    r = p.device.run(["boot"], ["app"], ["report"])
    assert r.ok
    rep = r.report()
    assert rep["installed_version"] == 1
    assert rep["app_digest"] == rep["installed_digest"]
    assert "APP 1" in r.stdout


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.fixture
def device(make_device: Callable[..., Provisioned]) -> Provisioned:
    return make_device()


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("wrong-signature", "SignatureError"),
        ("wrong-key", "SignatureError"),
        ("wrong-vendor", "ConditionFailed"),
        ("wrong-class", "ConditionFailed"),
        ("same-sequence", "RollbackError"),
        ("older-sequence", "RollbackError"),
        ("unsigned", "UnsignedError"),
        ("manifest-tampered", "SignatureError"),
        ("not-cbor", "CborError"),
    ],
)
def test_envelope_rejected_before_any_write(device: Provisioned, case: str, error: str) -> None:
    p = device
    env = sign_payload(V2, 2, p.key)
    if case == "wrong-signature":
        outer = dict(cbor2.loads(env).value)
        auth = list(cbor2.loads(outer[2]))
        sign1 = cbor2.loads(auth[1])
        fields = list(sign1.value)
        fields[3] = _flip(fields[3], 10)  # one bit of r
        auth[1] = cbor2.dumps(cbor2.CBORTag(sign1.tag, fields))
        outer[2] = cbor2.dumps(auth)
        env = cbor2.dumps(cbor2.CBORTag(107, outer))
    elif case == "wrong-key":
        env = sign_payload(V2, 2, keys.generate_private_key("ES256"))
    elif case == "wrong-vendor":
        env = sign_payload(V2, 2, p.key, vendor_id=uuid.uuid4())
    elif case == "wrong-class":
        env = sign_payload(V2, 2, p.key, class_id=uuid.uuid4())
    elif case == "same-sequence":
        env = sign_payload(V2, 1, p.key)
    elif case == "older-sequence":
        env = sign_payload(V2, 0, p.key)
    elif case == "unsigned":
        outer = dict(cbor2.loads(env).value)
        outer[2] = cbor2.dumps(list(cbor2.loads(outer[2]))[:1])
        env = cbor2.dumps(cbor2.CBORTag(107, outer))
    elif case == "manifest-tampered":
        outer = dict(cbor2.loads(env).value)
        manifest = dict(cbor2.loads(outer[3]))
        manifest[2] = 99
        outer[3] = cbor2.dumps(manifest)
        env = cbor2.dumps(cbor2.CBORTag(107, outer))
    elif case == "not-cbor":
        env = env[:40]
    before = _images(p)
    name, _ = _stage(p, env, V2)
    assert name == error
    assert _images(p) == before
    _assert_unchanged_and_boots_v1(p)


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("truncated", "SizeError"),
        ("longer", "SizeError"),
        ("corrupted", "DigestError"),
        ("other-payload", "DigestError"),
    ],
)
def test_payload_rejected_app_unchanged(device: Provisioned, case: str, error: str) -> None:
    p = device
    env = sign_payload(V2, 2, p.key)
    payload = {
        "truncated": V2[:-100],
        "longer": V2 + b"\x00",
        "corrupted": _flip(V2, 300),
        "other-payload": example_app(2, filler=499) + b"\x00",
    }[case]
    internal = p.board.internal_image.read_bytes()
    name, _ = _stage(p, env, payload)
    assert name == error
    assert p.board.internal_image.read_bytes() == internal
    rec = p.board.current_record()
    assert rec is not None
    assert rec.state.name == "FAILED"
    _assert_unchanged_and_boots_v1(p)


def test_oversize_image_rejected(device: Provisioned) -> None:
    p = device
    slot = p.board.board.regions["staging"].size
    big = example_app(2, filler=slot)
    before = _images(p)
    name, message = _stage(p, sign_payload(big, 2, p.key), big)
    assert name == "SizeError"
    assert "slot" in message
    assert _images(p) == before


def test_corrupted_staging_slot_is_caught_before_install(device: Provisioned) -> None:
    """The loader verifies the staged payload again before installing it."""
    p = device
    r = p.device.run(
        ["stage", p.board.put_file("e", sign_payload(V2, 2, p.key)), p.board.put_file("p", V2)]
    )
    assert r.ok
    staging = p.board.board.regions["staging"]
    image = bytearray(p.board.external_image.read_bytes())
    image[staging.offset + 200] &= 0x0F  # a bit flip a NOR cell could suffer: 1 -> 0
    p.board.external_image.write_bytes(bytes(image))
    _assert_unchanged_and_boots_v1(p)
    rec = p.board.current_record()
    assert rec is not None
    assert rec.state.name == "FAILED"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_envelopes_rejected(device: Provisioned, data: st.DataObject) -> None:
    """Random byte edits of a valid envelope: a named error, nothing written."""
    p = device
    env = bytearray(sign_payload(V2, 2, p.key))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(env) - 1))
        env[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        env = env[: data.draw(st.integers(0, len(env)))]
    before = _images(p)
    r = p.device.run(["stage", p.board.put_file("m.suit", bytes(env)), p.board.put_file("p", V2)])
    if r.ok:  # an edit that left the envelope valid (e.g. an unprotected header byte)
        return
    assert r.exit_code == 2, r.stdout + r.stderr
    assert r.error is not None
    name = r.error[0]
    assert name.endswith("Error") or name in ("ConditionFailed", "SuitUnsupported")
    assert _images(p) == before


def _with_sequence(envelope: bytes, seq: int, key: PrivateKey) -> bytes:
    """The envelope with its manifest's sequence number set to seq and signed again by key
    (below the host's builder, which refuses a number that does not fit in u32)."""
    outer = dict(cbor2.loads(envelope).value)
    manifest = dict(cbor2.loads(outer[3]))
    manifest[2] = seq
    manifest_bstr = cbor2.dumps(manifest)
    digest = encode_digest(digest_wrapped(manifest_bstr))
    auth = encode_auth_wrapper(digest, [sign1(None, key, detached_payload=digest)])
    return encode_envelope(auth_wrapper=auth, manifest=manifest_bstr)


U32_MAX = 2**32 - 1


@pytest.mark.parametrize("seq", [2**32, 2**32 + 3, 2**64 - 1])
def test_sequence_number_beyond_u32_refused(device: Provisioned, seq: int) -> None:
    """The journal keeps a release's sequence number as u32: a larger one would be truncated
    (2^32 + 3 recorded as 3) and break anti-rollback, so it is refused before any write."""
    p = device
    env = _with_sequence(sign_payload(V2, 2, p.key), seq, p.key)
    before = _images(p)
    name, message = _stage(p, env, V2)
    assert name == "SequenceNumberError"
    assert str(seq) in message
    assert _images(p) == before
    _assert_unchanged_and_boots_v1(p)


def test_sequence_number_u32_max_installs_and_stays_the_floor(device: Provisioned) -> None:
    p = device
    env = _with_sequence(sign_payload(V2, 2, p.key), U32_MAX, p.key)
    r = p.device.run(["stage", p.board.put_file("e.suit", env), p.board.put_file("p", V2)])
    assert r.ok, r.stdout + r.stderr
    assert r.result["staged_version"] == U32_MAX
    r = p.device.run(["boot"], ["app"], ["confirm"], ["report"])
    assert r.ok, r.stdout + r.stderr
    rep = r.report()
    assert (rep["state"], rep["installed_version"]) == ("CONFIRMED", U32_MAX)
    v5 = example_app(5)
    name, _ = _stage(p, sign_payload(v5, 5, p.key), v5)
    assert name == "RollbackError"

"""Fuzzing the extension structures: SUIT_Encryption_Info (tag 96), COSE_Mac0 blocks, dependency
manifests and SUIT reports. Only the documented errors escape: SuitError from the SUIT layer
(decode, verify, decrypt, reports), CoseError from the COSE layer; in bounded time."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from ext_samples import published_keys
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from suit_samples import envelope_bytes, example_manifest
from suture import keys
from suture.cose import CoseError
from suture.cose.encrypt import decode_encrypt, decrypt_detached
from suture.cose.mac0 import SymmetricKey, mac0, verify_mac0
from suture.formats.trust_store import sec1_point
from suture.scheduler import credentials
from suture.scheduler.errors import AuthenticationError, InvalidInputError
from suture.scheduler.models import Device
from suture.scheduler.services import suit_reports
from suture.suit import (
    SuitError,
    decode_envelope,
    decrypt_component,
    envelope_summary,
    verify_envelope,
)
from suture.suit.digest import digest_bytes
from suture.suit.inspect import render
from suture.suit.report import (
    SuitRecord,
    SuitReport,
    SystemProperties,
    decode_report,
    device_fields,
    encode_report,
    report_from_device,
    report_summary,
    sign_report,
    verify_report,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
EXT = VECTORS / "suit-ext"
KEYS = published_keys(EXT)
EXAMPLE_KEY = keys.load_public_key(VECTORS / "suit" / "draft-examples-pubkey.pem")
DISTRIBUTOR = keys.load_public_key(EXT / "enc-dependent-signer-pubkey.pem")
ANCHORS = [EXAMPLE_KEY, DISTRIBUTOR, KEYS["hmac"]]
DECRYPTION = [KEYS["kek"], KEYS["ecdh"]]
SEEDS = [p.read_bytes() for p in sorted(EXT.glob("*.cbor")) if not p.name.startswith("enc-enc")]
DEPENDENT = (EXT / "td-example0-dependent.cbor").read_bytes()
INFO_SEEDS = [p.read_bytes() for p in sorted(EXT.glob("enc-encryption-info-*.cbor"))]
MAX_SECONDS_PER_INPUT = 3.0
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exercise(data: bytes) -> None:
    """Decode, summarise, render, verify (with the dependency supplied) and decrypt."""
    started = time.perf_counter()
    try:
        env = decode_envelope(data)
    except SuitError:
        env = None
    if env is not None:
        json.dumps(envelope_summary(env))
        render(env, Console(file=io.StringIO(), width=100))
    verified = None
    with contextlib.suppress(SuitError):
        verified = verify_envelope(
            data, ANCHORS, dependencies={"http://example.com/dependent.suit": DEPENDENT}
        )
    if verified is not None:
        json.dumps(envelope_summary(verified))
        for index, info in enumerate(verified.manifest.component_info):
            if info.encryption_info is not None:
                with contextlib.suppress(SuitError):
                    decrypt_component(verified, index, DECRYPTION, ciphertext=b"\x00" * 46)
    assert time.perf_counter() - started < MAX_SECONDS_PER_INPUT


def _mutate(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=6))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 6))]
        elif op == "splice":
            data[pos:pos] = draw(st.sampled_from(
                [b"\xd8\x60\x84", b"\xd1\x84", b"\xd8\x6b\xa1", b"\x5b\xff\xff\xff\xff",
                 b"\x9f", b"\xa1\x01\xa1\x01\xa0", b"\x0b\x00", b"\x07\x0f"]))
    return bytes(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    return _mutate(draw, draw(st.sampled_from(SEEDS)))


@FUZZ
@given(mutated())
def test_mutated_extension_envelopes(data: bytes) -> None:
    exercise(data)


leaves = st.one_of(
    st.integers(-(2**64), 2**64 - 1), st.binary(max_size=40), st.text(max_size=12),
    st.booleans(), st.none(),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.integers(-40, 30), children, max_size=5),
        children.map(cbor2.dumps),
        children.map(lambda v: cbor2.CBORTag(96, v)),
    )


cbor_values = st.recursive(leaves, _containers, max_leaves=30)
#: CBOR values without tags (a report's values: a tag anywhere refuses the whole report)
plain_values = st.recursive(leaves, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.integers(-300, 30), children, max_size=4),
    children.map(cbor2.dumps)), max_leaves=20)


@st.composite
def encryption_infos(draw: st.DrawFn) -> bytes:
    """A COSE_Encrypt with random pieces: headers, IV, recipients, keys."""
    protected = draw(st.sampled_from([b"", cbor2.dumps({1: 1}), cbor2.dumps({1: -65534})])
                     | cbor_values.map(cbor2.dumps))
    unprotected = draw(st.dictionaries(st.sampled_from([1, 2, 4, 5, 6, -1]), cbor_values,
                                       max_size=3)
                       | st.just({5: bytes(12)}) | st.just({1: -65534, 5: bytes(16)}))
    recipient = draw(st.lists(cbor_values, min_size=0, max_size=4)
                     | st.just([b"", {1: -3, 4: b"kid-1"}, bytes(24)])
                     | st.just([cbor2.dumps({1: -29}), {-1: {1: 2, -1: 1, -2: bytes(32),
                                                              -3: bytes(32)}}, bytes(24)]))
    body = [protected, unprotected, draw(st.none() | st.binary(max_size=4)), [recipient]]
    return cbor2.dumps(cbor2.CBORTag(96, body))


@FUZZ
@given(encryption_infos() | st.sampled_from(INFO_SEEDS))
def test_encryption_info_structures(info: bytes) -> None:
    try:
        decoded = decode_encrypt(info)
    except CoseError:
        return
    with contextlib.suppress(CoseError):
        decrypt_detached(decoded, b"\x00" * 46, DECRYPTION)


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """An example manifest with random dependencies, encryption info or Mac0 blocks."""
    manifest: dict[Any, Any] = example_manifest()
    target = draw(st.sampled_from(["dependencies", "encryption", "mac0", "integrated"]))
    blocks: list[bytes] = []
    extra: dict[Any, Any] = {}
    if target == "dependencies":
        common = {1: draw(cbor_values | st.dictionaries(st.integers(0, 3),
                                                        st.dictionaries(st.integers(0, 2),
                                                                        cbor_values, max_size=2),
                                                        max_size=3)),
                  2: [[b"\x00"]]}
        manifest[3] = cbor2.dumps(common)
        manifest[draw(st.sampled_from([15, 18, 24, 20]))] = cbor2.dumps(
            [12, draw(st.integers(0, 3)), 20, {3: cbor2.dumps([-16, bytes(32)]), 21: "#d"},
             draw(st.sampled_from([7, 8, 11, 33])), draw(cbor_values)])
        extra["#d"] = draw(st.sampled_from(SEEDS) | st.binary(max_size=30))
    elif target == "encryption":
        manifest[20] = cbor2.dumps([20, {19: draw(encryption_infos()), 18: bytes(46)}, 18, 15])
    elif target == "mac0":
        tag = draw(st.binary(max_size=40))
        good_shape = cbor2.dumps(cbor2.CBORTag(17, [cbor2.dumps({1: 5}), {}, None, tag]))
        blocks = [draw(st.just(good_shape)
                       | cbor_values.map(lambda v: cbor2.dumps(cbor2.CBORTag(17, v))))]
    else:
        extra[draw(st.text(max_size=6))] = draw(st.sampled_from(SEEDS))
    data = envelope_bytes(manifest, blocks=blocks or [b"\xd2\x84\x43\xa1\x01\x26\xa0\xf6\x40"])
    if extra:
        value = dict(cbor2.loads(data).value)
        value.update(extra)
        data = cbor2.dumps(cbor2.CBORTag(107, value))
    return data


@FUZZ
@given(structured())
def test_random_extension_structures(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(st.binary(max_size=80) | cbor_values.map(cbor2.dumps)
       | cbor_values.map(lambda v: cbor2.dumps(cbor2.CBORTag(17, v))))
def test_mac0_messages(data: bytes) -> None:
    with contextlib.suppress(CoseError):
        verify_mac0(data, [KEYS["hmac"]], detached_payload=b"x")
    with contextlib.suppress(CoseError):
        verify_mac0(data, [KEYS["hmac"]])


REPORT = SuitReport(
    manifest_digest=digest_bytes(b"manifest"),
    manifest_uri="https://sched.example/releases/7/envelope",
    records=[SuitRecord((), 20, 14, 0, {3: cbor2.dumps([-16, bytes(32)])}),
             SystemProperties([b"app"], {-263: 7})],
    extensions={-1: "staged", -2: 12},
)
# as a device sends it (loader/loader/suit_report.py): the failing command's record, the
# conditions that held, the installed digest; signed with the device key
DEVICE_KEY = ec.derive_private_key(int.from_bytes(bytes(range(1, 33)), "big"), ec.SECP256R1())
DEVICE_REPORT = report_from_device(
    {"state": "failed", "installed": {"app": 6, "loader": 2}, "schedule_number": 9,
     "release_id": 4, "error": {"code": 31, "message": "staging: digest"}},
    manifest_digest=digest_bytes(b"manifest"), nonce=bytes(8),
    records=[SuitRecord((), 3, 5, 0, {-264: 1}), SuitRecord((), 3, 7, 0, {-264: 2})],
    failed_at=SuitRecord((), 7, 1, 0, {-264: 3}), installed_digest=bytes(32))
# a keyless device's report MAC key, derived as the scheduler derives it from its root secret
ROOT_SECRET = bytes(range(32))
KEYED = Device(id="pump-1", public_key=sec1_point(DEVICE_KEY), credential_generation=1)
UNKEYED = Device(id="pump-2", public_key=None, credential_generation=1)
UNKEYED_MAC_KEY = SymmetricKey(credentials.suit_report_key(
    credentials.derive_secret(ROOT_SECRET, "pump-2", 1), "pump-2"))
SIGNED = [
    sign_report(REPORT, SymmetricKey(bytes(32))),
    mac0(encode_report(DEVICE_REPORT), UNKEYED_MAC_KEY),
    encode_report(REPORT),
    mac0(encode_report(REPORT), SymmetricKey(bytes(32))),
    encode_report(DEVICE_REPORT),
    sign_report(DEVICE_REPORT, DEVICE_KEY),
]


@st.composite
def reports(draw: st.DrawFn) -> bytes:
    choice = draw(st.sampled_from(["mutate", "random", "map", "structured", "structured"]))
    if choice == "mutate":
        return _mutate(draw, draw(st.sampled_from(SIGNED)))
    if choice == "random":
        return draw(cbor_values.map(cbor2.dumps))
    if choice == "structured":  # the report's shape, with any values where a device puts its
        small = st.integers(0, 30)
        record = st.tuples(st.lists(small, max_size=2) | plain_values, small | plain_values,
                           small, small, st.dictionaries(st.integers(-300, 30), plain_values,
                                                         min_size=1, max_size=3)
                           | plain_values).map(list)
        claims = st.dictionaries(st.integers(-300, 30), plain_values, max_size=3).map(
            lambda d: {0: [b"app"], **d})
        body = {99: draw(st.sampled_from([[[-16, bytes(32)]], ["u", [-16, bytes(32)]]])),
                3: draw(st.lists(record | claims, max_size=4)),
                4: draw(st.just(True) | st.fixed_dictionaries(
                    {5: st.integers(0, 200), 6: record, 7: st.integers(0, 13)})
                    | st.dictionaries(st.sampled_from([5, 6, 7]), plain_values | record,
                                      max_size=3)),
                -1: draw(st.sampled_from(["failed", "confirmed"]) | plain_values),
                **draw(st.dictionaries(st.integers(-8, -2), plain_values, max_size=4))}
        return cbor2.dumps(body)
    body = draw(st.dictionaries(st.sampled_from([2, 3, 4, 99, -1, -2, 8]), cbor_values,
                                max_size=5))
    return cbor2.dumps(body)


@FUZZ
@given(reports())
def test_reports(data: bytes) -> None:
    with contextlib.suppress(SuitError):
        report = decode_report(data)
        json.dumps(report_summary(report))  # what the scheduler shows is JSON
        device_fields(report)
    with contextlib.suppress(SuitError):
        verify_report(data, [SymmetricKey(bytes(32)), EXAMPLE_KEY, DEVICE_KEY.public_key()])


@FUZZ
@given(reports())
def test_the_scheduler_refuses_fuzzed_reports_with_its_documented_errors(data: bytes) -> None:
    """What the scheduler does with a device's SUIT report before storing it: 401 or 422,
    never another exception (docs/formats/suit-report.md)."""
    for device in (KEYED, UNKEYED):
        with contextlib.suppress(AuthenticationError, InvalidInputError):
            suit_reports.verified_summary(device, data, ROOT_SECRET)


def test_the_fuzzed_scheduler_path_accepts_the_unmutated_mac0() -> None:
    """The seed the report fuzzer mutates is accepted whole, so the fuzzing reaches past the
    MAC check: a keyless device's COSE_Mac0 under its derived report key."""
    verified = suit_reports.verified_summary(UNKEYED, SIGNED[1], ROOT_SECRET)
    assert verified.kind == "COSE_Mac0"
    with pytest.raises(AuthenticationError, match="COSE_Sign1"):
        suit_reports.verified_summary(KEYED, SIGNED[1], ROOT_SECRET)

"""SUIT reports (draft-ietf-suit-report): what a device did, in a signed or MACed SUIT_Report,
and suture's report fields mapped onto it and back."""

from __future__ import annotations

import cbor2
import pytest
from suture import keys
from suture.cose.mac0 import SymmetricKey
from suture.suit import SuitReportError
from suture.suit import codepoints as cp
from suture.suit.digest import digest_bytes
from suture.suit.report import (
    EXT_ERROR_MESSAGE,
    EXT_STATE,
    REASON_CONDITION_FAILED,
    REASON_OPERATION_FAILED,
    REASON_UNAUTHORISED,
    SuitRecord,
    SuitReport,
    SystemProperties,
    decode_report,
    device_fields,
    encode_report,
    reason_for_code,
    report_from_device,
    report_summary,
    sign_report,
    verify_report,
)

DIGEST = digest_bytes(b"the manifest")
URI = "https://sched.ward.example/api/v1/releases/7/envelope"
DEVICE_KEY = SymmetricKey(bytes(range(32)), b"pump-0042")


def test_a_failed_install_round_trips_with_its_record() -> None:
    image_match = SuitRecord(
        manifest_id=(), section=cp.MANIFEST_INSTALL, offset=31, component_index=0,
        properties={cp.PARAMETER_IMAGE_DIGEST: cbor2.dumps([-16, bytes(32)])},
    )
    vendor_ok = SuitRecord((0,), cp.MANIFEST_COMMON, 9, 0, {})
    fields = {
        "state": "failed", "installed": {"app": 6, "loader": 3}, "schedule_number": 12,
        "rollout_id": 3, "release_id": 7,
        "error": {"code": 31, "message": "payload digest differs"},
    }
    report = report_from_device(fields, manifest_digest=DIGEST, manifest_uri=URI,
                                nonce=b"\x01" * 8, records=[vendor_ok], failed_at=image_match)
    assert report.result is not None
    assert report.result.reason == REASON_CONDITION_FAILED
    decoded = decode_report(encode_report(report))
    assert decoded == report
    assert device_fields(decoded) == fields
    summary = report_summary(decoded)
    assert summary["result"]["reason"] == "condition-failed"
    assert summary["result"]["record"]["section"] == "install"
    assert summary["records"][0]["manifest_id"] == [0]
    raw = cbor2.loads(encode_report(report))
    assert raw[99] == [URI, [-16, DIGEST.value]]
    assert raw[4][5] == 31
    assert {0: [b"app"], -263: 6} in raw[3]


def test_a_successful_install_reports_true() -> None:
    report = report_from_device({"state": "confirmed", "installed": {"app": 7}},
                                manifest_digest=DIGEST)
    raw = cbor2.loads(encode_report(report))
    assert raw[4] is True
    assert raw[99] == [[-16, DIGEST.value]]
    assert device_fields(decode_report(encode_report(report))) == {
        "state": "confirmed", "installed": {"app": 7}}


@pytest.mark.parametrize("signer", ["ES256", "EdDSA", "mac"])
def test_signed_reports_verify_with_the_device_key_only(signer: str) -> None:
    report = report_from_device({"state": "staged", "progress": 4096}, manifest_digest=DIGEST)
    if signer == "mac":
        data = sign_report(report, DEVICE_KEY)
        good: keys.PublicKey | SymmetricKey = SymmetricKey(DEVICE_KEY.key)
        other: keys.PublicKey | SymmetricKey = SymmetricKey(bytes(32))
        kind = "COSE_Mac0"
    else:
        private = keys.generate_private_key(signer)
        data = sign_report(report, private)
        good, other = private.public_key(), keys.generate_private_key(signer).public_key()
        kind = "COSE_Sign1"
    verified = verify_report(data, [good])
    assert (verified.kind, verified.report) == (kind, report)
    with pytest.raises(SuitReportError, match="does not verify"):
        verify_report(data, [other])
    altered = bytearray(data)
    altered[-40] ^= 1
    with pytest.raises(SuitReportError):
        verify_report(bytes(altered), [good])
    with pytest.raises(SuitReportError, match="expected a tagged COSE_Sign1"):
        verify_report(encode_report(report), [good])


def test_reasons_follow_the_error_code_table() -> None:
    assert reason_for_code(23) == REASON_UNAUTHORISED
    assert reason_for_code(24) == REASON_CONDITION_FAILED
    assert reason_for_code(50) == REASON_OPERATION_FAILED
    assert reason_for_code(120) == REASON_OPERATION_FAILED


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({3: [], 4: True}, "key 99 missing"),
        ({99: [], 3: [], 4: True}, r"reference.*expected \[\? uri, digest\]"),
        ({99: [[-16, b"x"]], 3: [], 4: True}, "sha-256 digest is 32 bytes"),
        ({99: [[-16, bytes(32)]], 3: [[1, 2]], 4: True}, "record 0: expected SUIT_Record"),
        ({99: [[-16, bytes(32)]], 3: [{0: [b"app"]}], 4: True}, "claims with no property"),
        ({99: [[-16, bytes(32)]], 3: [], 4: False}, "expected true or a map"),
        ({99: [[-16, bytes(32)]], 3: [], 4: {5: 1}}, "result: key 6 missing"),
        ({99: [[-16, bytes(32)]], 3: [], 4: True, "x": 1}, "SUIT_Report key: expected int"),
    ],
)
def test_malformed_reports_name_what_is_wrong(body: dict[object, object], match: str) -> None:
    with pytest.raises(SuitReportError, match=match):
        decode_report(cbor2.dumps(body))


def test_unknown_states_are_refused_both_ways() -> None:
    with pytest.raises(SuitReportError, match="state 'exploded'"):
        report_from_device({"state": "exploded"}, manifest_digest=DIGEST)
    report = SuitReport(DIGEST, extensions={EXT_STATE: 5, EXT_ERROR_MESSAGE: "x"},
                        records=[SystemProperties([b"app"], {1: b"x"})])
    with pytest.raises(SuitReportError, match="suture-state"):
        device_fields(decode_report(encode_report(report)))

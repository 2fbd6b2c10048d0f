"""The device's SUIT report on the MicroPython unix port (docs/formats/suit-report.md): the SUIT
processor's trace names each condition it ran where the manifest has it (section, byte offset
of the command, component), and the one that failed; the report the device builds from it and
signs with its key (COSE_Sign1, ES256) verifies and decodes on the host, naming the failing
condition, or the installed digest when it succeeded."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from suture.suit import SuitReportError
from suture.suit.report import report_summary, verify_report

VENDOR = "fa6b4a53d5ad5fdfbe9de663e4d41ffe"
CLASS = "1492af1425695e48bf429b2d51f2ab45"
DEVICE_KEY = bytes(range(1, 33))

REPORT = """
import sys, json
from loader import api, suit
from loader.errors import LoaderError
pub = bytes.fromhex(sys.argv[2])
ids = (bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4]), b"")
key = bytes.fromhex(sys.argv[5])
error = None
try:
    suit.process(open(sys.argv[1], "rb").read(), [pub], ids)
except LoaderError as e:
    error = e
t = api.suit_trace()
fields = {"state": "confirmed", "installed": {"app": 7}, "schedule_number": 12}
failed_at = None
if error is not None:
    fields = {"state": "failed", "installed": {"app": 6},
              "error": {"code": error.code, "message": str(error)}}
    failed_at = t.failed
records = [r[:4] for r in t.records]
signed = api.suit_report(t.digest, fields, records, failed_at, t.uri, b"\\x00" * 7 + b"\\x0c",
                         b"\\x42" * 32, key)
print("RESULT " + json.dumps({"records": t.records, "failed": t.failed, "digest": t.digest.hex(),
                              "again": api.suit_trace() is None, "signed": signed.hex()}))
"""


def _pub(path: Path) -> str:
    key = load_pem_public_key(path.read_bytes())
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


def _offsets(sequence: bytes) -> list[tuple[int, Any]]:
    """(byte offset, command) of each command of a command sequence, read with cbor2."""
    head = 1 if sequence[0] & 0x1F < 24 else 2
    stream = io.BytesIO(sequence[head:])
    decoder = cbor2.CBORDecoder(stream)
    out = []
    while stream.tell() < len(sequence) - head:
        at = head + stream.tell()
        code = decoder.decode()
        decoder.decode()  # its argument
        out.append((at, code))
    return out


@pytest.fixture
def example0(shared_vectors: Path) -> tuple[Path, str, dict[int, Any]]:
    path = shared_vectors / "suit" / "draft-example0.cbor"
    envelope = cbor2.loads(path.read_bytes())
    envelope = envelope.value if isinstance(envelope, cbor2.CBORTag) else envelope
    manifest = cbor2.loads(envelope[3])
    return path, _pub(shared_vectors / "suit" / "draft-examples-pubkey.pem"), manifest


def _device_public_key() -> ec.EllipticCurvePublicKey:
    return ec.derive_private_key(int.from_bytes(DEVICE_KEY, "big"), ec.SECP256R1()).public_key()


def test_the_trace_and_the_signed_report_of_an_update_that_verified(
        run_mpy: Callable[..., Any], example0: tuple[Path, str, dict[int, Any]]) -> None:
    path, pub, manifest = example0
    got = run_mpy(REPORT, str(path), pub, VENDOR, CLASS, DEVICE_KEY.hex())
    shared = [(at, code) for at, code in _offsets(cbor2.loads(manifest[3])[4]) if code in (1, 2)]
    (image_match,) = [(at, c) for at, c in _offsets(manifest[7]) if c == 3]
    identity = [[3, at, 0, code, True] for at, code in shared]
    # the shared sequence runs before each section (validate, then invoke)
    assert got["records"] == [*identity, [7, image_match[0], 0, 3, None], *identity]
    assert got["failed"] is None
    assert got["again"] is True  # the trace is taken once
    verified = verify_report(bytes.fromhex(got["signed"]), [_device_public_key()])
    assert verified.kind == "COSE_Sign1"
    summary = report_summary(verified.report)
    assert summary["succeeded"] is True
    assert summary["manifest_digest"] == got["digest"]
    assert summary["nonce"] == "000000000000000c"
    assert summary["claims"] == [{"component": ["app"], "properties": {
        "suture-sequence-number": 7, "image-digest": "42" * 32}}]
    assert [r["properties"]["command"] for r in summary["records"]] == [
        "condition-vendor-identifier", "condition-class-identifier", "condition-image-match",
        "condition-vendor-identifier", "condition-class-identifier"]
    assert summary["records"][2]["section"] == "validate"
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(SuitReportError, match="does not verify"):
        verify_report(bytes.fromhex(got["signed"]), [other])


def test_a_failing_condition_is_the_reports_result(
        run_mpy: Callable[..., Any], example0: tuple[Path, str, dict[int, Any]]) -> None:
    path, pub, manifest = example0
    got = run_mpy(REPORT, str(path), pub, VENDOR, "00" * 16, DEVICE_KEY.hex())
    shared = {code: at for at, code in _offsets(cbor2.loads(manifest[3])[4])}
    assert got["records"] == [[3, shared[1], 0, 1, True]]  # the vendor held, the class failed
    assert got["failed"] == [3, shared[2], 0, 2]
    report = verify_report(bytes.fromhex(got["signed"]), [_device_public_key()]).report
    summary = report_summary(report)
    assert summary["succeeded"] is False
    assert summary["result"] == {
        "code": 24, "reason": "condition-failed",
        "record": {"manifest_id": [], "section": "common", "offset": shared[2],
                   "component_index": 0,
                   "properties": {"command": "condition-class-identifier"}}}
    assert summary["device"]["error"]["message"] == "class identifier does not match this device"


def test_a_refused_signature_has_no_records_but_the_manifest_digest(
        run_mpy: Callable[..., Any], example0: tuple[Path, str, dict[int, Any]]) -> None:
    path, _, _ = example0
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pub = other.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()
    got = run_mpy(REPORT, str(path), pub, VENDOR, CLASS, DEVICE_KEY.hex())
    assert (got["records"], got["failed"]) == ([], None)
    summary = report_summary(
        verify_report(bytes.fromhex(got["signed"]), [_device_public_key()]).report)
    assert summary["result"]["code"] == 23
    assert summary["result"]["reason"] == "unauthorised"
    assert summary["result"]["record"]["section"] == "common"
    assert json.dumps(summary)  # all of it is JSON, as the scheduler shows it


TRACE_UNUSED = """
import sys, json
from loader import api
print("RESULT " + json.dumps([api.suit_trace(), "loader.suit" in sys.modules]))
"""


def test_no_trace_without_processing_and_no_import_for_it(run_mpy: Callable[..., Any]) -> None:
    """A boot that processed no envelope has no trace, and asking does not load the SUIT
    processor (memory the agent's confirm or revert report does not need)."""
    assert run_mpy(TRACE_UNUSED) == [None, False]

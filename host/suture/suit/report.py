"""SUIT reports (draft-ietf-suit-report): encode, decode, sign and verify; and the mapping
between a SUIT_Report and the JSON report a suture device sends (docs/formats/device-api.md).

``SUIT_Report = {99: SUIT_Reference, ? 2: nonce, 3: [* SUIT_Record / system-property-claims],
4: true / {5: result-code, 6: SUIT_Record, 7: reason}, * extensions}``, where
``SUIT_Reference = [? manifest-uri, manifest-digest]`` and
``SUIT_Record = [manifest-id [* uint], section, offset, component-index, properties]``.
A report travels in a COSE_Sign1 (the device's private key) or a COSE_Mac0 (the device's
symmetric key), the report as the attached payload.

suture's own report fields map onto it (docs/formats/suit-report.md):

- ``installed`` {component: sequence number}: one system-property-claims map per component,
  ``{0: [component name], -263 (suture-sequence-number): n}``;
- ``error`` {code, message}: the result map, the code as result-code, the reason from the code's
  layer and meaning, the failing command's record as result-record, the message under the
  report extension -6;
- ``state``, ``schedule_number``, ``rollout_id``, ``release_id``, ``progress``, ``busy``:
  report extensions -1 to -5 and -7 (suture's private labels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import cbor2

from suture.cose import CoseError, decode_sign1, sign1, verify1_with_key
from suture.cose.cbor import CborError, describe, loads_bounded
from suture.cose.mac0 import SymmetricKey, decode_mac0, mac0, verify_mac0
from suture.formats.suit_report import (
    ALG_SHA256,
    EXT_BUSY,
    EXT_ERROR_MESSAGE,
    EXT_PROGRESS,
    EXT_RELEASE_ID,
    EXT_ROLLOUT_ID,
    EXT_SCHEDULE_NUMBER,
    EXT_STATE,
    LOADER_REASONS,
    PROPERTY_COMMAND,
    PROPERTY_IMAGE_DIGEST,
    PROPERTY_SEQUENCE_NUMBER,
    REASON_ALG_UNSUPPORTED,
    REASON_CBOR_PARSE,
    REASON_COMMAND_UNSUPPORTED,
    REASON_COMPONENT_UNAUTHORISED,
    REASON_COMPONENT_UNSUPPORTED,
    REASON_CONDITION_FAILED,
    REASON_COSE_UNSUPPORTED,
    REASON_INVOKE_PENDING,
    REASON_OK,
    REASON_OPERATION_FAILED,
    REASON_PARAMETER_UNSUPPORTED,
    REASON_SEVERING_UNSUPPORTED,
    REASON_UNAUTHORISED,
    REASONS,
    REPORT_CAPABILITIES,
    REPORT_NONCE,
    REPORT_RECORDS,
    REPORT_REFERENCE,
    REPORT_RESULT,
    REPORT_RESULT_CODE,
    REPORT_RESULT_REASON,
    REPORT_RESULT_RECORD,
    SECTION_COMMON,
    SYSTEM_COMPONENT_ID,
)
from suture.keys import PrivateKey, PublicKey, key_id
from suture.suit import codepoints as cp
from suture.suit.errors import SuitReportAuthError, SuitReportError
from suture.suit.model import Digest

PARAMETER_SUTURE_SEQUENCE_NUMBER: Final = PROPERTY_SEQUENCE_NUMBER
__all__ = [
    "EXT_BUSY", "EXT_ERROR_MESSAGE", "EXT_PROGRESS", "EXT_RELEASE_ID", "EXT_ROLLOUT_ID",
    "EXT_SCHEDULE_NUMBER", "EXT_STATE", "LOADER_REASONS", "PROPERTY_COMMAND",
    "PROPERTY_IMAGE_DIGEST", "REASONS", "REASON_ALG_UNSUPPORTED", "REASON_CBOR_PARSE",
    "REASON_COMMAND_UNSUPPORTED", "REASON_COMPONENT_UNAUTHORISED",
    "REASON_COMPONENT_UNSUPPORTED", "REASON_CONDITION_FAILED", "REASON_COSE_UNSUPPORTED",
    "REASON_INVOKE_PENDING", "REASON_OK", "REASON_OPERATION_FAILED",
    "REASON_PARAMETER_UNSUPPORTED", "REASON_SEVERING_UNSUPPORTED", "REASON_UNAUTHORISED",
    "REPORT_CAPABILITIES", "SYSTEM_COMPONENT_ID",
]
STATES: Final = frozenset(
    {"idle", "downloading", "staged", "installing", "trial", "confirmed", "reverted", "failed"}
)

MAX_REPORT_BYTES: Final = 16 * 1024
MAX_RECORDS: Final = 256
MAX_DEPTH: Final = 12
_TAGS: Final = (cp.COSE_SIGN1_TAG, cp.COSE_MAC0_TAG)


@dataclass(frozen=True)
class SuitRecord:
    """Where a command ran (manifest path, section key, byte offset in the section, component
    index) and the properties it measured."""

    manifest_id: tuple[int, ...]
    section: int
    offset: int
    component_index: int
    properties: dict[int, Any] = field(default_factory=dict)

    def to_cbor(self) -> list[Any]:
        return [
            list(self.manifest_id), self.section, self.offset, self.component_index,
            dict(self.properties),
        ]


@dataclass(frozen=True)
class SystemProperties:
    """system-property-claims: measured properties of one component of the device."""

    component_id: list[bytes]
    properties: dict[int, Any]

    def to_cbor(self) -> dict[int, Any]:
        return {SYSTEM_COMPONENT_ID: list(self.component_id), **self.properties}


@dataclass(frozen=True)
class ReportResult:
    """A failed procedure: the internal code, where it failed, and the reason."""

    code: int
    record: SuitRecord
    reason: int

    @property
    def reason_name(self) -> str:
        return REASONS.get(self.reason, f"reason {self.reason}")


@dataclass(frozen=True)
class SuitReport:
    manifest_digest: Digest
    manifest_uri: str | None = None
    nonce: bytes | None = None
    records: list[SuitRecord | SystemProperties] = field(default_factory=list)
    result: ReportResult | None = None  # None: the procedure completed (true)
    extensions: dict[int, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.result is None


def encode_report(report: SuitReport) -> bytes:
    """The SUIT_Report as CBOR."""
    reference: list[Any] = [] if report.manifest_uri is None else [report.manifest_uri]
    reference.append(report.manifest_digest.to_cbor())
    out: dict[int, Any] = {REPORT_REFERENCE: reference}
    if report.nonce is not None:
        out[REPORT_NONCE] = report.nonce
    out[REPORT_RECORDS] = [r.to_cbor() for r in report.records]
    if report.result is None:
        out[REPORT_RESULT] = True
    else:
        out[REPORT_RESULT] = {
            REPORT_RESULT_CODE: report.result.code,
            REPORT_RESULT_RECORD: report.result.record.to_cbor(),
            REPORT_RESULT_REASON: report.result.reason,
        }
    for key, value in sorted(report.extensions.items()):
        out[key] = value
    return cbor2.dumps(out, canonical=True)


def _fail(where: str, expected: str, value: object) -> SuitReportError:
    return SuitReportError(f"{where}: expected {expected}, got {describe(value)}")


def _int(value: object, where: str, *, unsigned: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (unsigned and value < 0):
        raise _fail(where, "uint" if unsigned else "int", value)
    return value


def _digest(value: object, where: str) -> Digest:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _fail(where, "SUIT_Digest [alg, bytes]", value)
    alg = _int(value[0], f"{where} algorithm")
    if not isinstance(value[1], bytes):
        raise _fail(f"{where} bytes", "bstr", value[1])
    known = cp.DIGEST_ALGORITHMS.get(alg)
    if known is not None and len(value[1]) != known[1]:
        raise SuitReportError(f"{where}: a {known[0]} digest is {known[1]} bytes")
    return Digest(alg, value[1])


def _record(value: object, where: str) -> SuitRecord:
    if not isinstance(value, list | tuple) or len(value) < 5:
        raise _fail(where, "SUIT_Record (an array of 5)", value)
    path, section, offset, index, properties = value[:5]
    if not isinstance(path, list | tuple):
        raise _fail(f"{where} manifest-id", "array", path)
    if not isinstance(properties, Mapping):
        raise _fail(f"{where} properties", "map", properties)
    return SuitRecord(
        manifest_id=tuple(_int(p, f"{where} manifest-id", unsigned=True) for p in path),
        section=_int(section, f"{where} section"),
        offset=_int(offset, f"{where} offset", unsigned=True),
        component_index=_int(index, f"{where} component-index", unsigned=True),
        properties={_int(k, f"{where} property key"): v for k, v in properties.items()},
    )


def _claims(value: Mapping[Any, Any], where: str) -> SystemProperties:
    cid = value.get(SYSTEM_COMPONENT_ID)
    if not isinstance(cid, list | tuple) or not cid or not all(isinstance(e, bytes) for e in cid):
        raise _fail(f"{where} key 0 (system-component-id)", "a component identifier", cid)
    properties = {
        _int(k, f"{where} property key"): v for k, v in value.items() if k != SYSTEM_COMPONENT_ID
    }
    if not properties:
        raise SuitReportError(f"{where}: system-property-claims with no property")
    return SystemProperties(component_id=list(cid), properties=properties)


def decode_report(data: bytes) -> SuitReport:
    """Decode a SUIT_Report (unsigned); raises :class:`SuitReportError`."""
    try:
        item = loads_bounded(data, max_bytes=MAX_REPORT_BYTES, max_depth=MAX_DEPTH)
    except CborError as exc:
        raise SuitReportError(f"SUIT_Report: {exc}") from None
    if not isinstance(item, Mapping):
        raise _fail("SUIT_Report", "map", item)
    for key in (REPORT_REFERENCE, REPORT_RECORDS, REPORT_RESULT):
        if key not in item:
            raise SuitReportError(f"SUIT_Report: key {key} missing")
    reference = item[REPORT_REFERENCE]
    if not isinstance(reference, list | tuple) or len(reference) not in (1, 2):
        raise _fail("SUIT_Report key 99 (reference)", "[? uri, digest]", reference)
    uri = None
    if len(reference) == 2:
        if not isinstance(reference[0], str):
            raise _fail("SUIT_Report reference uri", "text", reference[0])
        uri = reference[0]
    digest = _digest(reference[-1], "SUIT_Report reference digest")
    nonce = item.get(REPORT_NONCE)
    if nonce is not None and not isinstance(nonce, bytes):
        raise _fail("SUIT_Report key 2 (nonce)", "bstr", nonce)
    raw_records = item[REPORT_RECORDS]
    if not isinstance(raw_records, list | tuple):
        raise _fail("SUIT_Report key 3 (records)", "array", raw_records)
    if len(raw_records) > MAX_RECORDS:
        raise SuitReportError(f"SUIT_Report: {len(raw_records)} records, limit {MAX_RECORDS}")
    records: list[SuitRecord | SystemProperties] = []
    for i, raw in enumerate(raw_records):
        where = f"SUIT_Report record {i}"
        records.append(_claims(raw, where) if isinstance(raw, Mapping) else _record(raw, where))
    raw_result = item[REPORT_RESULT]
    result = None
    if raw_result is not True:
        if not isinstance(raw_result, Mapping):
            raise _fail("SUIT_Report key 4 (result)", "true or a map", raw_result)
        for key in (REPORT_RESULT_CODE, REPORT_RESULT_RECORD, REPORT_RESULT_REASON):
            if key not in raw_result:
                raise SuitReportError(f"SUIT_Report result: key {key} missing")
        result = ReportResult(
            code=_int(raw_result[REPORT_RESULT_CODE], "SUIT_Report result-code"),
            record=_record(raw_result[REPORT_RESULT_RECORD], "SUIT_Report result-record"),
            reason=_int(raw_result[REPORT_RESULT_REASON], "SUIT_Report result-reason"),
        )
    known = {REPORT_REFERENCE, REPORT_NONCE, REPORT_RECORDS, REPORT_RESULT}
    extensions = {
        _int(k, "SUIT_Report key"): v for k, v in item.items() if k not in known
    }
    return SuitReport(
        manifest_digest=digest, manifest_uri=uri, nonce=nonce, records=records, result=result,
        extensions=extensions,
    )


def sign_report(
    report: SuitReport | bytes, key: PrivateKey | SymmetricKey, *, kid: bytes | None = None
) -> bytes:
    """The report in a COSE_Sign1 (private key) or a COSE_Mac0 (symmetric key), attached."""
    payload = encode_report(report) if isinstance(report, SuitReport) else report
    try:
        if isinstance(key, SymmetricKey):
            return mac0(payload, key, kid=kid)
        return sign1(payload, key, kid=kid)
    except CoseError as exc:
        raise SuitReportError(f"cannot sign the report: {exc}") from None


@dataclass(frozen=True)
class VerifiedReport:
    report: SuitReport
    kind: str  # "COSE_Sign1" or "COSE_Mac0"
    signer_key_id: bytes


def open_report(
    data: bytes, keys: PublicKey | SymmetricKey | Sequence[PublicKey | SymmetricKey]
) -> tuple[bytes, str, bytes]:
    """The payload of a signed or MACed report once it verifies with one of the device's
    keys, its kind (``COSE_Sign1``, ``COSE_Mac0``) and the key's id; raises
    :class:`SuitReportAuthError` otherwise."""
    key_list = list(keys) if isinstance(keys, Sequence) else [keys]
    try:
        tagged = loads_bounded(data, max_bytes=MAX_REPORT_BYTES + 512, max_depth=MAX_DEPTH,
                               allowed_tags=_TAGS)
    except CborError as exc:
        raise SuitReportAuthError(f"signed report: {exc}") from None
    tag = tagged.tag if isinstance(tagged, cbor2.CBORTag) else None
    try:
        if tag == cp.COSE_MAC0_TAG:
            secret = [k for k in key_list if isinstance(k, SymmetricKey)]
            if not secret:
                raise CoseError("a COSE_Mac0 report needs the device's symmetric key")
            if decode_mac0(data).payload is None:
                raise CoseError("the report must be the attached payload")
            payload, mkey = verify_mac0(data, secret)
            return payload, "COSE_Mac0", mkey.key_id
        if tag == cp.COSE_SIGN1_TAG:
            public = [k for k in key_list if not isinstance(k, SymmetricKey)]
            if not public:
                raise CoseError("a COSE_Sign1 report needs the device's public key")
            if decode_sign1(data).payload is None:
                raise CoseError("the report must be the attached payload")
            payload, pkey = verify1_with_key(data, public)
            return payload, "COSE_Sign1", key_id(pkey)
        raise CoseError("expected a tagged COSE_Sign1 (18) or COSE_Mac0 (17)")
    except CoseError as exc:
        raise SuitReportAuthError(f"signed report: {exc}") from None


def verify_report(
    data: bytes, keys: PublicKey | SymmetricKey | Sequence[PublicKey | SymmetricKey]
) -> VerifiedReport:
    """Verify a signed or MACed report with the device's key(s) and decode it."""
    payload, kind, kid = open_report(data, keys)
    return VerifiedReport(decode_report(payload), kind, kid)


def reason_for_code(code: int) -> int:
    """The SUIT report reason for a device error code (docs/formats/error-codes.md)."""
    return LOADER_REASONS.get(code, REASON_OPERATION_FAILED)


def report_from_device(
    fields: Mapping[str, Any],
    *,
    manifest_digest: Digest,
    manifest_uri: str | None = None,
    nonce: bytes | None = None,
    records: Sequence[SuitRecord] = (),
    failed_at: SuitRecord | None = None,
    installed_digest: bytes | None = None,
) -> SuitReport:
    """A SUIT_Report carrying a suture device report's fields (docs/formats/device-api.md),
    as the device builds it (loader/loader/suit_report.py, the same bytes).

    ``records`` are the records of the conditions that held; ``failed_at`` is the command
    that failed, the result's record (the manifest's start when not known);
    ``installed_digest`` the SHA-256 of the installed application, claimed with its version.
    """
    state = fields.get("state")
    if not isinstance(state, str) or state not in STATES:
        raise SuitReportError(f"report state {state!r} is not one of {', '.join(sorted(STATES))}")
    out: list[SuitRecord | SystemProperties] = list(records)
    installed = fields.get("installed") or {}
    for component, version in sorted(installed.items()):
        claim: dict[int, Any] = {PARAMETER_SUTURE_SEQUENCE_NUMBER: version}
        if component == "app" and installed_digest is not None:
            claim[PROPERTY_IMAGE_DIGEST] = [ALG_SHA256, installed_digest]
        out.append(SystemProperties([component.encode()], claim))
    extensions: dict[int, Any] = {EXT_STATE: state}
    for name, key in (
        ("schedule_number", EXT_SCHEDULE_NUMBER),
        ("rollout_id", EXT_ROLLOUT_ID),
        ("release_id", EXT_RELEASE_ID),
        ("progress", EXT_PROGRESS),
        ("busy", EXT_BUSY),
    ):
        if fields.get(name) is not None:
            extensions[key] = fields[name]
    result = None
    error = fields.get("error")
    if error:
        code = int(error["code"])
        where = failed_at or SuitRecord((), SECTION_COMMON, 0, 0)
        result = ReportResult(code=code, record=where, reason=reason_for_code(code))
        if error.get("message"):
            extensions[EXT_ERROR_MESSAGE] = error["message"]
    return SuitReport(
        manifest_digest=manifest_digest, manifest_uri=manifest_uri, nonce=nonce, records=out,
        result=result, extensions=extensions,
    )


def device_fields(report: SuitReport) -> dict[str, Any]:
    """The suture report fields a SUIT report carries (what the scheduler stores), the inverse
    of :func:`report_from_device`."""
    ext = report.extensions
    state = ext.get(EXT_STATE)
    if not isinstance(state, str) or state not in STATES:
        raise SuitReportError(f"SUIT_Report key -1 (suture-state): {state!r} is not a state")
    fields: dict[str, Any] = {"state": state}
    for name, key in (
        ("schedule_number", EXT_SCHEDULE_NUMBER),
        ("rollout_id", EXT_ROLLOUT_ID),
        ("release_id", EXT_RELEASE_ID),
        ("progress", EXT_PROGRESS),
        ("busy", EXT_BUSY),
    ):
        if key in ext:
            fields[name] = ext[key]
    installed = {}
    for record in report.records:
        if isinstance(record, SystemProperties) and len(record.component_id) == 1:
            version = record.properties.get(PARAMETER_SUTURE_SEQUENCE_NUMBER)
            if isinstance(version, int) and not isinstance(version, bool):
                try:
                    installed[record.component_id[0].decode()] = version
                except UnicodeDecodeError:
                    continue
    if installed:
        fields["installed"] = installed
    if report.result is not None:
        message = ext.get(EXT_ERROR_MESSAGE)
        fields["error"] = {
            "code": report.result.code,
            "message": message if isinstance(message, str) else report.result.reason_name,
        }
    return fields


def _jsonable(value: Any) -> Any:
    """Any decoded CBOR value as JSON can hold it: byte strings in hex, map keys as text
    unless integers, non-finite floats as text."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {(k if isinstance(k, int | str) and not isinstance(k, bool) else
                 str(_jsonable(k))): _jsonable(v) for k, v in value.items()}
    return repr(value)


def _property_json(key: int, value: Any) -> tuple[str, Any]:
    if key == PROPERTY_COMMAND and isinstance(value, int) and not isinstance(value, bool):
        return "command", cp.command_name(value)
    if key == PROPERTY_SEQUENCE_NUMBER:
        return "suture-sequence-number", value
    if key == PROPERTY_IMAGE_DIGEST and isinstance(value, list | tuple) and len(value) == 2 \
            and isinstance(value[1], bytes):
        return "image-digest", value[1].hex()
    return cp.parameter_name(key), _jsonable(value)


def _record_json(record: SuitRecord) -> dict[str, Any]:
    return {
        "manifest_id": list(record.manifest_id),
        "section": cp.MANIFEST_KEYS.get(record.section, record.section),
        "offset": record.offset,
        "component_index": record.component_index,
        "properties": dict(_property_json(k, v) for k, v in record.properties.items()),
    }


def _claims_json(claims: SystemProperties) -> dict[str, Any]:
    return {
        "component": [c.decode(errors="replace") for c in claims.component_id],
        "properties": dict(_property_json(k, v) for k, v in claims.properties.items()),
    }


def report_summary(report: SuitReport) -> dict[str, Any]:
    """A SUIT report as JSON: what the scheduler shows (the records of the conditions that
    held, the claims of what is installed, the result with its failing record)."""
    summary = {
        "manifest_digest": report.manifest_digest.value.hex(),
        "manifest_uri": report.manifest_uri,
        "nonce": None if report.nonce is None else report.nonce.hex(),
        "succeeded": report.succeeded,
        "records": [_record_json(r) for r in report.records if isinstance(r, SuitRecord)],
        "claims": [_claims_json(r) for r in report.records if isinstance(r, SystemProperties)],
        "result": None if report.result is None else {
            "code": report.result.code,
            "reason": report.result.reason_name,
            "record": _record_json(report.result.record),
        },
        "device": device_fields(report) if EXT_STATE in report.extensions else None,
    }
    return dict(_jsonable(summary))

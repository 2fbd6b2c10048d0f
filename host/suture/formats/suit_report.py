"""The SUIT report (draft-ietf-suit-report) as suture's devices send it, defined once: the
report's map keys, the result reasons, suture's report extensions and record properties, the
loader error codes' reasons, and the device's bounds (docs/formats/suit-report.md).

``SUIT_Report = {99: SUIT_Reference, ? 2: nonce, 3: [* SUIT_Record / system-property-claims],
4: true / {5: result-code, 6: SUIT_Record, 7: reason}, * extensions}``, with
``SUIT_Reference = [? manifest-uri, manifest-digest]`` and
``SUIT_Record = [manifest-id [* uint], section, offset, component-index, properties]``.

The host's codec (:mod:`suture.suit.report`) imports these values; the device's encoder
(``loader/loader/suit_report.py``, MicroPython) is a hand-written copy that
``tests/formats/test_suit_report_format.py`` checks against :data:`DEVICE_CONSTANTS` both ways
(every value here is in the copy with the same value, and the copy defines no other) and byte
for byte against the host's encoder. Both encode deterministically (definite lengths, the
shortest heads, map keys sorted length-first then bytewise: RFC 8949 section 4.2.3, cbor2's
``canonical``), so one report has one encoding.
"""

from __future__ import annotations

from typing import Final

# ---- SUIT_Report map keys (the draft's) ----------------------------------------------------
REPORT_NONCE: Final = 2
REPORT_RECORDS: Final = 3
REPORT_RESULT: Final = 4
REPORT_RESULT_CODE: Final = 5
REPORT_RESULT_RECORD: Final = 6
REPORT_RESULT_REASON: Final = 7
REPORT_CAPABILITIES: Final = 8
REPORT_REFERENCE: Final = 99
SYSTEM_COMPONENT_ID: Final = 0  # system-property-claims: the component's identifier

# ---- result reasons (suit-report-reason) ----------------------------------------------------
REASON_OK: Final = 0
REASON_CBOR_PARSE: Final = 1
REASON_COSE_UNSUPPORTED: Final = 2
REASON_ALG_UNSUPPORTED: Final = 3
REASON_UNAUTHORISED: Final = 4
REASON_COMMAND_UNSUPPORTED: Final = 5
REASON_COMPONENT_UNSUPPORTED: Final = 6
REASON_COMPONENT_UNAUTHORISED: Final = 7
REASON_PARAMETER_UNSUPPORTED: Final = 8
REASON_SEVERING_UNSUPPORTED: Final = 9
REASON_CONDITION_FAILED: Final = 10
REASON_OPERATION_FAILED: Final = 11
REASON_INVOKE_PENDING: Final = 12
REASONS: Final = {
    REASON_OK: "ok",
    REASON_CBOR_PARSE: "cbor-parse",
    REASON_COSE_UNSUPPORTED: "cose-unsupported",
    REASON_ALG_UNSUPPORTED: "alg-unsupported",
    REASON_UNAUTHORISED: "unauthorised",
    REASON_COMMAND_UNSUPPORTED: "command-unsupported",
    REASON_COMPONENT_UNSUPPORTED: "component-unsupported",
    REASON_COMPONENT_UNAUTHORISED: "component-unauthorised",
    REASON_PARAMETER_UNSUPPORTED: "parameter-unsupported",
    REASON_SEVERING_UNSUPPORTED: "severing-unsupported",
    REASON_CONDITION_FAILED: "condition-failed",
    REASON_OPERATION_FAILED: "operation-failed",
    REASON_INVOKE_PENDING: "invoke-pending",
}

# ---- suture's report extensions (negative keys: private use) --------------------------------
EXT_STATE: Final = -1
EXT_SCHEDULE_NUMBER: Final = -2
EXT_ROLLOUT_ID: Final = -3
EXT_RELEASE_ID: Final = -4
EXT_PROGRESS: Final = -5
EXT_ERROR_MESSAGE: Final = -6
EXT_BUSY: Final = -7
#: suture's report field -> its extension key (the fields a report carries as they are).
FIELD_EXTENSIONS: Final = {
    "state": EXT_STATE,
    "schedule_number": EXT_SCHEDULE_NUMBER,
    "rollout_id": EXT_ROLLOUT_ID,
    "release_id": EXT_RELEASE_ID,
    "progress": EXT_PROGRESS,
    "busy": EXT_BUSY,
}

# ---- record and claim properties ------------------------------------------------------------
#: SUIT parameters a record or a claim measures (the manifest's code points).
PROPERTY_IMAGE_DIGEST: Final = 3  # SUIT_Digest of the installed image (a claim)
PROPERTY_IMAGE_SIZE: Final = 14
#: suture (private use, below -256 like its manifest extensions, docs/formats/suit-extensions.md):
#: the installed SUIT sequence number of a component (a claim), and the command found at a
#: record's offset (so a reader without the manifest still knows which condition it was).
PROPERTY_SEQUENCE_NUMBER: Final = -263
PROPERTY_COMMAND: Final = -264

#: SUIT_Record section of the common section's shared sequence (a manifest key).
SECTION_COMMON: Final = 3

# ---- the device's side ----------------------------------------------------------------------
ALG_SHA256: Final = -16
#: Records a device keeps of one manifest's processing (the conditions it ran); more are
#: dropped, the failing one is always kept as the result's record.
MAX_DEVICE_RECORDS: Final = 16
#: The content type of the device API's SUIT report route (the IANA media type).
CONTENT_TYPE: Final = "application/suit-report+cose"
#: The HKDF-SHA-256 info label of the report MAC key of a device without a key pair: the key is
#: ``HKDF(salt = 32 zero bytes, IKM = device secret, info = MAC_KEY_INFO || 0x00 || device id,
#: L = 32)``, never the request MAC's key itself (docs/formats/suit-report.md).
MAC_KEY_INFO: Final = b"suture-suit-report-mac-v1"

#: Loader error code (docs/formats/error-codes.md) -> the report's reason; any other code is
#: operation-failed.
LOADER_REASONS: Final = {
    20: REASON_CBOR_PARSE,  # SuitError: not the SUIT format
    21: REASON_COMMAND_UNSUPPORTED,  # SuitUnsupported
    22: REASON_UNAUTHORISED,  # UnsignedError
    23: REASON_UNAUTHORISED,  # SignatureError
    24: REASON_CONDITION_FAILED,  # ConditionFailed
    25: REASON_CONDITION_FAILED,  # RollbackError
    27: REASON_CONDITION_FAILED,  # SequenceNumberError
    28: REASON_CBOR_PARSE,  # CborError
    31: REASON_CONDITION_FAILED,  # DigestError: image match
}

#: The names the device's copy (loader/loader/suit_report.py) defines, with their values.
DEVICE_CONSTANTS: Final[dict[str, object]] = {
    "REFERENCE": REPORT_REFERENCE,
    "NONCE": REPORT_NONCE,
    "RECORDS": REPORT_RECORDS,
    "RESULT": REPORT_RESULT,
    "RESULT_CODE": REPORT_RESULT_CODE,
    "RESULT_RECORD": REPORT_RESULT_RECORD,
    "RESULT_REASON": REPORT_RESULT_REASON,
    "COMPONENT_ID": SYSTEM_COMPONENT_ID,
    "REASON_CONDITION_FAILED": REASON_CONDITION_FAILED,
    "REASON_OPERATION_FAILED": REASON_OPERATION_FAILED,
    "EXT_STATE": EXT_STATE,
    "EXT_SCHEDULE_NUMBER": EXT_SCHEDULE_NUMBER,
    "EXT_ROLLOUT_ID": EXT_ROLLOUT_ID,
    "EXT_RELEASE_ID": EXT_RELEASE_ID,
    "EXT_PROGRESS": EXT_PROGRESS,
    "EXT_ERROR_MESSAGE": EXT_ERROR_MESSAGE,
    "EXT_BUSY": EXT_BUSY,
    "P_IMAGE_DIGEST": PROPERTY_IMAGE_DIGEST,
    "P_SEQUENCE_NUMBER": PROPERTY_SEQUENCE_NUMBER,
    "P_COMMAND": PROPERTY_COMMAND,
    "SECTION_COMMON": SECTION_COMMON,
    "ALG_SHA256": ALG_SHA256,
    "MAX_RECORDS": MAX_DEVICE_RECORDS,
    "MAC_KEY_INFO": MAC_KEY_INFO,
    "REASONS": dict(LOADER_REASONS),
}

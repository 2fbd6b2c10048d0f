"""Devices' SUIT reports (draft-ietf-suit-report, docs/formats/suit-report.md): verified, then
stored with what they say, shown to operators.

A device whose key is registered (``devices.public_key``) sends its SUIT report as a COSE_Sign1
(ES256) under that key: anything else from it (a bare report, another key's signature, an
altered byte) is refused with :class:`AuthenticationError` and nothing is stored. A device
without a key sends its report as a COSE_Mac0 (HMAC 256/256) under its report MAC key, derived
from its secret (``credentials.suit_report_key``), or, as devices did before, the bare
SUIT_Report, which the request's MAC (checked with its counter in the same transaction)
authenticates; a Mac0 under another key is refused like a keyed device's forgery. The same
bytes sent again (a report re-sent after a lost answer: RFC 6979 signatures and MACs are
deterministic) are stored once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from suture.cose.mac0 import SymmetricKey
from suture.scheduler import credentials
from suture.scheduler.errors import AuthenticationError, InvalidInputError, NotFoundError
from suture.scheduler.models import DEFAULT_TENANT, Device, SuitReportRecord
from suture.scheduler.services import audit, tenants
from suture.scheduler.services.devices import DeviceProof, consume_counter
from suture.suit import codepoints as cp
from suture.suit.errors import SuitReportAuthError, SuitReportError
from suture.suit.report import SuitReport, decode_report, open_report, report_summary

#: Reports shown per device, newest first.
MAX_SHOWN = 100
#: The first byte of a tagged COSE_Sign1 (tag 18) and COSE_Mac0 (tag 17): CBOR major type 6.
COSE_SIGN1_TAG_BYTE = bytes((0xC0 | cp.COSE_SIGN1_TAG,))
COSE_MAC0_TAG_BYTE = bytes((0xC0 | cp.COSE_MAC0_TAG,))


@dataclass(frozen=True)
class StoredSuitReport:
    id: int
    duplicate: bool


@dataclass(frozen=True)
class VerifiedSuitReport:
    report: SuitReport
    #: ``COSE_Sign1`` (the device key's signature), ``COSE_Mac0`` (the report MAC key's) or
    #: ``MAC`` (a bare report: the request's MAC carried it).
    kind: str
    #: What the scheduler shows (``suture.suit.report.report_summary``).
    summary: dict[str, Any]


def verified_summary(device: Device, body: bytes,
                     root_secret: bytes | None = None) -> VerifiedSuitReport:
    """The report in body once it authenticates as device's, decoded and summarised; raises
    :class:`AuthenticationError` (not the device's signature or MAC) or
    :class:`InvalidInputError` (no SUIT report), nothing else. ``root_secret`` (the
    scheduler's) derives the report MAC key of a device without a key pair; without it a
    COSE_Mac0 is refused."""
    report, kind = _verified(device, body, root_secret)
    try:
        return VerifiedSuitReport(report, kind, report_summary(report))
    except SuitReportError as exc:
        raise InvalidInputError(f"malformed SUIT report: {exc}") from None


def _verified(device: Device, body: bytes,
              root_secret: bytes | None) -> tuple[SuitReport, str]:
    """The report in body once it authenticates as device's, and how it did."""
    if device.public_key is not None:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), device.public_key)
        if body[:1] != COSE_SIGN1_TAG_BYTE:
            raise AuthenticationError(
                f"SUIT report refused: device {device.id!r} has a registered key, so its SUIT "
                "reports must be a COSE_Sign1 under it; this one is not signed")
        try:
            payload, kind, _ = open_report(body, [key])
        except SuitReportAuthError as exc:
            raise AuthenticationError(
                f"SUIT report refused: {exc} (device {device.id!r}'s registered key)") from None
    elif body[:1] == COSE_MAC0_TAG_BYTE:
        payload, kind = _opened_mac0(device, body, root_secret)
    else:
        if body[:1] == COSE_SIGN1_TAG_BYTE:
            raise InvalidInputError(
                f"SUIT report refused: device {device.id!r} has no registered key to verify "
                "a COSE_Sign1 with; send a COSE_Mac0 under its report MAC key or the bare "
                "SUIT_Report (the request's MAC carries it)")
        payload, kind = body, "MAC"
    try:
        return decode_report(payload), kind
    except SuitReportError as exc:
        raise InvalidInputError(f"malformed SUIT report: {exc}") from None


def _opened_mac0(device: Device, body: bytes, root_secret: bytes | None) -> tuple[bytes, str]:
    """The payload of a keyless device's COSE_Mac0 report once its report MAC key (derived
    from the device's current secret) verifies it."""
    generation = device.credential_generation
    if root_secret is None or generation is None:
        raise AuthenticationError(
            f"SUIT report refused: no device secret to verify device {device.id!r}'s "
            "COSE_Mac0 with")
    secret = credentials.derive_secret(root_secret, device.id, generation)
    key = SymmetricKey(credentials.suit_report_key(secret, device.id))
    try:
        payload, kind, _ = open_report(body, [key])
    except SuitReportAuthError as exc:
        raise AuthenticationError(
            f"SUIT report refused: {exc} (device {device.id!r}'s report MAC key)") from None
    return payload, kind


def record_suit_report(session: Session, *, device_id: str, counter: int, body: bytes, now: int,
                       proof: DeviceProof | None = None) -> StoredSuitReport:
    """Verify and store a device's SUIT report, in one transaction with its request's counter:
    a refused report changes nothing."""
    with session.begin():
        consume_counter(session, device_id=device_id, counter=counter, now=now, proof=proof)
        device = session.get(Device, device_id)
        if device is None:
            raise NotFoundError(f"no device {device_id!r}")
        verified = verified_summary(device, body,
                                    None if proof is None else proof.root_secret)
        report, kind = verified.report, verified.kind
        digest = hashlib.sha256(body).hexdigest()
        known = session.execute(
            select(SuitReportRecord.id).where(SuitReportRecord.device_id == device_id,
                                              SuitReportRecord.digest == digest)
        ).scalar_one_or_none()
        if known is not None:
            return StoredSuitReport(known, duplicate=True)
        row = SuitReportRecord(
            device_id=device_id, at=now, digest=digest, kind=kind,
            manifest_digest=report.manifest_digest.value.hex(), succeeded=report.succeeded,
            result_code=None if report.result is None else report.result.code, body=body,
            summary=verified.summary)
        session.add(row)
        session.flush()
        audit.append(session, at=now, actor=f"device:{device_id}", action="device.suit_report",
                     subject=device_id,
                     detail={"id": row.id, "digest": digest, "kind": kind,
                             "manifest_digest": row.manifest_digest,
                             "succeeded": row.succeeded, "result_code": row.result_code})
        return StoredSuitReport(row.id, duplicate=False)


def list_suit_reports(session: Session, *, device_id: str, limit: int = MAX_SHOWN,
                      tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
    """The device's SUIT reports, newest first, as the operator API shows them; a device of
    another tenant than ``tenant`` is answered as absent (``services/tenants.py``)."""
    with session.begin():
        device = session.get(Device, device_id)
        if device is None or not tenants.device_in_scope(session, device, tenant):
            raise NotFoundError(f"no device {device_id!r}")
        rows = session.execute(
            select(SuitReportRecord).where(SuitReportRecord.device_id == device_id)
            .order_by(SuitReportRecord.id.desc()).limit(limit)
        ).scalars().all()
        return [
            {"id": r.id, "at": r.at, "kind": r.kind, "digest": r.digest,
             "manifest_digest": r.manifest_digest, "succeeded": r.succeeded,
             "result_code": r.result_code, **_shown(r.summary)}
            for r in rows
        ]


def _shown(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("manifest_uri", "nonce", "records", "claims", "result", "device")
    return {k: summary.get(k) for k in keep}


def failed_at(record: dict[str, Any] | None) -> str:
    """A shown record (``list_suit_reports``) as `section+offset #component command`."""
    if not record:
        return "-"
    command = record.get("properties", {}).get("command", "")
    return (f"{record['section']}+{record['offset']} #{record['component_index']} "
            f"{command}").strip()


def installed_text(claims: list[dict[str, Any]]) -> str:
    """A shown report's installed claims as `component=sequence sha256:…` words."""
    out = []
    for claim in claims:
        props = claim.get("properties", {})
        name = "/".join(claim.get("component", []))
        text = f"{name}={props.get('suture-sequence-number', '?')}"
        if "image-digest" in props:
            text += f" sha256:{str(props['image-digest'])[:16]}"
        out.append(text)
    return " ".join(out)

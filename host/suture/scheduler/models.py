"""SQLAlchemy 2 table models. Times are whole unix seconds (UTC) in BIGINT columns.

Only these models hold secrets' derivatives (``Device.credential_fingerprint``,
``Operator.password_hash``, ``ApiToken.token_hash``); the Pydantic schemas in ``schemas`` never
expose the last two.
"""

from __future__ import annotations

import enum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every scheduler table."""


class DeviceState(enum.StrEnum):
    """What the device last reported about its update (the device is the ground truth)."""

    IDLE = "idle"
    DOWNLOADING = "downloading"
    STAGED = "staged"
    INSTALLING = "installing"
    TRIAL = "trial"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    REVERTED = "reverted"


class RolloutState(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


class EntryState(enum.StrEnum):
    """One device's progress within one rollout."""

    PENDING = "pending"  # wave not open yet, or open and nothing reported
    DOWNLOADING = "downloading"
    STAGED = "staged"
    INSTALLING = "installing"
    TRIAL = "trial"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    BLOCKED = "blocked"  # a dependency is not met
    REVERTING = "reverting"  # rollout aborted with revert; the device must revert
    REVERTED = "reverted"
    CANCELLED = "cancelled"  # rollout aborted before this device installed


TERMINAL_ENTRY_STATES = frozenset(
    {EntryState.SUCCEEDED, EntryState.FAILED, EntryState.REVERTED, EntryState.CANCELLED}
)
ACTIVE_ROLLOUT_STATES = frozenset({RolloutState.RUNNING, RolloutState.PAUSED})
#: The tenant of a hospital's own scheduler, and in the vendor-run mode the vendor's own
#: (``services/tenants.py``).
DEFAULT_TENANT = "DEFAULT"


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    board: Mapped[str] = mapped_column(String(64))
    vendor_id: Mapped[str] = mapped_column(String(64))
    class_id: Mapped[str] = mapped_column(String(64))
    ward: Mapped[str] = mapped_column(String(64), default="")
    location: Mapped[str] = mapped_column(String(128), default="")
    #: 1 low, 2 medium, 3 high, 4 critical (two operators must approve rollouts reaching it).
    criticality: Mapped[int] = mapped_column(Integer, default=2)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Installed SUIT sequence number per component, as the device last reported it.
    installed: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=DeviceState.IDLE.value)
    #: In clinical use: nothing is installed while set.
    busy: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    credential_generation: Mapped[int] = mapped_column(Integer, default=1)
    credential_fingerprint: Mapped[str] = mapped_column(String(64))
    #: Highest request counter accepted from this device (anti-replay).
    last_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    schedule_number: Mapped[int] = mapped_column(BigInteger, default=0)
    schedule_decision: Mapped[str] = mapped_column(String(64), default="")
    schedule_document: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: When the device left service: it no longer authenticates and no rollout targets it.
    decommissioned_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: What updates it: ``mcu`` (suture's agent, the device API) or ``linux`` (an update client
    #: speaking hawkBit's DDI API: SWUpdate, RAUC, Zephyr; docs/ddi.md).
    kind: Mapped[str] = mapped_column(String(16), default="mcu", server_default="mcu")
    #: The DDI tenant the device answers under (``/{tenant}/controller/v1/{device id}``); once
    #: registered as a ``Tenant`` (vendor-run mode), the tenant the device belongs to.
    tenant: Mapped[str] = mapped_column(String(64), default="DEFAULT", server_default="DEFAULT")
    #: SHA-256 (hex) of the device's DDI target token; None: none issued.
    ddi_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The attributes the device last sent (DDI ``configData``).
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict,
                                                       server_default=text("'{}'"))
    #: The device key's public point (65-byte SEC1), registered at enrolment: the device's
    #: reports must carry its signature (docs/formats/device-api.md). None: no key registered.
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(65), nullable=True)
    #: The trust-store version per role ("vendor", "scheduler") the device last reported.
    trust_versions: Mapped[dict[str, int]] = mapped_column(JSON, default=dict,
                                                           server_default=text("'{}'"))
    #: The device's SUIT device identifier (a UUID, text): what the hospital's manifest lists
    #: in its device set (docs/formats/suit-extensions.md). None: not known.
    suit_device_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: Its loader processes the hospital's manifest over the vendor's: the schedule names the
    #: rollout's hospital envelope (keys 7-9) instead of the vendor's.
    hospital_manifest: Mapped[bool] = mapped_column(Boolean, default=False,
                                                    server_default=false())


class TrustRotation(Base):
    """A signed trust-store update (docs/formats/trust-store.md) the scheduler publishes: the
    devices that report an older version of its role get it in their schedules (key 22)."""

    __tablename__ = "trust_rotations"
    __table_args__ = (UniqueConstraint("role", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    role: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(BigInteger)
    #: The signed document, as devices receive it.
    document: Mapped[bytes] = mapped_column(LargeBinary)
    document_sha256: Mapped[str] = mapped_column(String(64))
    #: The new anchors (65-byte SEC1 points, hex).
    keys: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))


class Tenant(Base):
    """A hospital the vendor-run scheduler serves (``services/tenants.py``): its operators,
    devices and rollouts are seen and acted on by its own operators only."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))


class DdiTenant(Base):
    """A DDI tenant's gateway token (SHA-256 only): it authenticates any device of the tenant."""

    __tablename__ = "ddi_tenants"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))


class DdiAction(Base):
    """A DDI action: one device's step (a release) in one rollout, under a small integer id
    (DDI clients keep action ids in 32 bits). Its feedback is in the device's history."""

    __tablename__ = "ddi_actions"
    __table_args__ = (UniqueConstraint("device_id", "rollout_id", "release_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    #: ``open``, ``closed`` (the device reported its end) or ``cancelled``.
    status: Mapped[str] = mapped_column(String(16), default="open")
    #: ``success``, ``failure`` or ``none`` once closed.
    finished: Mapped[str] = mapped_column(String(16), default="")


class DeviceEvent(Base):
    """The device's status history: every report and every registry change."""

    __tablename__ = "device_events"
    __table_args__ = (Index("ix_device_events_device_at", "device_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    at: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SuitReportRecord(Base):
    """A device's SUIT report (draft-ietf-suit-report, docs/formats/suit-report.md), verified
    before it was stored: the bytes as received and what they say (``summary``)."""

    __tablename__ = "suit_reports"
    __table_args__ = (
        UniqueConstraint("device_id", "digest"),
        Index("ix_suit_reports_device_at", "device_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    at: Mapped[int] = mapped_column(BigInteger)
    #: SHA-256 of the bytes received (hex): the same report sent again is stored once.
    digest: Mapped[str] = mapped_column(String(64))
    #: ``COSE_Sign1`` (the device key's ES256) or ``MAC`` (a device without a key: the request's).
    kind: Mapped[str] = mapped_column(String(16))
    manifest_digest: Mapped[str] = mapped_column(String(128))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    result_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


#: Bytes per BlobChunk row: a download reads one at a time, whatever the file's size.
BLOB_CHUNK_SIZE = 64 * 1024


class Blob(Base):
    """Content-addressed bytes (envelopes, payloads, SBOMs), shared by every scheduler node.
    The bytes are in ``BlobChunk`` rows, so that serving a range never loads the whole file."""

    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class BlobChunk(Base):
    """Bytes ``seq * BLOB_CHUNK_SIZE`` onwards of a blob (the last chunk may be shorter)."""

    __tablename__ = "blob_chunks"

    digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("vendor_id", "class_id", "component", "sequence_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[str] = mapped_column(String(64))
    class_id: Mapped[str] = mapped_column(String(64))
    component: Mapped[str] = mapped_column(String(64))
    sequence_number: Mapped[int] = mapped_column(BigInteger)
    envelope_digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    envelope_size: Mapped[int] = mapped_column(BigInteger)
    payload_digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    payload_size: Mapped[int] = mapped_column(BigInteger)
    sbom_digest: Mapped[str | None] = mapped_column(ForeignKey("blobs.digest"), nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    #: Devices on an older version must install this release before any later one.
    must_pass_through: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``[{"component": "loader", "min_version": 3}, ...]``
    requires: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recalled: Mapped[bool] = mapped_column(Boolean, default=False)
    recalled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    imported_at: Mapped[int] = mapped_column(BigInteger)
    imported_by: Mapped[str] = mapped_column(String(64))
    #: Mirrored from a vendor (``scheduler/vendor_mirror.py``): the vendor's name and its id for
    #: the release; None for a release an operator uploaded.
    vendor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    vendor_release: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The vendor's metadata (``vendor_services/repository/release_meta.py``).
    vendor_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict,
                                                            server_default=text("'{}'"))
    #: The vendor's recall ``{"recalled_at", "reason"}``, once the scheduler learnt of it.
    vendor_recall: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Delta(Base):
    """A signed delta release (docs/formats/delta.md): the patch from one source image to a
    release's image, with its own envelope (the release's sequence number and image digest,
    the source's digest as a condition). Served instead of the full payload to a device whose
    installed release has that image (services/deltas.py)."""

    __tablename__ = "deltas"
    __table_args__ = (UniqueConstraint("release_id", "source_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    source_release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    source_digest: Mapped[str] = mapped_column(String(64))
    envelope_digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    envelope_size: Mapped[int] = mapped_column(BigInteger)
    payload_digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    payload_size: Mapped[int] = mapped_column(BigInteger)
    imported_at: Mapped[int] = mapped_column(BigInteger)
    imported_by: Mapped[str] = mapped_column(String(64))


class DeltaFailure(Base):
    """A device's report that a delta of a release failed (a wrong source, a corrupt patch, a
    target digest that does not match, any refusal): from then on that device is served the
    release's full payload, never a delta of it again (services/deltas.py)."""

    __tablename__ = "delta_failures"

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), primary_key=True)
    delta_id: Mapped[int] = mapped_column(ForeignKey("deltas.id"), index=True)
    at: Mapped[int] = mapped_column(BigInteger)
    #: The device's error code (docs/formats/error-codes.md), absent when it sent none.
    error_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class Rollout(Base):
    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    target_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_filter: Mapped[str] = mapped_column(Text, default="")
    #: Wave sizes: ``["1", "10%", "100%"]`` (counts or percentages of the whole target).
    waves: Mapped[list[str]] = mapped_column(JSON, default=list)
    order: Mapped[str] = mapped_column(String(16), default="oldest-first")
    success_threshold: Mapped[float] = mapped_column(Float, default=0.9)
    error_threshold: Mapped[float] = mapped_column(Float, default=0.2)
    error_min_sample: Mapped[int] = mapped_column(Integer, default=5)
    on_error: Mapped[str] = mapped_column(String(8), default="pause")
    window_cron: Mapped[str | None] = mapped_column(String(128), nullable=True)
    window_duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    window_tz: Mapped[str] = mapped_column(String(64), default="UTC")
    deadline: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    download_only: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(24), default=RolloutState.AWAITING_APPROVAL.value)
    current_wave: Mapped[int] = mapped_column(Integer, default=0)
    wave_count: Mapped[int] = mapped_column(Integer, default=1)
    target_count: Mapped[int] = mapped_column(Integer, default=0)
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    revert_on_abort: Mapped[bool] = mapped_column(Boolean, default=False)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    #: The tenant whose operators planned it: only its devices are targeted, only its
    #: approvers count.
    tenant: Mapped[str] = mapped_column(String(64), default=DEFAULT_TENANT,
                                        server_default=DEFAULT_TENANT)
    #: Every operator who created or changed the rollout: none of them counts as its approver.
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class RolloutApproval(Base):
    __tablename__ = "rollout_approvals"

    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True
    )
    operator: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger)
    #: SHA-256 of what was approved (release, targets, waves, policy): an approval counts only
    #: while the rollout still has this content.
    digest: Mapped[str] = mapped_column(String(64), default="")
    #: Why the approver approved (optional, bounded by ``services/rollouts.MAX_REASON``).
    reason: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))


class RolloutDenial(Base):
    """An approver's denial of a rollout as it was (``digest``): while it stands (not cleared)
    the rollout is neither approved further nor started. A change of the rollout's content
    clears it; the record stays, with who cleared it and when."""

    __tablename__ = "rollout_denials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), index=True)
    operator: Mapped[str] = mapped_column(String(64))
    at: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    cleared_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cleared_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RolloutDevice(Base):
    """One targeted device in one rollout: its wave, its current step and its progress."""

    __tablename__ = "rollout_devices"
    __table_args__ = (
        # The device first: a device's entries, which its every poll and report looks up, are
        # one range of the key (migration 0014; an index of device and state did this before).
        PrimaryKeyConstraint("device_id", "rollout_id"),
        # Covers the counts per wave and state (status page, advancement): migration 0008.
        Index("ix_rollout_devices_rollout_wave_state", "rollout_id", "wave", "state"),
    )

    # The three references (rollout, device, step release) are kept by triggers, not foreign
    # keys: checked once per statement on PostgreSQL, so a plan's 100,000 entries are not
    # checked and their devices locked one row at a time. A device's or rollout's entries go
    # with it; a named release cannot be deleted (migration 0014).
    rollout_id: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[str] = mapped_column(String(64))
    wave: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=EntryState.PENDING.value)
    #: The release this device installs next (a must-pass-through release or the target).
    step_release_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    busy_skips: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text, default="")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805 (declarative's class attribute)
        """An entry's identity stays (rollout, device), whatever the key's column order:
        ``session.get(RolloutDevice, (rollout_id, device_id))``."""
        table = cast(Table, cls.__table__)
        return {"primary_key": [table.c.rollout_id, table.c.device_id]}


class AuditRecord(Base):
    """Append-only, hash-chained: ``hash = SHA-256(prev_hash || canonical record)``, and keyed:
    ``mac = HMAC-SHA256(audit key, seq || hash)`` with a key kept outside the database
    (``services/audit.py``)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    #: None only for records written before the log was keyed (``keyed_from_seq``).
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The tenant whose operators see the record (hashed with it unless ``DEFAULT``).
    tenant: Mapped[str] = mapped_column(String(64), default=DEFAULT_TENANT,
                                        server_default=DEFAULT_TENANT)


class AuditHead(Base):
    """The one row that serialises appends to the audit log across scheduler nodes."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    #: HMAC of ``seq`` and ``hash`` with the audit key: a head moved back without the key shows.
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Operator(Base):
    """An operator account: its roles, an optional local password (argon2id), and its state.
    API tokens are ``ApiToken`` rows."""

    __tablename__ = "operators"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Role names (``authz.Role``).
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: argon2id PHC string; None: the account signs in with API tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Consecutive failed password sign-ins, and until when the account is locked after them.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: The tenant the account belongs to (``DEFAULT``: the hospital's own scheduler, or the
    #: vendor's staff in the vendor-run mode); it sees and acts on that tenant's only.
    tenant: Mapped[str] = mapped_column(String(64), default=DEFAULT_TENANT,
                                        server_default=DEFAULT_TENANT)


class ApiToken(Base):
    """A bearer token of one operator: stored as its SHA-256 only (256 random bits, so a plain
    hash suffices), always with an expiry; revoked tokens stay listed."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator: Mapped[str] = mapped_column(ForeignKey("operators.name", ondelete="CASCADE"),
                                          index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RolloutGrant(Base):
    """The vendor's verdict on a rollout of one of its releases (a GNAP grant, RFC 9635): the
    access right the scheduler asked for (release, device classes and count, waves, windows),
    the answer, and the grant that allows the rollout (``services/vendor_grants.py``)."""

    __tablename__ = "rollout_grants"

    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(64))
    #: ``granted`` or ``refused``.
    verdict: Mapped[str] = mapped_column(String(16))
    #: The vendor's reason for a refusal.
    reason: Mapped[str] = mapped_column(Text, default="")
    #: The access right asked for (refused) or granted.
    rights: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The grant's continuation URI (its reference in each device's schedule, key 21).
    reference: Mapped[str] = mapped_column(String(512), default="")
    #: The continuation access token: with the scheduler's GNAP client key (kept outside the
    #: database), it changes or ends the grant.
    continue_token: Mapped[str] = mapped_column(String(128), default="")
    #: Where devices download from the vendor with a biscuit (``.../direct/``); "" for none.
    direct_url: Mapped[str] = mapped_column(String(512), default="")
    checked_at: Mapped[int] = mapped_column(BigInteger)
    checked_by: Mapped[str] = mapped_column(String(64))


class DeviceBiscuit(Base):
    """A biscuit the scheduler issued to one device of a rollout for one release on its path
    (the rollout's release, and each must-pass-through or required release before it): it
    downloads that release from the vendor's ``/direct/`` path with it, inside
    ``[not_before, expires_at]``."""

    __tablename__ = "device_biscuits"

    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), primary_key=True)
    #: The biscuit, base64url (what the device presents as ``Authorization: Bearer``).
    token: Mapped[str] = mapped_column(Text)
    #: The revocation id of its authority block (``suture vendor biscuit revoke``).
    revocation_id: Mapped[str] = mapped_column(String(128))
    not_before: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[int] = mapped_column(BigInteger)


class RolloutManifest(Base):
    """The hospital's manifest over the rollout's release (docs/formats/suit-extensions.md):
    the envelope the scheduler signed, with the vendor's integrated, served to the rollout's
    devices that process it (``Device.hospital_manifest``) in place of the vendor's."""

    __tablename__ = "rollout_manifests"

    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True)
    envelope_digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    envelope_size: Mapped[int] = mapped_column(BigInteger)
    #: Devices in its device set (0: no device set, any device of the class).
    device_count: Mapped[int] = mapped_column(Integer)
    not_before: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    not_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: The approvals it was issued under (``rollouts.approval_digest``, SHA-256 hex).
    approvals_digest: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[int] = mapped_column(BigInteger)

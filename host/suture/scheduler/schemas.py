"""Pydantic schemas: one family per entity (Create / Update / Public). Table models stay in
``models``; nothing here exposes a credential fingerprint's secret or a token hash."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from suture.scheduler.credentials import DEVICE_ID_PATTERN

Name = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/ -]*$")]
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
Label = Annotated[str, StringConstraints(max_length=128)]
Component = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                             pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]


def _canonical_uuid(value: str) -> str:
    """A UUID in its canonical text form (RFC 9562), as SUIT manifests name vendors and classes."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID (e.g. fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe)")\
            from None


Uuid = Annotated[str, StringConstraints(max_length=64),
                 AfterValidator(_canonical_uuid)]
DeviceStateName = Literal["idle", "downloading", "staged", "installing", "trial", "confirmed",
                          "failed", "reverted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- devices -------------------------------------------------------------------------------

class DeviceBase(_Strict):
    board: Name
    vendor_id: Uuid
    class_id: Uuid
    ward: Annotated[str, StringConstraints(max_length=64)] = ""
    location: Label = ""
    criticality: int = Field(default=2, ge=1, le=4)
    tags: list[Name] = Field(default_factory=list, max_length=32)
    groups: list[Name] = Field(default_factory=list, max_length=32)


#: A device's public key: the 65-byte uncompressed SEC1 point of its P-256 key, in hex.
PublicKeyHex = Annotated[str, StringConstraints(pattern=r"^04[0-9a-f]{128}$")]
TrustVersion = Annotated[int, Field(ge=0, le=0xFFFFFFFF)]


class DeviceCreate(DeviceBase):
    id: DeviceId
    #: The device key's public point (generated at provisioning): its reports must be signed.
    public_key: PublicKeyHex | None = None
    #: What the device runs at provisioning (it reports the truth on its first poll).
    installed: dict[Component, Annotated[int, Field(ge=0, le=2**53)]] = Field(
        default_factory=dict, max_length=16)
    #: The device's SUIT device identifier (the hospital's manifest lists it in a device set).
    suit_device_id: Uuid | None = None
    #: Its loader processes the hospital's manifest over the vendor's (docs/formats/
    #: suit-extensions.md): its schedules name the rollout's hospital envelope. False for a
    #: device whose loader predates it.
    hospital_manifest: bool = False


class DeviceUpdate(_Strict):
    ward: Annotated[str, StringConstraints(max_length=64)] | None = None
    location: Label | None = None
    criticality: int | None = Field(default=None, ge=1, le=4)
    tags: list[Name] | None = Field(default=None, max_length=32)
    groups: list[Name] | None = Field(default=None, max_length=32)
    busy: bool | None = None


class DevicePublic(DeviceBase):
    model_config = ConfigDict(from_attributes=True)

    id: str
    installed: dict[str, int]
    state: str
    busy: bool
    created_at: int
    last_seen: int | None
    credential_generation: int
    credential_fingerprint: str
    schedule_number: int
    #: When the device left service (None: in service).
    decommissioned_at: int | None = None
    #: The registered device key (hex SEC1 point); None: its reports are not signed.
    public_key: str | None = None
    #: The trust-store version per role the device last reported.
    trust_versions: dict[str, int] = Field(default_factory=dict)
    #: ``mcu`` (suture's agent) or a Linux device's client speaking hawkBit DDI
    #: (docs/ddi.md), its DDI tenant, and the attributes its configData sent.
    kind: str = "mcu"
    tenant: str = "DEFAULT"
    attributes: dict[str, str] = Field(default_factory=dict)
    #: Its SUIT device identifier, and whether its schedules name the hospital's envelope.
    suit_device_id: str | None = None
    hospital_manifest: bool = False

    @field_validator("public_key", mode="before")
    @classmethod
    def _hex_key(cls, value: object) -> object:
        return value.hex() if isinstance(value, bytes) else value

    @field_validator("attributes", mode="before")
    @classmethod
    def _no_attributes(cls, value: object) -> object:
        return {} if value is None else value


class DeviceCredential(BaseModel):
    """Returned once, at provisioning: the device's secret (hex). Never stored in clear."""

    device_id: str
    secret_hex: str
    generation: int
    fingerprint: str


class CredentialRotation(_Strict):
    """A new credential, and the device's new public key when it was given a new one."""

    public_key: PublicKeyHex | None = None


class DecommissionRequest(_Strict):
    reason: Annotated[str, StringConstraints(max_length=256)] = ""
    # The signed decommission record (COSE_Sign1, base64) `suture board decommission` made.
    record: Annotated[str, StringConstraints(max_length=16384)] | None = None


class DeviceEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: int
    kind: str
    state: str
    detail: dict[str, object]


class DeviceDetail(DevicePublic):
    history: list[DeviceEventPublic]


# --- device reports ------------------------------------------------------------------------

class ReportError(_Strict):
    code: int = Field(ge=0, le=2**31)
    message: Annotated[str, StringConstraints(max_length=256)] = ""


class ReportIn(_Strict):
    """A device report (JSON). Bounded: at most ``max_report_bytes`` in total."""

    state: DeviceStateName
    schedule_number: int | None = Field(default=None, ge=0, le=2**53)
    rollout_id: int | None = Field(default=None, ge=1, le=2**31)
    release_id: int | None = Field(default=None, ge=1, le=2**31)
    progress: int | None = Field(default=None, ge=0, le=2**40)
    error: ReportError | None = None
    installed: dict[Component, Annotated[int, Field(ge=0, le=2**53)]] | None = Field(
        default=None, max_length=16)
    busy: bool | None = None
    #: The trust-store version the device holds per role (docs/formats/trust-store.md).
    trust: dict[Literal["vendor", "scheduler"], TrustVersion] | None = None


class ReportAck(BaseModel):
    accepted: bool
    schedule_number: int
    #: True when this report changed the schedule: poll it now.
    schedule_changed: bool


# --- releases -------------------------------------------------------------------------------

class Requirement(_Strict):
    component: Component
    min_version: int = Field(ge=0, le=2**53)


class ReleasePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    vendor_id: str
    class_id: str
    component: str
    sequence_number: int
    envelope_digest: str
    envelope_size: int
    payload_digest: str
    payload_size: int
    sbom_digest: str | None
    notes: str
    must_pass_through: bool
    requires: list[Requirement]
    recalled: bool
    imported_at: int
    imported_by: str
    #: Mirrored from a vendor: its name, its id for the release, its metadata and its recall.
    vendor: str | None = None
    vendor_release: str | None = None
    vendor_metadata: dict[str, Any] = Field(default_factory=dict)
    vendor_recall: dict[str, Any] | None = None


class DeltaPublic(BaseModel):
    """A delta of a release (docs/formats/delta.md): the patch from the image of
    ``source_release_id`` to the release's image, and its signed envelope."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    release_id: int
    source_release_id: int
    source_digest: str
    envelope_digest: str
    envelope_size: int
    payload_digest: str
    payload_size: int
    imported_at: int
    imported_by: str


class ReleaseUpdate(_Strict):
    must_pass_through: bool | None = None
    requires: list[Requirement] | None = Field(default=None, max_length=16)


class RecallRequest(_Strict):
    #: The devices in trial revert; those that confirmed the release keep it (no backup).
    revert: bool = False


# --- rollouts -------------------------------------------------------------------------------

class WindowSpec(_Strict):
    cron: Annotated[str, StringConstraints(min_length=9, max_length=128)]
    duration_s: int = Field(ge=60, le=7 * 24 * 3600)
    tz: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"


class RolloutCreate(_Strict):
    name: Name
    release_id: int = Field(ge=1, le=2**31)
    target_groups: list[Name] = Field(default_factory=list, max_length=64)
    target_filter: Annotated[str, StringConstraints(max_length=1000)] = ""
    waves: list[Annotated[str, StringConstraints(max_length=8)]] = Field(
        default_factory=lambda: ["100%"], max_length=50)
    order: Literal["oldest-first", "criticality"] = "oldest-first"
    success_threshold: float = Field(default=0.9, gt=0.0, le=1.0)
    error_threshold: float = Field(default=0.2, gt=0.0, le=1.0)
    error_min_sample: int = Field(default=5, ge=1, le=1_000_000)
    on_error: Literal["pause", "abort"] = "pause"
    window: WindowSpec | None = None
    deadline: int | None = Field(default=None, ge=0, le=2**40)
    download_only: bool = False


class RolloutUpdate(_Strict):
    """A change of a rollout: targets and waves before it starts, policy also while paused.
    Only the fields given change (``window``/``deadline`` null: none); approvals are reset."""

    name: Name | None = None
    target_groups: list[Name] | None = Field(default=None, max_length=64)
    target_filter: Annotated[str, StringConstraints(max_length=1000)] | None = None
    waves: list[Annotated[str, StringConstraints(max_length=8)]] | None = Field(
        default=None, min_length=1, max_length=50)
    order: Literal["oldest-first", "criticality"] | None = None
    success_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    error_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    error_min_sample: int | None = Field(default=None, ge=1, le=1_000_000)
    on_error: Literal["pause", "abort"] | None = None
    window: WindowSpec | None = None
    deadline: int | None = Field(default=None, ge=0, le=2**40)
    download_only: bool | None = None


class AbortRequest(_Strict):
    #: The devices in trial revert; refused (409 not_revertible) when a device confirmed the
    #: release, since a confirmed version keeps no backup to go back to.
    revert: bool = False


#: Longest reason an approval or a denial carries, in characters.
MAX_REASON = 1000


class ApprovalRequest(_Strict):
    """An approval, with why (optional)."""

    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] = ""


class DenialRequest(_Strict):
    """A denial, with why (required: what must change for the approver to approve)."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=MAX_REASON)]


class ApprovalPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    operator: str
    at: int
    reason: str


class DenialPublic(BaseModel):
    """A denial; it stands while ``cleared_at`` is None (a change of the rollout clears it)."""

    model_config = ConfigDict(from_attributes=True)

    operator: str
    at: int
    reason: str
    cleared_at: int | None = None
    cleared_by: str | None = None


class WaveStatus(BaseModel):
    wave: int
    size: int
    states: dict[str, int]


class RolloutPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    release_id: int
    target_groups: list[str]
    target_filter: str
    waves: list[str]
    order: str
    success_threshold: float
    error_threshold: float
    error_min_sample: int
    on_error: str
    window_cron: str | None
    window_duration_s: int | None
    window_tz: str
    deadline: int | None
    download_only: bool
    state: str
    current_wave: int
    wave_count: int
    target_count: int
    required_approvals: int
    approvals: list[str] = Field(default_factory=list)
    #: The approvals with when and why.
    approval_reasons: list[ApprovalPublic] = Field(default_factory=list)
    #: Every denial, oldest first; ``denied`` while one stands.
    denials: list[DenialPublic] = Field(default_factory=list)
    denied: bool = False
    #: Who created or changed the rollout: none of them counts as its approver.
    authors: list[str] = Field(default_factory=list)
    #: The vendor's verdict on a rollout of a vendor's release (``services/vendor_grants``).
    vendor: dict[str, Any] | None = None
    revert_on_abort: bool
    status_reason: str
    created_by: str
    created_at: int
    started_at: int | None
    finished_at: int | None


class HeldDevice(BaseModel):
    """A targeted device held (``blocked``): why, in words (the requirement, what the device
    has, why no release can meet it first)."""

    device_id: str
    wave: int
    reason: str


class RolloutStatus(BaseModel):
    rollout: RolloutPublic
    waves: list[WaveStatus]
    totals: dict[str, int]
    #: The held devices (``totals["blocked"]`` of them), the first ``HELD_SHOWN`` by position.
    blocked: list[HeldDevice] = Field(default_factory=list)


#: How many held devices a rollout status names.
HELD_SHOWN = 100


# --- audit ----------------------------------------------------------------------------------

class AuditRecordPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: int
    actor: str
    action: str
    subject: str
    detail: str
    hash: str
    mac: str | None = None


class AuditVerification(BaseModel):
    ok: bool
    records: int
    first_bad_seq: int | None
    reason: str
    checkpoints: int = 0


class AuditCheckpoint(BaseModel):
    """A signed statement of the audit log's end (services/audit.py): Ed25519 over
    ``"suture-audit-checkpoint-v1\n"`` and the canonical JSON of the other fields."""

    type: str
    v: int
    seq: int
    hash: str
    at: int
    node: str
    key_id: str
    sig: str
    public_key_pem: str


# --- operators ------------------------------------------------------------------------------

RoleName = Literal["viewer", "device_manager", "release_manager", "rollout_operator", "approver",
                   "auditor", "administrator"]
OperatorName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Password = Annotated[str, StringConstraints(max_length=1024)]


class OperatorCreate(_Strict):
    name: OperatorName
    roles: list[RoleName] = Field(default_factory=list, max_length=7)
    #: A local password (at least 12 characters); none: the account uses API tokens only.
    password: Password | None = None
    #: The account's tenant (vendor-run mode, services/tenants.py); none: the maker's own.
    tenant: OperatorName | None = None


class OperatorUpdate(_Strict):
    roles: list[RoleName] | None = Field(default=None, max_length=7)
    active: bool | None = None


class OperatorPublic(BaseModel):
    """An account; never its password hash."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    roles: list[str]
    active: bool
    has_password: bool = False
    created_at: int
    created_by: str
    disabled_at: int | None
    locked_until: int | None
    #: The tenant the account belongs to (services/tenants.py).
    tenant: str = "DEFAULT"


class TokenPublic(BaseModel):
    """An API token's record; never the token."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    operator: str
    name: str
    created_at: int
    created_by: str
    expires_at: int
    revoked_at: int | None
    last_used_at: int | None


class OperatorDetail(OperatorPublic):
    tokens: list[TokenPublic]


class TokenIssued(BaseModel):
    """A new token: ``token`` is shown this once."""

    token: str
    id: int
    operator: str
    name: str
    expires_at: int


class TokenCreate(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "token"
    ttl_s: int = Field(default=30 * 24 * 3600, ge=60, le=365 * 24 * 3600)


class LoginRequest(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Password
    ttl_s: int = Field(default=12 * 3600, ge=60, le=7 * 24 * 3600)


class PasswordChange(_Strict):
    new_password: Password
    #: One's own current password (when the account has one).
    current_password: Password | None = None


class WhoAmI(BaseModel):
    name: str
    roles: list[str]
    permissions: list[str]
    via: str
    token_id: int | None
    token_expires_at: int | None
    #: The operator's tenant (services/tenants.py): what it sees and does is scoped to it.
    tenant: str = "DEFAULT"


class TrustAnchorPublic(BaseModel):
    path: str
    key_id: str | None
    error: str | None


class SchedulerStatus(BaseModel):
    """What the running scheduler uses now, and which settings wait for a restart."""

    trust_anchors: list[TrustAnchorPublic]
    restart_required: list[str]
    settings_file_error: str | None
    audit_checkpoint_key_id: str
    audit_keyed_from_seq: int


class TrustRotationPublic(BaseModel):
    """A published trust-anchor rotation (docs/formats/trust-store.md): the role's new keys
    (65-byte SEC1 points, hex) from ``version`` on, carried in the schedules of the devices
    that do not hold it yet."""

    model_config = ConfigDict(from_attributes=True)

    role: str
    version: int
    keys: list[str]
    document_sha256: str
    created_at: int
    created_by: str


class DeviceTrustPublic(BaseModel):
    """The trust-store versions a device reports per role, and the rotation its schedule still
    carries (``"role vN"``; None: it holds every one published)."""

    device_id: str
    versions: dict[str, int]
    pending: str | None

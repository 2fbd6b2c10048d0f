"""Scheduler settings (environment variables ``SUTURE_SCHEDULER_*`` or explicit values)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from suture.scheduler.policies.timeouts import DEFAULT_DEPLOYMENT_TIMEOUT_S

#: A value that must be replaced before the scheduler runs anywhere but in development.
DEFAULT_SECRET = "changethis"  # noqa: S105 (the placeholder that is refused)


class Settings(BaseSettings):
    """Everything the service needs; built once and passed to ``create_app(settings)``."""

    model_config = SettingsConfigDict(env_prefix="SUTURE_SCHEDULER_", extra="forbid")

    environment: Literal["development", "production"] = "production"
    #: SQLAlchemy URL. SQLite by default (one file, WAL); ``postgresql+psycopg://...`` for a site
    #: with several scheduler nodes.
    database_url: str = "sqlite:///scheduler.db"
    #: The scheduler's ES256 (P-256) private key (PEM) that signs every schedule document.
    signing_key_path: Path = Path("scheduler-key.pem")
    #: The vendors' public keys (PEM) that release envelopes must verify against.
    trust_anchor_paths: list[Path] = Field(default_factory=list)
    #: Root secret from which each device's HMAC key is derived (hex, at least 32 bytes).
    device_root_secret: str = DEFAULT_SECRET
    #: Where devices reach this service; schedule documents carry absolute URIs below it.
    public_url: str = "http://127.0.0.1:8640"
    #: Seconds between polls when nothing is pending, and the jitter added per device.
    poll_interval_s: int = Field(default=900, ge=10, le=86_400)
    poll_jitter_s: int = Field(default=120, ge=0, le=3_600)
    #: How far a device's request timestamp may be from the server clock.
    device_clock_skew_s: int = Field(default=300, ge=10, le=86_400)
    #: Polls (suture's and DDI's together) one process works on at once; one more is answered
    #: 503 with ``Retry-After`` before anything is read or written (api/routes/device.py).
    max_polls_in_flight: int = Field(default=128, ge=1, le=65_536)
    #: Largest accepted device report body.
    max_report_bytes: int = Field(default=4096, ge=256, le=65_536)
    #: Largest accepted release upload (envelope + payload + SBOM).
    max_release_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: Accept releases that carry no SBOM (their manifest binding none): for test releases
    #: only; every such import says so in the audit log. Off: an import without an SBOM
    #: bound to its manifest is refused.
    allow_releases_without_sbom: bool = False
    #: Seconds between rollout advancement passes of this node (0: only on demand).
    advance_interval_s: float = Field(default=10.0, ge=0.0)
    #: Seconds after a forced deadline during which the device must install.
    forced_window_s: int = Field(default=3_600, ge=60)
    #: Seconds without progress after which a device's deployment counts as failed
    #: (policies/timeouts.py): no rollout entry waits forever.
    deployment_timeout_s: int = Field(default=DEFAULT_DEPLOYMENT_TIMEOUT_S, ge=60)
    #: The audit key file (HMAC key of the audit chain, checkpoint signing key), kept outside
    #: the database (services/audit.py); `suture scheduler init` makes it.
    audit_key_path: Path = Path("audit-key.json")
    #: Where the service appends a signed checkpoint of the audit log's end (JSON lines), at
    #: most every ``audit_checkpoint_interval_s`` and only when the log grew; None: nowhere.
    #: Keep it on other storage than the database, or ship it to the SIEM.
    audit_checkpoint_path: Path | None = None
    audit_checkpoint_interval_s: int = Field(default=300, ge=1, le=86_400)
    #: ``hospital``: the hospital runs its own scheduler (one tenant, ``DEFAULT``);
    #: ``vendor-run``: the vendor runs it as a service for several hospitals, each a tenant
    #: isolated in the database and the API (services/tenants.py).
    mode: Literal["hospital", "vendor-run"] = "hospital"
    #: The vendors file (``suture scheduler vendor add``) whose authorization servers the
    #: service asks, every ``vendor_check_interval_s``, about the granted rollouts of their
    #: releases: a recall or a withdrawn grant pauses them (services/vendor_grants.py).
    #: None: only ``suture scheduler vendor check`` asks.
    vendors_path: Path | None = None
    vendor_check_interval_s: float = Field(default=300.0, ge=0.0)
    #: The hospital's time zone (IANA name): the operator UI shows every time in it, with the
    #: zone named.
    time_zone: str = "UTC"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. "
                             "Europe/Berlin)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        """``postgres://`` and ``postgresql://`` (as hosting services and libpq write them)
        mean PostgreSQL through psycopg 3, the driver suture ships."""
        for scheme in ("postgres://", "postgresql://"):
            if value.startswith(scheme):
                return "postgresql+psycopg://" + value[len(scheme):]
        return value

    @model_validator(mode="after")
    def _enforce_non_default_secrets(self) -> Settings:
        if self.environment != "development" and self.device_root_secret == DEFAULT_SECRET:
            raise ValueError(
                "device_root_secret is the default; set SUTURE_SCHEDULER_DEVICE_ROOT_SECRET "
                "(`suture scheduler init` writes one) or use environment=development"
            )
        if self.device_root_secret != DEFAULT_SECRET:
            try:
                raw = bytes.fromhex(self.device_root_secret)
            except ValueError as exc:
                raise ValueError("device_root_secret must be hex") from exc
            if len(raw) < 32:
                raise ValueError("device_root_secret must be at least 32 bytes (64 hex digits)")
        return self

    def root_secret_bytes(self) -> bytes:
        """The device root secret as bytes (the development default is hashed to 32 bytes)."""
        if self.device_root_secret == DEFAULT_SECRET:
            import hashlib

            return hashlib.sha256(DEFAULT_SECRET.encode()).digest()
        return bytes.fromhex(self.device_root_secret)


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment, then ``config_file`` (``KEY=value`` lines, as written by
    ``suture scheduler init``), then ``overrides``."""
    values: dict[str, object] = {}
    if config_file is not None:
        values.update(read_config_file(config_file))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]


def read_config_file(path: Path) -> dict[str, object]:
    """Parse ``SUTURE_SCHEDULER_NAME=value`` lines (``#`` comments) into field values."""
    prefix = "SUTURE_SCHEDULER_"
    fields: dict[str, object] = {}
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().startswith(prefix):
            raise ValueError(f"{path}:{number}: expected {prefix}NAME=value")
        key = name.strip()[len(prefix):].lower()
        if key not in Settings.model_fields:
            raise ValueError(f"{path}:{number}: unknown setting {name.strip()}")
        fields[key] = value.strip()
    if "trust_anchor_paths" in fields:
        import json

        try:
            anchors = json.loads(str(fields["trust_anchor_paths"]))
        except json.JSONDecodeError:
            raise ValueError(f"{path}: SUTURE_SCHEDULER_TRUST_ANCHOR_PATHS must be a JSON list"
                             ) from None
        fields["trust_anchor_paths"] = anchors
    return fields


def write_config_file(path: Path, values: dict[str, object]) -> None:
    """Write settings as ``SUTURE_SCHEDULER_NAME=value`` lines, mode 0600 (holds a secret)."""
    import json
    import os

    lines = ["# suture scheduler settings (written by `suture scheduler init`)"]
    for key, value in values.items():
        text = json.dumps([str(v) for v in value]) if isinstance(value, list) else str(value)
        lines.append(f"SUTURE_SCHEDULER_{key.upper()}={text}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")

"""Scheduler settings (environment variables ``SUTURE_SCHEDULER_*`` or explicit values)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    #: Largest accepted device report body.
    max_report_bytes: int = Field(default=4096, ge=256, le=65_536)
    #: Largest accepted release upload (envelope + payload + SBOM).
    max_release_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: Seconds between rollout advancement passes of this node (0: only on demand).
    advance_interval_s: float = Field(default=10.0, ge=0.0)
    #: Seconds after a forced deadline during which the device must install.
    forced_window_s: int = Field(default=3_600, ge=60)

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

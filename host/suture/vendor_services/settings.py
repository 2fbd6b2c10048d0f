"""Settings of the vendor services (``suture vendor serve``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator


class VendorSettings(BaseModel):
    """Where the vendor's data lives and the limits its services apply."""

    data_dir: Path
    public_url: str = "http://127.0.0.1:8700"
    token_lifetime_seconds: int = Field(default=300, ge=10, le=86_400)
    continue_wait_seconds: int = Field(default=5, ge=0, le=3600)
    signature_max_age_seconds: int = Field(default=60, ge=5, le=3600)
    introspection_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    allow_unregistered_clients: bool = False
    rs_instance_id: str = "repository"

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must be an http(s) URL")
        return value.rstrip("/")

    def target_uri(self, path: str, query: str = "") -> str:
        """The URI a client signed for a request that reached ``path``: the public URL, not
        the address the server sees (a TLS terminator in front changes the latter)."""
        return f"{self.public_url}{path}" + (f"?{query}" if query else "")

    @property
    def grant_endpoint(self) -> str:
        return f"{self.public_url}/gnap"

    @property
    def releases_url(self) -> str:
        return f"{self.public_url}/releases/"

    @property
    def releases_dir(self) -> Path:
        return self.data_dir / "releases"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "clients.json"

    @property
    def policies_path(self) -> Path:
        """The vendor's rollout policies per hospital and release (``gnap/policies.py``)."""
        return self.data_dir / "policies.json"

    @property
    def state_path(self) -> Path:
        """Grants, tokens and seen nonces of the running services (SQLite)."""
        return self.data_dir / "state.db"

    @property
    def biscuit_root_path(self) -> Path:
        return self.data_dir / "biscuit-root.pem"

    @property
    def revoked_biscuits_path(self) -> Path:
        return self.data_dir / "revoked-biscuits.txt"

"""GNAP error responses (RFC 9635 §3.6; RFC 9767 §3.5 for the RS-facing API)."""

from __future__ import annotations

from typing import Any

from suture.vendor_services.errors import VendorServicesError

# RFC 9635 §3.6 error codes, and the HTTP status suture answers each with.
ERROR_STATUS = {
    "invalid_request": 400,
    "invalid_client": 401,
    "invalid_interaction": 400,
    "invalid_flag": 400,
    "invalid_rotation": 400,
    "key_rotation_not_supported": 400,
    "invalid_continuation": 401,
    "user_denied": 403,
    "request_denied": 403,
    "unknown_user": 400,
    "unknown_interaction": 400,
    "too_fast": 429,
    "too_many_attempts": 429,
    # RFC 9767 §3.5: RS-facing API.
    "invalid_resource_server": 400,
    "invalid_access": 400,
}


class GnapError(VendorServicesError):
    """A refusal with a GNAP error code; ``status`` is the HTTP status to answer with."""

    def __init__(self, code: str, description: str, status: int | None = None,
                 *, recall: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {description}")
        if code not in ERROR_STATUS:
            raise ValueError(f"not a GNAP error code: {code}")
        self.code = code
        self.description = description
        self.status = status or ERROR_STATUS[code]
        self.recall = recall

    def body(self) -> dict[str, Any]:
        """RFC 9635 §3.6: ``{"error": {"code": ..., "description": ...}}``; a refusal because
        the vendor recalled the release adds this API's ``recall`` (``recalled_at``,
        ``reason``), so that the scheduler can act on it."""
        error: dict[str, Any] = {"code": self.code, "description": self.description}
        if self.recall is not None:
            error["recall"] = self.recall
        return {"error": error}

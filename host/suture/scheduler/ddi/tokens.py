"""DDI tokens: a device's target token and a tenant's gateway token. Each is 128 random bits
in hex, shown once; the scheduler keeps its SHA-256 only (random tokens need no slow hash)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final, Literal

TARGET: Final = "TargetToken"
GATEWAY: Final = "GatewayToken"
#: Longest token accepted in a header (a longer one is refused before it is hashed).
MAX_TOKEN_LENGTH: Final = 256


@dataclass(frozen=True)
class Presented:
    """The credential an ``Authorization`` header presents."""

    scheme: Literal["TargetToken", "GatewayToken"]
    token: str


def new_token() -> str:
    return secrets.token_hex(16)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_hash: str | None) -> bool:
    """Whether ``token`` is the one whose hash is stored (constant time in the hash)."""
    return hmac.compare_digest(token_hash(token), stored_hash or "0" * 64)


def parse_authorization(header: str | None) -> Presented | None:
    """``TargetToken <t>`` or ``GatewayToken <t>`` (scheme names case-insensitive); None for
    anything else."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isprintable():
        return None
    if scheme.lower() == TARGET.lower():
        return Presented(TARGET, token)
    if scheme.lower() == GATEWAY.lower():
        return Presented(GATEWAY, token)
    return None

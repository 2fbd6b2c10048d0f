"""Grants and access tokens held by the authorization server (RFC 9635 §1.5, §3, §5, §6).

In memory: tokens are short-lived and a restarted AS simply has the client ask again. Token
values are never stored, only their SHA-256, so a dump of this state cannot be replayed.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from suture.vendor.httpsig import PublicKey


def token_hash(value: str) -> str:
    """What the AS keeps of a token value."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_value() -> str:
    """A fresh unguessable token value (160 bits)."""
    return secrets.token_urlsafe(20)


@dataclass
class AccessToken:
    """An issued access token, bound to its grant's client key."""

    token_id: str
    value_hash: str
    manage_hash: str
    grant_id: str
    access: list[dict[str, Any]]
    issued_at: int
    expires_at: int
    revoked: bool = False


@dataclass
class Grant:
    """One grant request and what it became."""

    grant_id: str
    kid: str
    public_key: PublicKey
    jwk: dict[str, str]
    instance_id: str | None
    access: list[dict[str, Any]]
    continue_hash: str
    next_poll_at: float
    revoked: bool = False
    token_ids: list[str] = field(default_factory=list)


class GrantStore:
    """Thread-safe in-memory grants and tokens."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.grants: dict[str, Grant] = {}
        self.tokens: dict[str, AccessToken] = {}
        self._by_value: dict[str, str] = {}

    def add_grant(self, grant: Grant) -> None:
        with self._lock:
            self.grants[grant.grant_id] = grant

    def issue(self, grant: Grant, *, now: int, lifetime: int) -> tuple[AccessToken, str, str]:
        """Issue a token for ``grant``; returns ``(token, value, manage value)``. Earlier
        tokens of the grant are revoked: none of them is durable (RFC 9635 §3.2.1 flags)."""
        value, manage = new_value(), new_value()
        expires = min(now + lifetime, _window_end(grant.access))
        token = AccessToken(
            token_id=secrets.token_urlsafe(12),
            value_hash=token_hash(value),
            manage_hash=token_hash(manage),
            grant_id=grant.grant_id,
            access=grant.access,
            issued_at=now,
            expires_at=expires,
        )
        with self._lock:
            for old in grant.token_ids:
                self.revoke_token(self.tokens[old])
            self.tokens[token.token_id] = token
            self._by_value[token.value_hash] = token.token_id
            grant.token_ids = [token.token_id]
        return token, value, manage

    def rotate(self, token: AccessToken, *, now: int, lifetime: int) -> tuple[AccessToken, str]:
        """RFC 9635 §6.1: a new value for the same rights; the old value stops working."""
        value = new_value()
        grant = self.grants[token.grant_id]
        with self._lock:
            self._by_value.pop(token.value_hash, None)
            token.value_hash = token_hash(value)
            token.issued_at = now
            token.expires_at = min(now + lifetime, _window_end(grant.access))
            self._by_value[token.value_hash] = token.token_id
        return token, value

    def revoke_token(self, token: AccessToken) -> None:
        with self._lock:
            token.revoked = True
            self._by_value.pop(token.value_hash, None)

    def revoke_grant(self, grant: Grant) -> None:
        with self._lock:
            grant.revoked = True
            for token_id in grant.token_ids:
                self.revoke_token(self.tokens[token_id])

    def by_value(self, value: str) -> AccessToken | None:
        """The live (not rotated away, not revoked) token with this value."""
        with self._lock:
            token_id = self._by_value.get(token_hash(value))
            return self.tokens.get(token_id) if token_id else None


def _window_end(access: list[dict[str, Any]]) -> int:
    # A token never outlives the latest rollout window it was granted for.
    return max(int(right["rollout"]["window"]["end"]) for right in access)

"""Grants and access tokens held by the authorization server (RFC 9635 §1.5, §3, §5, §6).

Kept in the vendor's state file (:mod:`suture.vendor_services.statedb`): a restarted AS continues
every grant and honours every token it issued, and a command in another process (``suture vendor
client remove``) revokes them under the running server. Token values are never stored, only
their SHA-256, so a copy of this state cannot be replayed.

Every revocation (and every rotation, which revokes the old value) bumps a **revocation
epoch**; the repository's introspection cache holds answers only while the epoch is the one
they were given under, so no revoked token is served from it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from suture.vendor_services.httpsig import PublicKey, load_jwk
from suture.vendor_services.statedb import StateDb


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
    jwk: dict[str, str]
    instance_id: str | None
    access: list[dict[str, Any]]
    continue_hash: str
    next_poll_at: float
    revoked: bool = False

    @property
    def public_key(self) -> PublicKey:
        return load_jwk(self.jwk)[1]


_GRANT_COLUMNS = ("grant_id, kid, jwk, instance_id, access, continue_hash, next_poll_at, "
                  "revoked")
_TOKEN_COLUMNS = ("token_id, value_hash, manage_hash, grant_id, access, "  # noqa: S105 (names)
                  "issued_at, expires_at, revoked")


def _grant(row: sqlite3.Row) -> Grant:
    return Grant(row["grant_id"], row["kid"], json.loads(row["jwk"]), row["instance_id"],
                 json.loads(row["access"]), row["continue_hash"], row["next_poll_at"],
                 bool(row["revoked"]))


def _token(row: sqlite3.Row) -> AccessToken:
    return AccessToken(row["token_id"], row["value_hash"], row["manage_hash"], row["grant_id"],
                       json.loads(row["access"]), row["issued_at"], row["expires_at"],
                       bool(row["revoked"]))


def _bump_epoch(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE revocations SET epoch = epoch + 1 WHERE id = 1")


class GrantStore:
    """The AS's grants and tokens, in ``db``."""

    def __init__(self, db: StateDb) -> None:
        self.db = db

    # -- grants ------------------------------------------------------------------------------

    def add_grant(self, grant: Grant) -> None:
        with self.db.write() as conn:
            conn.execute(
                f"INSERT INTO grants ({_GRANT_COLUMNS}, window_end) "  # noqa: S608 (constant)
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (grant.grant_id, grant.kid, json.dumps(grant.jwk), grant.instance_id,
                 json.dumps(grant.access), grant.continue_hash, grant.next_poll_at,
                 int(grant.revoked), _window_end(grant.access)))

    def grant(self, grant_id: str) -> Grant | None:
        rows = self.db.rows(f"SELECT {_GRANT_COLUMNS} FROM grants "  # noqa: S608 (constant)
                            "WHERE grant_id = ?", (grant_id,))
        return _grant(rows[0]) if rows else None

    def update_grant(self, grant: Grant) -> None:
        """Save a grant's rights (§5.3) and its next allowed poll (§5.2)."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE grants SET access = ?, next_poll_at = ?, window_end = ? "
                "WHERE grant_id = ?",
                (json.dumps(grant.access), grant.next_poll_at, _window_end(grant.access),
                 grant.grant_id))

    def revoke_grant(self, grant: Grant) -> None:
        """§5.4: the grant and every token issued from it."""
        grant.revoked = True
        with self.db.write() as conn:
            conn.execute("UPDATE grants SET revoked = 1 WHERE grant_id = ?", (grant.grant_id,))
            conn.execute("UPDATE tokens SET revoked = 1 WHERE grant_id = ?", (grant.grant_id,))
            _bump_epoch(conn)

    def revoke_client(self, instance_id: str) -> int:
        """Every live grant of a client (its registration was removed), and their tokens;
        returns how many grants were live."""
        with self.db.write() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT grant_id FROM grants WHERE instance_id = ? AND revoked = 0",
                (instance_id,))]
            conn.execute("UPDATE grants SET revoked = 1 WHERE instance_id = ?", (instance_id,))
            conn.execute("UPDATE tokens SET revoked = 1 WHERE grant_id IN "
                         "(SELECT grant_id FROM grants WHERE instance_id = ?)", (instance_id,))
            _bump_epoch(conn)
        return len(ids)

    def purge(self, now: int) -> None:
        """Forget grants whose every rollout window has ended (and their tokens): they can
        issue no token that would not already be expired."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM grants WHERE window_end <= ?", (now,))

    # -- tokens ------------------------------------------------------------------------------

    def issue(self, grant: Grant, *, now: int, lifetime: int) -> tuple[AccessToken, str, str]:
        """Issue a token for ``grant``; returns ``(token, value, manage value)``. Earlier
        tokens of the grant are revoked: none of them is durable (RFC 9635 §3.2.1 flags)."""
        value, manage = new_value(), new_value()
        token = AccessToken(
            token_id=secrets.token_urlsafe(12),
            value_hash=token_hash(value),
            manage_hash=token_hash(manage),
            grant_id=grant.grant_id,
            access=grant.access,
            issued_at=now,
            expires_at=min(now + lifetime, _window_end(grant.access)),
        )
        with self.db.write() as conn:
            replaced = conn.execute(
                "UPDATE tokens SET revoked = 1 WHERE grant_id = ? AND revoked = 0",
                (grant.grant_id,)).rowcount
            conn.execute(
                f"INSERT INTO tokens ({_TOKEN_COLUMNS}) "  # noqa: S608 (constant)
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (token.token_id, token.value_hash, token.manage_hash, token.grant_id,
                 json.dumps(token.access), token.issued_at, token.expires_at))
            if replaced:
                _bump_epoch(conn)
        return token, value, manage

    def token(self, token_id: str) -> AccessToken | None:
        rows = self.db.rows(f"SELECT {_TOKEN_COLUMNS} FROM tokens "  # noqa: S608 (constant)
                            "WHERE token_id = ?", (token_id,))
        return _token(rows[0]) if rows else None

    def rotate(self, token: AccessToken, *, now: int, lifetime: int) -> tuple[AccessToken, str]:
        """RFC 9635 §6.1: a new value for the same rights; the old value stops working."""
        value = new_value()
        token.value_hash = token_hash(value)
        token.issued_at = now
        token.expires_at = min(now + lifetime, _window_end(token.access))
        with self.db.write() as conn:
            conn.execute(
                "UPDATE tokens SET value_hash = ?, issued_at = ?, expires_at = ? "
                "WHERE token_id = ?",
                (token.value_hash, token.issued_at, token.expires_at, token.token_id))
            _bump_epoch(conn)
        return token, value

    def revoke_token(self, token: AccessToken) -> None:
        token.revoked = True
        with self.db.write() as conn:
            conn.execute("UPDATE tokens SET revoked = 1 WHERE token_id = ?", (token.token_id,))
            _bump_epoch(conn)

    def by_value(self, value: str) -> AccessToken | None:
        """The live (not rotated away, not revoked) token with this value."""
        rows = self.db.rows(f"SELECT {_TOKEN_COLUMNS} FROM tokens "  # noqa: S608 (constant)
                            "WHERE value_hash = ? AND revoked = 0", (token_hash(value),))
        return _token(rows[0]) if rows else None

    def token_count(self) -> int:
        """How many tokens were issued and are still kept (revoked ones included)."""
        return int(self.db.rows("SELECT count(*) FROM tokens")[0][0])

    def revocation_epoch(self) -> int:
        """Bumped by every revocation and rotation (see the module's docstring)."""
        return int(self.db.rows("SELECT epoch FROM revocations WHERE id = 1")[0][0])


def _window_end(access: list[dict[str, Any]]) -> int:
    # A token never outlives the latest rollout window it was granted for.
    return max(int(right["rollout"]["window"]["end"]) for right in access)

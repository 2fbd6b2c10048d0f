"""Operators of the HTTP API: bearer tokens, stored as SHA-256 only (tokens are 32 random
bytes, so a plain hash suffices; unknown names verify against a dummy to keep timing flat)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from suture.scheduler.errors import AuthenticationError, ConflictError, InvalidInputError
from suture.scheduler.models import Operator
from suture.scheduler.services import audit

_DUMMY_HASH = hashlib.sha256(b"no such operator").hexdigest()
TOKEN_PREFIX = "sto_"  # noqa: S105 (a prefix, not a secret)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_operator(session: Session, *, name: str, actor: str, now: int) -> str:
    """Create an operator and return its token (shown once)."""
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(
            ".", "").isalnum():
        raise InvalidInputError("operator names are 1-64 letters, digits, '-', '_' or '.'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session.begin():
        if session.get(Operator, name) is not None:
            raise ConflictError(f"operator {name!r} exists")
        session.add(Operator(name=name, token_hash=_hash(token), created_at=now, active=True))
        audit.append(session, at=now, actor=actor, action="operator.add", subject=name)
    return token


def authenticate_operator(session: Session, *, token: str) -> str:
    """The operator's name for a bearer token; ``AuthenticationError`` otherwise."""
    if len(token) > 256:
        raise AuthenticationError("operator token not recognised")
    digest = _hash(token)
    with session.begin():
        name = session.execute(
            select(Operator.name).where(Operator.token_hash == digest, Operator.active.is_(True))
        ).scalar_one_or_none()
    # Compare once more in constant time, against a dummy when nothing matched.
    hmac.compare_digest(digest if name is not None else _DUMMY_HASH, digest)
    if name is None:
        raise AuthenticationError("operator token not recognised")
    return name

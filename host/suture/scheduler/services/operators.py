"""Operator accounts: roles, local passwords, API tokens, sign-in.

- **Passwords** are hashed with argon2id (argon2-cffi's ``PasswordHasher``, its RFC 9106
  parameters; a hash made with older parameters is redone at the next sign-in). At least
  ``MIN_PASSWORD`` characters. ``MAX_FAILED_LOGINS`` wrong passwords in a row lock the account
  for ``LOCKOUT_S``; an unknown name costs the same time as a known one.
- **API tokens** are 256 random bits (``sto_...``), stored as their SHA-256 only, each with an
  expiry (at most ``MAX_TOKEN_TTL_S``), listable and revocable. A sign-in with a password
  issues one (``login``); a person or a service account can hold several (CI, the CLI).
- Roles are read from the account at every request, never from the token: withdrawing a role
  or disabling an account takes effect at once.

The first administrator is made locally, by someone who can write the scheduler's settings
(``bootstrap_administrator``, run by ``suture scheduler init --admin``) and only while no active
administrator exists; every other account is made by an administrator.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from suture.scheduler.authz import Permission, Principal, Role, parse_roles, require
from suture.scheduler.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from suture.scheduler.models import DEFAULT_TENANT, ApiToken, Operator
from suture.scheduler.services import audit, tenants

log = logging.getLogger("suture.scheduler.auth")

TOKEN_PREFIX: Final = "sto_"  # noqa: S105 (a prefix, not a secret)
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024
MAX_FAILED_LOGINS: Final = 5
LOCKOUT_S: Final = 15 * 60
#: A sign-in's token lives this long by default, at most ``MAX_LOGIN_TTL_S``.
LOGIN_TTL_S: Final = 12 * 3600
MAX_LOGIN_TTL_S: Final = 7 * 24 * 3600
#: Tokens made with ``token create`` (service accounts, CI) live this long by default.
TOKEN_TTL_S: Final = 30 * 24 * 3600
MAX_TOKEN_TTL_S: Final = 365 * 24 * 3600
#: ``last_used_at`` is written at most this often per token (a request is not a write).
_TOUCH_S: Final = 60
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_hasher = PasswordHasher()
_DUMMY_PASSWORD_HASH = _hasher.hash("no such operator: the same work as a real check")


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: the secret is in ``token`` and is shown this once."""

    token: str
    id: int
    operator: str
    name: str
    expires_at: int


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError("operator names are 1-64 letters, digits, '.', '_' or '-', "
                                "starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"passwords have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInputError(f"passwords have at most {MAX_PASSWORD} characters")
    return password


def _roles(names: Iterable[str]) -> frozenset[Role]:
    return frozenset(Role(n) for n in names if n in Role._value2member_map_)


def principal_of(account: Operator, via: str, token_id: int | None = None) -> Principal:
    return Principal(account.name, _roles(account.roles or ()), via, token_id,
                     account.tenant or DEFAULT_TENANT)


def _get(session: Session, name: str, tenant: str = DEFAULT_TENANT) -> Operator:
    """The account ``name`` of ``tenant`` (another tenant's is answered as absent)."""
    account = session.get(Operator, name)
    if account is None or (account.tenant or DEFAULT_TENANT) != tenant:
        raise NotFoundError(f"no operator {name!r}")
    return account


def _active_administrators(session: Session, tenant: str = DEFAULT_TENANT) -> list[str]:
    rows = session.execute(select(Operator.name, Operator.roles)
                           .where(Operator.active.is_(True), Operator.tenant == tenant)).all()
    return [name for name, roles in rows if Role.ADMINISTRATOR.value in (roles or ())]


def _new_token(session: Session, *, operator: str, name: str, ttl_s: int, by: str,
               now: int) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(operator=operator, name=name[:64] or "token", token_hash=_token_hash(secret),
                   created_at=now, created_by=by, expires_at=now + ttl_s, revoked_at=None,
                   last_used_at=None)
    session.add(row)
    session.flush()
    return IssuedToken(secret, row.id, operator, row.name, row.expires_at)


def _check_ttl(ttl_s: int, maximum: int) -> int:
    if not 60 <= ttl_s <= maximum:
        raise InvalidInputError(f"token lifetime: 60 to {maximum} seconds")
    return ttl_s


# --- accounts --------------------------------------------------------------------------------

def bootstrap_administrator(session: Session, *, name: str, password: str | None,
                            now: int) -> IssuedToken | None:
    """The first administrator, made locally (``init --admin``), only while no active
    administrator exists (also the way back in when every administrator was lost). Without a
    password (an unattended scheduler's), the account signs in with the token of one day this
    returns; with one, it signs in with its password and no token is made."""
    check_name(name)
    if password is not None:
        check_password(password)
    with session.begin():
        admins = _active_administrators(session)
        if admins:
            raise ConflictError(f"an administrator exists ({', '.join(sorted(admins))}): "
                                "ask one to add accounts")
        account = session.get(Operator, name)
        if account is None:
            account = Operator(name=name, roles=[Role.ADMINISTRATOR.value], created_at=now,
                               created_by="local:init", active=True, failed_logins=0)
            session.add(account)
            session.flush()  # the account before its token (foreign key)
        else:
            account.roles = sorted({*account.roles, Role.ADMINISTRATOR.value})
            account.active, account.disabled_at = True, None
        issued = None
        if password is not None:
            account.password_hash = _hasher.hash(password)
        else:
            issued = _new_token(session, operator=name, name="init", ttl_s=24 * 3600,
                                by="local:init", now=now)
        audit.append(session, at=now, actor="local:init", action="operator.bootstrap",
                     subject=name, detail={"roles": [Role.ADMINISTRATOR.value],
                                           "password": password is not None,
                                           "token_id": issued.id if issued else None})
    return issued


def add_operator(session: Session, *, name: str, roles: Iterable[str], password: str | None,
                 actor: Principal, now: int, tenant: str | None = None,
                 mode: str = tenants.HOSPITAL_MODE) -> Operator:
    """An administrator makes an account with ``roles`` (and a password, or tokens only) in
    its own tenant; an administrator of ``DEFAULT`` may make one in a registered ``tenant``
    (the vendor-run mode: a hospital's first administrator)."""
    require(actor, Permission.OPERATOR_MANAGE)
    check_name(name)
    granted = parse_roles(roles)
    if password is not None:
        check_password(password)
    tenant = actor.tenant if tenant is None else tenant
    if tenant != actor.tenant:
        tenants.require_provider(actor, "making another tenant's operator")
    tenants.check_mode(mode, tenant)
    with session.begin():
        if not tenants.exists(session, tenant):
            raise NotFoundError(f"no tenant {tenant!r} (see: suture scheduler tenant add)")
        if session.get(Operator, name) is not None:
            raise ConflictError(f"operator {name!r} exists")
        account = Operator(name=name, roles=sorted(r.value for r in granted),
                           password_hash=_hasher.hash(password) if password else None,
                           created_at=now, created_by=actor.name, active=True, failed_logins=0,
                           tenant=tenant)
        session.add(account)
        detail: dict[str, object] = {"roles": account.roles, "password": password is not None}
        if tenant != DEFAULT_TENANT:
            detail["tenant"] = tenant
        audit.append(session, at=now, actor=actor.name, action="operator.add", subject=name,
                     detail=detail, tenant=tenant)
    return account


def set_roles(session: Session, *, name: str, roles: Iterable[str], actor: Principal,
              now: int) -> Operator:
    """Replace an account's roles. Nobody changes their own roles (an administrator cannot make
    itself an approver), and the last active administrator keeps its role."""
    require(actor, Permission.OPERATOR_MANAGE)
    granted = sorted(r.value for r in parse_roles(roles))
    if name == actor.name:
        raise ForbiddenError("nobody changes their own roles: ask another administrator")
    with session.begin():
        account = _get(session, name, actor.tenant)
        before = list(account.roles or [])
        if Role.ADMINISTRATOR.value in before and Role.ADMINISTRATOR.value not in granted and \
                _active_administrators(session, actor.tenant) == [name]:
            raise ConflictError(f"{name} is the last active administrator")
        account.roles = granted
        audit.append(session, at=now, actor=actor.name, action="operator.roles", subject=name,
                     detail={"before": before, "after": granted}, tenant=actor.tenant)
    return account


def set_active(session: Session, *, name: str, active: bool, actor: Principal,
               now: int) -> Operator:
    """Disable (every token stops working at once, and is revoked) or enable an account."""
    require(actor, Permission.OPERATOR_MANAGE)
    with session.begin():
        account = _get(session, name, actor.tenant)
        if account.active == active:
            return account
        if not active and Role.ADMINISTRATOR.value in (account.roles or ()) and \
                _active_administrators(session, actor.tenant) == [name]:
            raise ConflictError(f"{name} is the last active administrator")
        account.active = active
        account.disabled_at = None if active else now
        revoked = 0
        if not active:
            revoked = session.execute(
                update(ApiToken).where(ApiToken.operator == name, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now).execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
        account.failed_logins, account.locked_until = 0, None
        audit.append(session, at=now, actor=actor.name,
                     action="operator.enable" if active else "operator.disable", subject=name,
                     detail={"tokens_revoked": revoked}, tenant=actor.tenant)
    return account


def set_password(session: Session, *, name: str, new_password: str, actor: Principal,
                 now: int, current_password: str | None = None) -> None:
    """Change one's own password (giving the current one), or, as an administrator, set
    another account's (its tokens are then revoked). An account without a password (a service
    account) does not give itself one: a stolen token must not become a password."""
    check_password(new_password)
    own = name == actor.name
    if not own:
        require(actor, Permission.OPERATOR_MANAGE)
    with session.begin():
        account = _get(session, name, actor.tenant)
        if own and account.password_hash is None:
            raise ForbiddenError(f"{name} signs in with tokens only: an administrator gives it "
                                 "a password")
        if own and not _password_ok(account.password_hash or "", current_password or ""):
            raise AuthenticationError("the current password is not right")
        account.password_hash = _hasher.hash(new_password)
        account.failed_logins, account.locked_until = 0, None
        revoked = 0
        if not own:
            revoked = session.execute(
                update(ApiToken).where(ApiToken.operator == name, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now).execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
        audit.append(session, at=now, actor=actor.name, action="operator.password",
                     subject=name, detail={"tokens_revoked": revoked}, tenant=actor.tenant)


def list_operators(session: Session, *, tenant: str = DEFAULT_TENANT) -> list[Operator]:
    """The accounts of ``tenant``."""
    with session.begin():
        return list(session.execute(select(Operator).where(Operator.tenant == tenant)
                                    .order_by(Operator.name)).scalars())


def get_operator(session: Session, *, name: str, tenant: str = DEFAULT_TENANT) -> Operator:
    with session.begin():
        return _get(session, name, tenant)


# --- sign-in and tokens ----------------------------------------------------------------------

def _password_ok(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def login(session: Session, *, name: str, password: str, now: int, ttl_s: int = LOGIN_TTL_S,
          token_name: str = "login") -> IssuedToken:  # noqa: S107 (a label)
    """Check a local password and issue a token of ``ttl_s``."""
    _check_ttl(ttl_s, MAX_LOGIN_TTL_S)
    refused = AuthenticationError("operator name or password not recognised")
    if len(password) > MAX_PASSWORD or not _NAME.match(name):
        raise refused
    with session.begin():
        account = session.get(Operator, name)
        if account is None or account.password_hash is None:
            _password_ok(_DUMMY_PASSWORD_HASH, password)  # the same work as a real check
            log.info("sign-in refused: %r has no password account", name)
            raise refused
        if account.locked_until is not None and account.locked_until > now:
            raise AuthenticationError(
                f"{name} is locked after {MAX_FAILED_LOGINS} wrong passwords; try again in "
                f"{account.locked_until - now} s or ask an administrator")
        if not _password_ok(account.password_hash, password) or not account.active:
            if account.active:
                account.failed_logins += 1
                if account.failed_logins >= MAX_FAILED_LOGINS:
                    account.locked_until = now + LOCKOUT_S
            audit.append(session, at=now, actor=name, action="operator.login_failed",
                         subject=name, detail={"failed_logins": account.failed_logins,
                                               "active": account.active,
                                               "locked": account.locked_until is not None
                                               and account.locked_until > now})
            fail = True
        else:
            fail = False
            account.failed_logins, account.locked_until = 0, None
            if _hasher.check_needs_rehash(account.password_hash):
                account.password_hash = _hasher.hash(password)
            issued = _new_token(session, operator=name, name=token_name, ttl_s=ttl_s, by=name,
                                now=now)
            audit.append(session, at=now, actor=name, action="operator.login", subject=name,
                         detail={"token_id": issued.id, "expires_at": issued.expires_at})
    if fail:
        raise refused
    return issued


def issue_token(session: Session, *, operator: str, name: str, ttl_s: int, actor: Principal,
                now: int) -> IssuedToken:
    """A new token for oneself, or (administrator) for another account, e.g. a service
    account that signs in with tokens only. A token one makes for oneself with a token ends no
    later than that token: a stolen token cannot outlive itself."""
    _check_ttl(ttl_s, MAX_TOKEN_TTL_S)
    if operator != actor.name:
        require(actor, Permission.OPERATOR_MANAGE)
    with session.begin():
        account = _get(session, operator, actor.tenant)
        if not account.active:
            raise ConflictError(f"{operator} is disabled")
        if operator == actor.name and actor.token_id is not None:
            parent = session.get(ApiToken, actor.token_id)
            if parent is not None:
                ttl_s = max(0, min(ttl_s, parent.expires_at - now))
        issued = _new_token(session, operator=operator, name=name, ttl_s=ttl_s, by=actor.name,
                            now=now)
        audit.append(session, at=now, actor=actor.name, action="token.create", subject=operator,
                     detail={"token_id": issued.id, "name": issued.name,
                             "expires_at": issued.expires_at}, tenant=actor.tenant)
    return issued


def list_tokens(session: Session, *, actor: Principal, operator: str | None = None
                ) -> list[ApiToken]:
    """One's own tokens, or (``operator:read``) another's, or everyone's (``operator`` None)."""
    if operator != actor.name:
        require(actor, Permission.OPERATOR_READ)
    with session.begin():
        query = (select(ApiToken).join(Operator, Operator.name == ApiToken.operator)
                 .where(Operator.tenant == actor.tenant).order_by(ApiToken.id))
        if operator is not None:
            query = query.where(ApiToken.operator == operator)
        return list(session.execute(query).scalars())


def revoke_token(session: Session, *, token_id: int, actor: Principal, now: int) -> ApiToken:
    """Revoke one of one's own tokens, or (administrator) anyone's."""
    with session.begin():
        row = session.get(ApiToken, token_id)
        owner = None if row is None else session.get(Operator, row.operator)
        if row is None or owner is None or owner.tenant != actor.tenant or (
                row.operator != actor.name and not actor.can(Permission.OPERATOR_MANAGE)):
            raise NotFoundError(f"no token {token_id} of yours")
        if row.revoked_at is None:
            row.revoked_at = now
            audit.append(session, at=now, actor=actor.name, action="token.revoke",
                         subject=row.operator, detail={"token_id": token_id, "name": row.name},
                         tenant=actor.tenant)
    return row


def authenticate_token(session: Session, *, token: str, now: int) -> Principal:
    """The operator of a bearer token (not revoked, not expired, account active), with the
    roles the account holds now; ``AuthenticationError`` otherwise."""
    refused = AuthenticationError("operator token not recognised, expired or revoked")
    if not token.startswith(TOKEN_PREFIX) or len(token) > 256:
        raise refused
    digest = _token_hash(token)
    with session.begin():
        row = session.execute(
            select(ApiToken, Operator).join(Operator, Operator.name == ApiToken.operator)
            .where(ApiToken.token_hash == digest)
        ).one_or_none()
        if row is None:
            raise refused
        tok, account = row
        hmac.compare_digest(tok.token_hash, digest)
        if tok.revoked_at is not None or tok.expires_at <= now or not account.active:
            raise refused
        if tok.last_used_at is None or now - tok.last_used_at >= _TOUCH_S:
            tok.last_used_at = now
        return principal_of(account, f"token:{tok.id}", tok.id)


def token_row(session: Session, *, token_id: int) -> ApiToken | None:
    with session.begin():
        return session.get(ApiToken, token_id)


def count_operators(session: Session) -> int:
    with session.begin():
        return int(session.execute(select(func.count()).select_from(Operator)).scalar_one())


def approvers_in_good_standing(session: Session, names: Iterable[str],
                               tenant: str = DEFAULT_TENANT) -> set[str]:
    """Of ``names``, the accounts of ``tenant`` that are active and hold the approver role now
    (inside the caller's transaction)."""
    wanted = set(names)
    if not wanted:
        return set()
    rows = session.execute(select(Operator.name, Operator.roles)
                           .where(Operator.name.in_(wanted), Operator.active.is_(True),
                                  Operator.tenant == tenant)).all()
    return {name for name, roles in rows if Role.APPROVER.value in (roles or ())}

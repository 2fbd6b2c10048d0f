"""Operator accounts: sign-in, who am I, one's own tokens and password; accounts and their
roles (administrators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from suture.scheduler.api.deps import CurrentOperator, NowDep, SessionDep, StateDep
from suture.scheduler.api.operator_route import OperatorRoute, needs
from suture.scheduler.authz import Permission, permissions_of
from suture.scheduler.errors import ConflictError
from suture.scheduler.models import ApiToken, Operator
from suture.scheduler.schemas import (
    LoginRequest,
    OperatorCreate,
    OperatorDetail,
    OperatorPublic,
    OperatorUpdate,
    PasswordChange,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    WhoAmI,
)
from suture.scheduler.services import operators
from suture.scheduler.services.operators import IssuedToken

router = APIRouter(prefix="/api/v1", tags=["operator: accounts"], route_class=OperatorRoute)
#: Sign-in: the one operator route without a token.
login_router = APIRouter(prefix="/api/v1", tags=["operator: accounts"])

NamePath = Annotated[str, Path(min_length=1, max_length=64, description="operator name")]
TokenIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="token id")]


def _issued(t: IssuedToken) -> TokenIssued:
    return TokenIssued(token=t.token, id=t.id, operator=t.operator, name=t.name,
                       expires_at=t.expires_at)


def _public(account: Operator) -> OperatorPublic:
    public = OperatorPublic.model_validate(account)
    public.has_password = account.password_hash is not None
    return public


def _tokens(rows: list[ApiToken]) -> list[TokenPublic]:
    return [TokenPublic.model_validate(t) for t in rows]


@login_router.post("/auth/login", response_model=TokenIssued,
                   responses={401: {"description": "name or password not recognised, or the "
                                                   "account is locked"}})
def login(body: LoginRequest, session: SessionDep, now: NowDep) -> TokenIssued:
    """Sign in with a local password: a token of ``ttl_s`` (default 12 h, at most 7 days)."""
    return _issued(operators.login(session, name=body.name, password=body.password, now=now,
                                   ttl_s=body.ttl_s))


@router.get("/auth/whoami", response_model=WhoAmI, **needs(None))
def whoami(session: SessionDep, operator: CurrentOperator) -> WhoAmI:
    token = (operators.token_row(session, token_id=operator.token_id)
             if operator.token_id is not None else None)
    return WhoAmI(name=operator.name, roles=sorted(r.value for r in operator.roles),
                  permissions=sorted(p.value for p in permissions_of(operator.roles)),
                  via=operator.via, token_id=operator.token_id,
                  token_expires_at=token.expires_at if token is not None else None,
                  tenant=operator.tenant)


@router.post("/auth/logout", response_model=TokenPublic, **needs(None))
def logout(session: SessionDep, operator: CurrentOperator, now: NowDep) -> TokenPublic:
    """Revoke the token this request came with."""
    if operator.token_id is None:
        raise ConflictError("this request came with no API token")
    return TokenPublic.model_validate(operators.revoke_token(
        session, token_id=operator.token_id, actor=operator, now=now))


@router.post("/auth/password", status_code=204, **needs(None))
def change_password(body: PasswordChange, session: SessionDep, operator: CurrentOperator,
                    now: NowDep) -> None:
    """Change one's own password (give the current one)."""
    operators.set_password(session, name=operator.name, new_password=body.new_password,
                           current_password=body.current_password, actor=operator, now=now)


@router.get("/tokens", response_model=list[TokenPublic], **needs(None))
def my_tokens(session: SessionDep, operator: CurrentOperator) -> list[TokenPublic]:
    """One's own tokens (revoked and expired ones too)."""
    return _tokens(operators.list_tokens(session, actor=operator, operator=operator.name))


@router.post("/tokens", response_model=TokenIssued, status_code=201, **needs(None))
def create_token(body: TokenCreate, session: SessionDep, operator: CurrentOperator,
                 now: NowDep) -> TokenIssued:
    """A new token for oneself (a script, another workstation)."""
    return _issued(operators.issue_token(session, operator=operator.name, name=body.name,
                                         ttl_s=body.ttl_s, actor=operator, now=now))


@router.delete("/tokens/{token_id}", response_model=TokenPublic, **needs(None))
def revoke_token(token_id: TokenIdPath, session: SessionDep, operator: CurrentOperator,
                 now: NowDep) -> TokenPublic:
    """Revoke one of one's own tokens (an administrator: anyone's)."""
    return TokenPublic.model_validate(operators.revoke_token(
        session, token_id=token_id, actor=operator, now=now))


@router.get("/operators", response_model=list[OperatorPublic],
            **needs(Permission.OPERATOR_READ))
def list_operators(session: SessionDep, operator: CurrentOperator) -> list[OperatorPublic]:
    return [_public(a) for a in operators.list_operators(session, tenant=operator.tenant)]


@router.post("/operators", response_model=OperatorPublic, status_code=201,
             **needs(Permission.OPERATOR_MANAGE))
def add_operator(body: OperatorCreate, session: SessionDep, operator: CurrentOperator,
                 now: NowDep, state: StateDep) -> OperatorPublic:
    """Make an account with roles, and a password or none (tokens only), in one's own tenant
    (the vendor-run scheduler's own administrators: in a registered ``tenant``)."""
    return _public(operators.add_operator(session, name=body.name, roles=body.roles,
                                          password=body.password, actor=operator, now=now,
                                          tenant=body.tenant, mode=state.settings.mode))


@router.get("/operators/{name}", response_model=OperatorDetail,
            **needs(Permission.OPERATOR_READ))
def show_operator(name: NamePath, session: SessionDep, operator: CurrentOperator
                  ) -> OperatorDetail:
    account = operators.get_operator(session, name=name, tenant=operator.tenant)
    return OperatorDetail(**_public(account).model_dump(), tokens=_tokens(
        operators.list_tokens(session, actor=operator, operator=name)))


@router.patch("/operators/{name}", response_model=OperatorPublic,
              **needs(Permission.OPERATOR_MANAGE))
def update_operator(name: NamePath, body: OperatorUpdate, session: SessionDep,
                    operator: CurrentOperator, now: NowDep) -> OperatorPublic:
    """Replace the roles (never one's own), disable (its tokens are revoked) or enable."""
    account = operators.get_operator(session, name=name, tenant=operator.tenant)
    if body.roles is not None:
        account = operators.set_roles(session, name=name, roles=body.roles, actor=operator,
                                      now=now)
    if body.active is not None:
        account = operators.set_active(session, name=name, active=body.active, actor=operator,
                                       now=now)
    return _public(account)


@router.post("/operators/{name}/password", status_code=204,
             **needs(Permission.OPERATOR_MANAGE))
def reset_password(name: NamePath, body: PasswordChange, session: SessionDep,
                   operator: CurrentOperator, now: NowDep) -> None:
    """Set another account's password; its tokens are revoked."""
    operators.set_password(session, name=name, new_password=body.new_password,
                           current_password=body.current_password, actor=operator, now=now)


@router.post("/operators/{name}/tokens", response_model=TokenIssued, status_code=201,
             **needs(Permission.OPERATOR_MANAGE))
def issue_token(name: NamePath, body: TokenCreate, session: SessionDep,
                operator: CurrentOperator, now: NowDep) -> TokenIssued:
    """A token for another account (a service account that has no password)."""
    return _issued(operators.issue_token(session, operator=name, name=body.name,
                                         ttl_s=body.ttl_s, actor=operator, now=now))
